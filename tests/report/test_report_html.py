"""The HTML report: one self-contained file (no scripts, remote resources or fonts; plots embedded
and also written as PNGs), all data escaped, loud about planted bugs, partial runs and damaged files,
a counterexample picture when linearizability fails, and within size for 100,000 operations. The
browser tests look at it in headless Chromium: not blank, no console errors."""

from __future__ import annotations

import base64
import io
import json
import re
import time

import pytest
from PIL import Image

from chaos.report import synthetic
from chaos.report.html import write_report
from . import browser
from .runs import broken_run

PLOTS = ("plot-timeline.png", "plot-latency.png", "plot-availability.png")


def _png_ok(data: bytes) -> tuple[int, int]:
    img = Image.open(io.BytesIO(data))
    img.verify()
    return Image.open(io.BytesIO(data)).size


def test_report_html_self_contained_and_complete(tmp_path):
    d = synthetic.make_run(tmp_path / "run", ops=2000)
    path = write_report(d)
    assert path == d / "report.html"
    page = path.read_text(encoding="utf-8")
    # nothing to fetch: no scripts, stylesheets, fonts or remote/relative images
    assert not re.search(r"<script|<link|@import|url\(|<iframe|<object|<embed", page, re.I)
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) == len(PLOTS)
    embedded = {base64.b64decode(s.split(",", 1)[1]) for s in srcs if s.startswith("data:image/png;base64,")}
    assert len(embedded) == len(PLOTS)
    for name in PLOTS:  # the same pictures are files too, for tickets
        data = (d / name).read_bytes()
        assert data in embedded and _png_ok(data)[0] >= 700
    head = page.split("<nav>")[0]
    for text in ("leader-partition", "seed 7", "VALID", "duration</b> ", "chaos run experiments/leader-partition.yaml --seed 7"):
        assert text in head, text
    for sid in ("verdicts", "timeline", "latency", "availability", "plan", "experiment", "config"):
        assert f'<section id="{sid}">' in page
    assert "&quot;faults&quot;: [" in page  # plan.json, pretty
    assert "mix: {read: 0.5, write: 0.4, cas: 0.1}" in page  # experiment.yaml verbatim
    assert "&quot;agent_version&quot;: &quot;0.1.0&quot;" in page  # run.json
    assert 'class="banner' not in head  # nothing to warn about
    # fault table: intended vs in effect
    assert re.search(r"<td>f1</td><td>partition</td>.*?20\.00 s.*?20\.30 s.*?0\.30 s.*?40\.00 s.*?40\.20 s", page)


def test_report_html_escapes_every_value(tmp_path):
    results = synthetic.make_results("INVALID")
    results["checks"][0]["summary"] = "<img src=x onerror=alert(2)> lost"
    d = synthetic.make_run(tmp_path / "run", ops=100, name="<script>alert(1)</script>", results=results,
                           run_extra={"replay": "chaos run '<b>x</b>'", "plant": ["<i>p</i>"]})
    (d / "experiment.yaml").write_text("name: x\n# </pre><script>alert(3)</script>\n")
    page = write_report(d).read_text()
    assert "<script" not in page and "<img src=x" not in page and "<b>x</b>" not in page and "<i>p</i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt; lost" in page
    assert "&lt;/pre&gt;&lt;script&gt;alert(3)" in page


def test_report_html_banners_for_planted_partial_and_harness_error(tmp_path):
    d = synthetic.make_run(tmp_path / "run", ops=100, run_extra={
        "plant": ["stale-read"], "partial": True, "partial_reason": "interrupted in phase fault",
        "outcome": "interrupted"})
    page = write_report(d).read_text()
    assert "<title>PLANTED BUG" in page
    assert re.search(r'class="banner plant">PLANTED BUG: stale-read\. This run is NOT a real result', page)
    assert 'class="banner partial">PARTIAL RUN: interrupted in phase fault' in page
    assert 'class="banner harness">The harness could not judge this run: run interrupted' in page
    plain = write_report(synthetic.make_run(tmp_path / "plain", ops=100)).read_text()
    assert 'class="banner' not in plain


def test_report_html_damaged_run_directory_degrades_with_notes(tmp_path):
    d = synthetic.make_run(tmp_path / "run", ops=300)
    with (d / "history.jsonl").open("a") as fh:
        fh.write('{"index": 99999, "process": 1, "type": "inv')  # truncated by a killed run
    with (d / "faults.jsonl").open("a") as fh:
        fh.write("not json\n")
    (d / "events" / "m2.jsonl").write_text("\x00\x01garbage\n")
    (d / "run.json").write_text("{")
    (d / "results.json").unlink()
    (d / "plan.json").write_text("[1, 2")
    page = write_report(d).read_text()
    notes = page.split('class="banner notes"')[1].split("</div>")[0]
    for text in ("history.jsonl: 1 damaged line(s) skipped", "faults.jsonl: 1 damaged line(s) skipped",
                 "events/m2.jsonl: 1 damaged line(s) skipped", "run.json: damaged",
                 "results.json: missing", "plan.json: damaged"):
        assert text in notes, text
    assert "NOT JUDGED" in page and "results.json is missing or unreadable" in page
    assert (d / "plot-latency.png").exists()  # the readable rest is still shown
    assert "[1, 2" in page  # the damaged plan is shown as text


def test_report_html_minimal_run_directory(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / "run.json").write_text(json.dumps({"run_id": "x", "seed": 3}))
    page = write_report(d).read_text()
    assert "No client operations to show" in page and "history.jsonl: missing" in page
    assert "No node journals, status polls or faults to draw" in page


def test_report_html_counterexample_picture(tmp_path):
    d = broken_run(tmp_path / "run")
    page = write_report(d).read_text()
    section = page.split('<section id="counterexample">')[1].split("</section>")[0]
    assert '<li class="stuck">p104 ok read kx 1  [#' in section and "cannot be placed" in section
    assert "p102 ok write kx 2" in section
    assert _png_ok((d / "plot-counterexample-1.png").read_bytes())[0] >= 700
    assert "data:image/png;base64," in section
    verdicts = page.split('<section id="verdicts">')[1].split("</section>")[0]
    assert "term 2: m2 and m3 both leader" in verdicts and "was acknowledged and never overwritten" in verdicts


@pytest.mark.slow
def test_report_html_100k_operations_size(tmp_path):
    d = synthetic.make_run(tmp_path / "run", ops=100_000)
    t = time.monotonic()
    path = write_report(d)
    elapsed = time.monotonic() - t
    size_mb = sum((d / n).stat().st_size for n in ("report.html",)) / 1e6
    assert size_mb <= 5.0, size_mb
    page = path.read_text()
    assert "every refused, fail and info operation is drawn" in page and "100,000 operations" in page
    print(f"report for 100k operations: {elapsed:.2f} s, {size_mb:.2f} MB")  # benchmarks/report.py measures


# --- as a person sees it -------------------------------------------------------------------------


def test_report_browser_helpers_catch_errors_and_blank_pages(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body style="background:#fff"><script>throw new Error("boom")</script></body></html>')
    console = browser.screenshot(bad, tmp_path / "bad.png", 800, 600)
    assert any("Uncaught Error: boom" in line for line in console)
    assert browser.ink_share(tmp_path / "bad.png") < 0.001  # blank


@pytest.mark.parametrize("kind", ["valid", "counterexample"])
def test_report_in_headless_chromium(tmp_path, kind):
    d = synthetic.make_run(tmp_path / "run", ops=3000) if kind == "valid" else broken_run(tmp_path / "run")
    shot = tmp_path / f"{kind}.png"
    console = browser.screenshot(write_report(d), shot)
    assert console == [], console
    assert _png_ok(shot.read_bytes()) == (1400, 3000)
    assert browser.ink_share(shot) > 0.05, "the page looks blank"


def test_report_survives_hostile_values_everywhere(tmp_path):
    """Wrong types in every file a report reads: reports are written, nothing crashes."""
    from chaos.report.junit import write_junit
    from . import junit_schema

    d = synthetic.make_run(tmp_path / "run", ops=100, name="$\\frac{1}{$", run_extra={
        "seed": {"x": 1}, "started": "yesterday", "ended": None, "heal_ts": "soon", "duration_s": "long",
        "phases": [{"name": "$x^$", "start": synthetic.T0, "end": "later"}, "junk", {"start": "0"}],
        "nodes": ["m1"], "plant": {"bug": True}, "partial": "yes", "outcome": 3, "replay": ["chaos", "run"]})
    with (d / "history.jsonl").open("a") as fh:
        fh.write(json.dumps({"index": 10**6, "process": [1], "type": "invoke", "f": "read", "key": {"k": 1},
                             "ts": "noon"}) + "\n")
    with (d / "faults.jsonl").open("a") as fh:
        fh.write(json.dumps({"ts": synthetic.T0 + 5, "fault": ["f9"], "action": "start", "kind": None,
                             "targets": {"a": 1}, "details": "$\\$"}) + "\n")
    with (d / "events" / "m1.jsonl").open("a") as fh:
        fh.write(json.dumps({"type": "role", "role": ["leader"], "term": "two", "ts": synthetic.T0 + 50}) + "\n")
    (d / "status.jsonl").write_text(json.dumps({"ts": synthetic.T0, "node": "$m$", "status": "up"}) + "\n")
    results = synthetic.make_results("INVALID")
    results["checks"] += [
        {"name": 5, "checker": "linearizable", "verdict": "INVALID", "summary": None, "duration_s": "x",
         "evidence": {"failed_keys": [{"key": "$k$", "counterexample": ["p$1$ ok read $k$ 1  [#3..#4]", 7],
                                       "context": "nope"}, "junk"]}},
        {"name": "raft", "checker": "raft-safety", "verdict": "INVALID", "evidence": {"violations": {"r": "x"}}},
        "not a check"]
    (d / "results.json").write_text(json.dumps(results))
    page = write_report(d).read_text()
    assert "PLANTED BUG" in page and "$x^$" in page
    assert junit_schema.validate(write_junit([d], tmp_path / "j.xml")) == []


def test_report_counterexample_picture_is_bounded(tmp_path):
    from chaos.report import evidence, load, plots

    lines = [f"p{i % 7} ok write kx {i}  [#{2 * i}..#{2 * i + 1}]" for i in range(150)]
    lines.append("p9 ok read kx 3  [#400..#401]")
    ops = evidence.parse_counterexample({"key": "kx", "counterexample": lines, "context": []})
    assert [o.line for o in ops if o.stuck] == [lines[-1]]
    d = synthetic.make_run(tmp_path / "run", ops=10)
    p = plots.counterexample_plot(load.load(d), "kx", ops, 1)
    assert f"showing {plots.MAX_CEX_OPS} of 151 operations" in p.caption and "cannot place: p9 ok read kx 3" in p.caption
    assert _png_ok(p.png)[1] < 14 * plots.DPI  # 7 processes: a short picture


def test_report_rebuild_drops_plots_the_run_no_longer_has(tmp_path):
    d = broken_run(tmp_path / "run")
    write_report(d)
    assert (d / "plot-counterexample-1.png").exists()
    results = json.loads((d / "results.json").read_text())
    results["checks"] = [c for c in results["checks"] if c["checker"] != "linearizable"]
    (d / "results.json").write_text(json.dumps(results))
    write_report(d)
    assert not (d / "plot-counterexample-1.png").exists() and (d / "plot-timeline.png").exists()


@pytest.mark.parametrize("ci, outcome", [("", pytest.skip.Exception), ("0", pytest.skip.Exception),
                                         ("true", pytest.fail.Exception), ("1", pytest.fail.Exception)])
def test_report_browser_missing_chromium_fails_under_ci(monkeypatch, ci, outcome):
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome):
        browser.chromium_or_skip()


def test_report_shows_the_checkers_record_gaps(tmp_path):
    from chaos.checkers import run_checks

    d = synthetic.make_run(tmp_path / "run", ops=100, clients=1)
    (d / "events" / "m3.jsonl").unlink()  # the harness lost a journal: raft-safety cannot be VALID
    run_checks(d, ["raft-safety"])
    page = write_report(d).read_text()
    verdicts = page.split('<section id="verdicts">')[1].split("</section>")[0]
    assert "The checkers found the record incomplete" in verdicts and "events/m3.jsonl" in verdicts
    assert "record incomplete: events/m3.jsonl" in verdicts  # in the raft-safety evidence too
