"""The HTML report: one self-contained `report.html` per run directory, plus its PNG plots.

Owns: the page (header with experiment, seed, verdict and duration; loud banners for planted bugs,
partial runs, harness errors and unreadable files; the verdict table with evidence; the
counterexample picture; timeline; latency and throughput; availability per phase; replay command;
plan, experiment file and run.json) and writing it. The file opens offline: inline CSS, plots as
data: URIs, no scripts, fonts or remote images; links only to files of the same run directory.
Every value taken from the run directory is escaped (`html.escape`).

Must not import: docker, requests, the runner. Reads only the run directory (via `load`).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import os
from pathlib import Path
from typing import Any

from chaos.report import evidence as evi
from chaos.report import plots as pl
from chaos.report import timeline as tl
from chaos.report.load import RunView, load

REPORT_NAME = "report.html"

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1440px;
padding:0 16px 48px;color:#212121;background:#fff}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #e0e0e0}
table{border-collapse:collapse;margin:6px 0}th,td{border:1px solid #e0e0e0;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#fafafa}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
pre{background:#f6f8fa;border:1px solid #e0e0e0;padding:8px;overflow:auto;max-height:520px;font-size:12px;
white-space:pre-wrap;word-break:break-word}
.v{font-weight:700;padding:1px 8px;border-radius:3px;color:#fff;white-space:nowrap}
.VALID{background:#2e7d32}.INVALID{background:#c62828}.UNKNOWN{background:#ef6c00}
.SKIPPED,.NOTJUDGED{background:#757575}
.banner{padding:12px 16px;margin:10px 0;border-radius:4px;font-size:16px;font-weight:700;border:3px solid}
.plant{background:#fff3cd;border-color:#c62828;color:#8e0000}.partial{background:#fff8e1;border-color:#ef6c00}
.harness{background:#fdecea;border-color:#c62828}.notes{background:#f5f5f5;border-color:#9e9e9e;font-weight:400;
font-size:14px}
.meta{display:flex;flex-wrap:wrap;gap:4px 24px;margin:4px 0}.meta span b{color:#616161;font-weight:600}
img{max-width:100%;height:auto;border:1px solid #eeeeee}.cap{color:#616161;font-size:12px;margin:2px 0 12px}
.stuck{background:#ffebee;font-weight:700}.ctx{color:#757575}nav a{margin-right:12px}
"""


def _e(x: Any) -> str:
    return html.escape(x if isinstance(x, str) else evi.to_text(x), quote=True)


def _utc(ts: Any) -> str:
    if not isinstance(ts, (int, float)):
        return "?"
    return dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _badge(verdict: str) -> str:
    return f'<span class="v {_e(verdict.replace(" ", ""))}">{_e(verdict)}</span>'


def _rel(view: RunView, ts: Any) -> str:
    return f"{ts - view.t0():.2f} s" if isinstance(ts, (int, float)) else "—"


def _header(view: RunView) -> str:
    run = view.run
    dur = view.duration_s
    meta = [("seed", "?" if view.seed is None else view.seed), ("verdict", None), ("duration", f"{dur:.1f} s" if dur is not None else "?"),
            ("run id", run.get("run_id", "?")), ("started", _utc(run.get("started"))),
            ("outcome", run.get("outcome", "?")), ("operations", f"{len(view.ops):,}")]
    items = "".join(f"<span><b>{_e(k)}</b> {_badge(view.verdict) if k == 'verdict' else _e(v)}</span>"
                    for k, v in meta)
    seed = "?" if view.seed is None else view.seed
    out = [f"<h1>{_e(view.experiment)} — seed {_e(seed)} — {_badge(view.verdict)}</h1>",
           f'<div class="meta">{items}</div>']
    if view.plant:
        out.append(f'<div class="banner plant">PLANTED BUG{"S" if len(view.plant) > 1 else ""}: '
                   f'{_e(", ".join(view.plant))}. This run is NOT a real result: the system was deliberately '
                   f'broken to prove the checks can fail.</div>')
    if view.partial:
        out.append(f'<div class="banner partial">PARTIAL RUN: {_e(run.get("partial_reason") or "no reason recorded")}. '
                   f'Not every phase ran; verdicts cover only what was recorded.</div>')
    problem = view.harness_problem
    if problem:
        out.append(f'<div class="banner harness">The harness could not judge this run: {_e(problem)}</div>')
    if view.notes:
        out.append('<div class="banner notes"><b>Parts of the run directory could not be read; the report '
                   'shows what could:</b><ul>' + "".join(f"<li>{_e(n)}</li>" for n in view.notes) + "</ul></div>")
    if run.get("replay"):
        out.append(f"<p>Replay: <code>{_e(run['replay'])}</code></p>")
    return "\n".join(out)


def _verdicts(view: RunView) -> str:
    if view.results is None:
        return "<p>No results: the run was not judged (results.json missing or damaged).</p>"
    rows, details = [], []
    for c in view.checks:
        verdict = "SKIPPED" if evi.is_skipped(c) else str(c.get("verdict", "?"))
        dur = c.get("duration_s")
        rows.append(f"<tr><td>{_e(c.get('name', '?'))}</td><td>{_e(c.get('checker', ''))}</td>"
                    f"<td>{_badge(verdict)}</td><td class=num>{f'{dur:.2f} s' if isinstance(dur, (int, float)) else ''}</td>"
                    f"<td>{_e(c.get('summary', ''))}</td></tr>")
        for ex in evi.split_expectations(c) or []:
            v = "VALID" if ex.observed else "UNKNOWN"
            rows.append(f"<tr><td>&nbsp;&nbsp;↳ expect {_e(ex.name)}</td><td></td><td>{_badge(v)}</td><td></td>"
                        f"<td>{'observed' if ex.observed else 'never observed'}: {_e(ex.detail)}</td></tr>")
        lines = evi.evidence_lines(c)
        if lines and verdict != "VALID":
            details.append(f"<h3>{_e(c.get('name', '?'))} {_badge(verdict)}</h3><pre>{_e(chr(10).join(lines))}</pre>")
    table = ("<table><tr><th>check</th><th>checker</th><th>verdict</th><th>time</th><th>summary</th></tr>"
             + "".join(rows) + "</table>")
    probs = view.record_problems
    gaps = ("<p><b>The checkers found the record incomplete</b> (a check that read these parts cannot be "
            "VALID):</p><ul>" + "".join(f"<li>{_e(m)}</li>" for m in probs[:50])
            + (f"<li>… and {len(probs) - 50} more</li>" if len(probs) > 50 else "") + "</ul>") if probs else ""
    return table + gaps + "".join(details)


def _nodes(view: RunView) -> str:
    """Each node's role and the host that ran it (run.json `nodes`; `backend`, `hosts`)."""
    run = view.run or {}
    nodes = run.get("nodes") if isinstance(run.get("nodes"), dict) else {}
    backend = run.get("backend") or "local"
    hosts = run.get("hosts") if isinstance(run.get("hosts"), list) else []
    head = f"<p>Backend: <b>{_e(backend)}</b>"
    if hosts:
        head += " — hosts: " + ", ".join(f"{_e(h.get('name', '?'))} (<code>{_e(h.get('engine', '?'))}</code>)"
                                         for h in hosts if isinstance(h, dict))
    head += "</p>"
    if not nodes:
        return head + "<p>No nodes recorded (the cluster did not come up).</p>"
    rows = "".join(f"<tr><td>{_e(n)}</td><td>{_e((v or {}).get('role', '?'))}</td>"
                   f"<td>{_e((v or {}).get('host', 'local'))}</td></tr>"
                   for n, v in nodes.items() if isinstance(v, dict) or v is None)
    return head + f"<table><tr><th>node</th><th>role</th><th>host</th></tr>{rows}</table>"


def _img(p: pl.Plot) -> str:
    data = base64.b64encode(p.png).decode("ascii")
    return (f'<img alt="{_e(p.title)}" src="data:image/png;base64,{data}">'
            f'<div class="cap">{_e(p.caption)} — also saved as <a href="{_e(p.name)}">{_e(p.name)}</a></div>')


def _counterexamples(view: RunView, plots: dict[str, pl.Plot]) -> str:
    out = []
    n = 0
    for c in view.checks:
        if c.get("checker") != "linearizable" or c.get("verdict") != "INVALID":
            continue
        for fk in (c.get("evidence") or {}).get("failed_keys", [])[:3]:
            if not isinstance(fk, dict):
                continue
            n += 1
            out.append(f"<h3>key {_e(fk.get('key'))}</h3><p>{_e(fk.get('explanation', ''))}</p>")
            p = plots.get(f"plot-counterexample-{n}.png")
            if p:
                out.append(_img(p))
            ops = evi.parse_counterexample(fk)
            if ops:
                lis = "".join(
                    f'<li class="{"stuck" if o.stuck else "ctx" if o.context else ""}">{_e(o.line)}'
                    f'{" — cannot be placed" if o.stuck else " — linearizable prefix (earlier; leaves the starting state)" if o.context else ""}'
                    f"</li>" for o in ops)
                out.append(f"<ol>{lis}</ol>")
            else:
                out.append("<pre>" + _e("\n".join(map(str, fk.get("counterexample") or []))) + "</pre>")
    return "".join(out)


def _fault_table(view: RunView, bands: list[tl.FaultBand]) -> str:
    if not bands:
        return "<p>No faults recorded (faults.jsonl missing or empty).</p>"
    rows = []
    for b in bands:
        lag = (f"{b.in_effect - b.intended_start:.2f} s" if b.in_effect is not None and b.intended_start is not None
               else "—")
        healed = _rel(view, b.stopped) if b.stopped is not None else ("—" if b.outcome else "never healed")
        late = "—"
        if b.planned is not None and b.intended_start is not None:
            late = f"{b.intended_start - b.planned:.2f} s"
            if b.selector_wait:
                late += f" (of which {b.selector_wait:.2f} s waiting for its target)"
        details = evi.to_text(b.details) if b.details else ""
        if len(details) > 300:
            details = details[:299] + "…"
        outcome = f"{b.outcome}: {b.reason}" if b.outcome else ""
        rows.append(f"<tr><td>{_e(b.fault)}</td><td>{_e(b.kind)}</td><td>{_e(b.where)}</td>"
                    f"<td class=num>{_rel(view, b.intended_start)}</td><td class=num>{late}</td>"
                    f"<td class=num>{_rel(view, b.in_effect)}</td>"
                    f"<td class=num>{lag}</td><td class=num>{_rel(view, b.intended_stop)}</td>"
                    f"<td class=num>{healed}</td><td>{_e(outcome)}</td><td><code>{_e(details)}</code></td></tr>")
    return ("<table><tr><th>fault</th><th>kind</th><th>targets</th><th>intended start</th><th>late by</th><th>in effect</th>"
            "<th>time to effect</th><th>heal begun</th><th>heal verified</th><th>problem</th><th>details</th></tr>"
            + "".join(rows) + "</table>")


def _availability(stats: list[tl.PhaseStat]) -> str:
    rows = "".join(f"<tr><td>{_e(s.name)}</td><td class=num>{s.total:,}</td><td class=num>{s.ok:,}</td>"
                   f"<td class=num>{s.refused:,}</td><td class=num>{s.fail:,}</td><td class=num>{s.info:,}</td>"
                   f"<td class=num>{'—' if s.ok_share is None else f'{s.ok_share:.1%}'}</td></tr>" for s in stats)
    return ("<table><tr><th>phase</th><th>operations</th><th>ok</th>"
            "<th title='cas refused because the expected value did not match: a served, definite answer'>"
            "refused (cas)</th><th>fail</th><th>info</th><th>served share (ok + refused)</th></tr>"
            + rows + "</table>")


def _pre_json(text: str | None, obj: Any) -> str:
    if obj is not None:
        try:
            return f"<pre>{_e(json.dumps(obj, indent=2, sort_keys=False, default=str))}</pre>"
        except (TypeError, ValueError):
            pass
    return f"<pre>{_e(text)}</pre>" if text else "<p>(not present)</p>"


def _files(view: RunView) -> str:
    items = []
    try:
        entries = sorted(view.path.iterdir())
    except OSError:
        return ""
    for p in entries:
        try:
            size = f"{p.stat().st_size:,} bytes" if p.is_file() else "directory"
        except OSError:
            size = "?"
        items.append(f'<li><a href="{_e(p.name)}">{_e(p.name)}</a> ({size})</li>')
    return f"<ul>{''.join(items)}</ul>"


def render(view: RunView, plots: list[pl.Plot]) -> str:
    """The report page for `view` with `plots` embedded (pure: writes nothing)."""
    by_name = {p.name: p for p in plots}
    bands = tl.fault_bands(view.faults)
    title = f"chaos report: {view.experiment} seed {view.seed} — {view.verdict}"
    if view.plant:
        title = "PLANTED BUG — " + title
    sections = [("verdicts", "Verdicts", _verdicts(view))]
    cex = _counterexamples(view, by_name)
    if cex:
        sections.append(("counterexample", "Linearizability counterexample", cex))
    timeline = _img(by_name["plot-timeline.png"]) if "plot-timeline.png" in by_name else \
        "<p>No node journals, status polls or faults to draw.</p>"
    sections.append(("timeline", "Timeline", timeline + _fault_table(view, bands)))
    if "plot-latency.png" in by_name:
        sections.append(("latency", "Latency and throughput", _img(by_name["plot-latency.png"])))
        sections.append(("availability", "Availability per phase",
                         _availability(tl.phase_stats(view)) + _img(by_name["plot-availability.png"])))
    else:
        sections.append(("latency", "Latency and throughput", "<p>No client operations to show.</p>"))
    sections.append(("nodes", "Nodes and hosts", _nodes(view)))
    sections += [("plan", "Plan (plan.json)", _pre_json(view.plan_text, view.plan)),
                 ("experiment", "Experiment file (experiment.yaml, as run)",
                  f"<pre>{_e(view.experiment_text)}</pre>" if view.experiment_text else "<p>(not present)</p>"),
                 ("config", "Configuration (run.json)", _pre_json(None, view.run or None)),
                 ("files", "Files in the run directory", _files(view))]
    nav = "<nav>" + "".join(f'<a href="#{sid}">{_e(t)}</a>' for sid, t, _ in sections) + "</nav>"
    body = "\n".join(f'<section id="{sid}"><h2>{_e(t)}</h2>{content}</section>' for sid, t, content in sections)
    generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>\n"
            f"{_header(view)}\n{nav}\n{body}\n"
            f'<footer class="cap">Generated by <code>chaos report</code> at {generated} from {_e(str(view.path))}.'
            f"</footer></body></html>\n")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_report(run_dir: str | Path) -> Path:
    """(Re)build `report.html` and its PNG plots in `run_dir`; return the report's path.

    Raises chaos.errors.RunDirError when the directory is missing or unreadable or cannot be written.
    Damaged or missing files inside it only add notes to the report.
    """
    from chaos.errors import RunDirError

    view = load(run_dir)
    plots = pl.render_all(view)
    page = render(view, plots).encode("utf-8")
    out = view.path / REPORT_NAME
    try:
        for p in plots:
            _write_atomic(view.path / p.name, p.png)
        _write_atomic(out, page)
        current = {p.name for p in plots}
        for old in view.path.glob("plot-*.png"):  # e.g. a counterexample the run no longer has
            if old.name not in current:
                old.unlink()
    except OSError as exc:
        raise RunDirError(f"cannot write the report into {view.path}: {exc.strerror}") from None
    return out


__all__ = ["write_report", "render", "REPORT_NAME"]
