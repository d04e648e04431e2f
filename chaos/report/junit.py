"""JUnit XML for CI gates (DESIGN.md section 9), built with the junit-xml library.

Owns the mapping from run directories to JUnit:
  * one `testsuite` per run directory (per seed when an experiment is repeated), named
    `<experiment> seed=<seed>`, id = run id; a planted bug is written into the suite name itself, and
    so is a control run (`[CONTROL RUN: faults not applied]`, property `control: true`);
  * one `testcase` per check, named `<experiment>.<check>` with classname `<experiment>` (so CI groups
    the same check across runs), and the check's duration; the `expectations` check becomes one
    testcase per expectation (`<experiment>.<check>.<expectation>`, the check's time shared out);
  * `failure` when a check is INVALID (message: what the evidence shows; body: evidence lines);
    `error` when a check is UNKNOWN or an expectation was never observed (inconclusive), and an
    extra `<experiment>.harness` testcase in `error` when run.json says the run ended in error or was
    interrupted, or when results.json is missing or damaged (the harness could not judge);
    `skipped` only when a check entry says so (`"skipped": true` or verdict `SKIPPED`);
  * properties: seed, hashes, image id, Toxiproxy, agent version, replay command, plant, ...;
    system-out: the run directory, the report path and the verdict table as text.
`write_error_junit` writes the file for a run that could not even start, and a run directory that
cannot be read at all gets a suite with one error testcase, so a gate never finds no report. junit-xml puts a suite's system-out before its testcases; the common JUnit schema wants
it after them, so the suites are reordered before writing (and `skipped` loses a `type` attribute
the schema does not know).

Must not import: docker, requests, matplotlib, the runner. Reads only the run directories.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from junit_xml import TestCase, TestSuite

from chaos.errors import RunDirError
from chaos.report import evidence as evi
from chaos.report.load import RunView, load

# run.json keys copied into <properties>, in this order (absent keys are left out)
PROPERTY_KEYS = ("seed", "run_id", "experiment_file", "experiment_sha256", "plan_sha256", "image", "image_id",
                 "toxiproxy", "agent_version", "replay", "command", "plant", "partial", "partial_reason",
                 "outcome", "control")
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: Any) -> str:
    return _ILLEGAL_XML.sub("\ufffd", text if isinstance(text, str) else evi.to_text(text))


def _time(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 else 0.0


def _iso(ts: Any) -> str | None:
    if not isinstance(ts, (int, float)):
        return None
    return dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def _properties(view: RunView) -> dict[str, str]:
    props: dict[str, str] = {}
    for k in PROPERTY_KEYS:
        v = view.seed if k == "seed" else view.run.get(k)
        if k == "plant":
            v = ",".join(view.plant) if view.plant else None
        if k == "control":  # a control run (chaos run --control): only ever written when true
            v = "true" if v is True else None
        if v is None or v == "" or (k == "partial" and not v):
            continue
        props[k] = _clean(v)
    props["run_dir"] = str(view.path)
    return props


def _check_cases(view: RunView, c: dict) -> list[TestCase]:
    exp = view.experiment
    name = str(c.get("name") or c.get("checker") or "?")
    verdict = evi.verdict_of(c)
    lines = "\n".join(evi.evidence_lines(c))
    split = evi.split_expectations(c)
    if split:
        share = _time(c.get("duration_s")) / len(split)
        cases = []
        for ex in split:
            tc = TestCase(f"{exp}.{name}.{ex.name}", classname=exp, elapsed_sec=share,
                          stdout=_clean(f"{'observed' if ex.observed else 'never observed'}: {ex.detail}"))
            if evi.is_skipped(c):
                tc.add_skipped_info(_clean(c.get("summary") or "skipped"))
            elif not ex.observed:
                tc.add_error_info(_clean(f"inconclusive: expectation {ex.name} never observed ({ex.detail})"),
                                  error_type="inconclusive")
            cases.append(tc)
        return cases
    tc = TestCase(f"{exp}.{name}", classname=exp, elapsed_sec=_time(c.get("duration_s")),
                  stdout=_clean(c.get("summary") or "") or None)
    if verdict == "SKIPPED":
        tc.add_skipped_info(_clean(c.get("summary") or "skipped"))
    elif verdict == "INVALID":
        tc.add_failure_info(_clean(evi.failure_message(c)), _clean(lines) or None,
                            failure_type=_clean(c.get("checker") or "INVALID"))
    elif verdict != "VALID":
        tc.add_error_info(_clean(f"inconclusive ({verdict}): {evi.brief(c, 900)}"), _clean(lines) or None,
                          error_type="inconclusive")
    return [tc]


def _system_out(view: RunView) -> str:
    out = [f"run directory: {view.path}"]
    out.append(f"report: {view.path / 'report.html'} (chaos report {view.path} rebuilds it)")
    if view.run.get("replay"):
        out.append(f"replay: {view.run['replay']}")
    if view.plant:
        out.append(f"PLANTED BUG(S): {', '.join(view.plant)} -- this run is NOT a real result")
    if view.run.get("control") is True:
        out.append("CONTROL RUN: the faults were planned and logged as `sham`, never applied -- a test of the experiment, not a result")
    if view.partial:
        out.append(f"PARTIAL RUN: {view.run.get('partial_reason') or 'no reason recorded'}")
    out.append(f"verdict: {view.verdict}")
    out.append("")
    out.append(evi.table_text(view.checks) if view.checks else "(no checks: the run was not judged)")
    if view.record_problems:
        out += ["", "record incomplete (as the checkers found it):"] + [f"  {m}" for m in view.record_problems[:50]]
    if view.notes:
        out += ["", "could not read:"] + [f"  {n}" for n in view.notes]
    return _clean("\n".join(out))


def suite_for(run_dir: str | Path) -> TestSuite:
    """The testsuite of one run directory (RunDirError if the directory itself is unusable)."""
    view = load(run_dir, timeline=False)
    exp = view.experiment
    cases: list[TestCase] = []
    problem = view.harness_problem
    if problem:
        tc = TestCase(f"{exp}.harness", classname=exp, elapsed_sec=_time(view.duration_s))
        tc.add_error_info(_clean(problem), _clean(view.run.get("error") or "") or None,
                          error_type="interrupted" if view.outcome == "interrupted" else "harness-error")
        cases.append(tc)
    for c in view.checks:
        cases.extend(_check_cases(view, c))
    name = f"{exp} seed={view.seed}"
    if view.plant:
        name += f" [PLANTED BUG: {', '.join(view.plant)} -- not a real result]"
    if view.run.get("control") is True:
        name += " [CONTROL RUN: faults not applied]"
    return TestSuite(_clean(name), cases, id=_clean(view.run.get("run_id") or view.path.name),
                     timestamp=_iso(view.run.get("started")), properties=_properties(view),
                     stdout=_system_out(view))


def _suite_element(suite: TestSuite) -> ET.Element:
    el = suite.build_xml_doc()
    for tag in ("system-out", "system-err"):  # the schema wants them after the testcases
        for child in el.findall(tag):
            el.remove(child)
            el.append(child)
    el.set("time", f"{float(el.get('time') or 0):.6f}")
    for sk in el.iter("skipped"):
        sk.attrib.pop("type", None)
    return el


def _write(path: Path, suites: list[TestSuite]) -> Path:
    root = ET.Element("testsuites", {"name": "chaos"})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    time_s = 0.0
    for s in suites:
        el = _suite_element(s)
        for k in totals:
            totals[k] += int(el.get(k, "0"))
        time_s += float(el.get("time", "0"))
        root.append(el)
    for k, v in totals.items():
        root.set(k, str(v))
    root.set("time", f"{time_s:.6f}")
    ET.indent(root)
    data = ET.tostring(root, encoding="unicode")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text('<?xml version="1.0" encoding="utf-8"?>\n' + data + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def _unusable_suite(run_dir: Path, exc: RunDirError) -> TestSuite:
    name = Path(run_dir).name or str(run_dir)
    tc = TestCase(f"{name}.harness", classname=name)
    tc.add_error_info(_clean(exc.message), error_type="harness-error")
    return TestSuite(_clean(f"{name} (run directory unusable)"), [tc], properties={"run_dir": str(run_dir)},
                     stdout=_clean(f"run directory: {run_dir}\n{exc.message}"))


def write_junit(run_dirs: list[Path], path: Path) -> Path:
    """One JUnit file for the run directories (one testsuite each); returns `path`. A directory that
    cannot be read at all still gets a suite, with one `error` testcase: never a missing report."""
    suites = []
    for d in run_dirs:
        try:
            suites.append(suite_for(d))
        except RunDirError as exc:
            suites.append(_unusable_suite(Path(d), exc))
    return _write(Path(path), suites)


def write_error_junit(path: Path, experiment: str, message: str, properties: dict) -> Path:
    """A run that could not start: one `<experiment>.harness` testcase in error with `message`."""
    tc = TestCase(f"{experiment}.harness", classname=experiment)
    tc.add_error_info(_clean(message), error_type="harness-error")
    props = {str(k): _clean(v) for k, v in (properties or {}).items() if v is not None}
    suite = TestSuite(_clean(f"{experiment} (did not start)"), [tc], properties=props or None,
                      stdout=_clean(f"the run could not start: {message}"))
    return _write(Path(path), [suite])
