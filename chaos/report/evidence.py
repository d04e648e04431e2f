"""Readable evidence from results.json check entries (chaos/checkers/core.py `CheckResult.to_json`).

Owns: turning each checker's evidence (as stored in results.json, plain JSON) into a few lines of
text for JUnit messages, the console and the HTML verdict table; splitting the `expectations`
check into one item per expectation; and parsing the `linearizable` counterexample lines
(`Op.describe()`: `p3 ok write k1 7  [#12..#15]`) back into operations for the picture.

Unknown evidence shapes degrade to the summary alone; nothing here raises on odd data.
Must not import: docker, requests, matplotlib, the runner.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

MAX_LINES = 40


def _d(x: Any) -> dict:
    return x if isinstance(x, dict) else {}


def _l(x: Any) -> list:
    return x if isinstance(x, list) else []


def is_skipped(check: dict) -> bool:
    return check.get("skipped") is True or check.get("verdict") == "SKIPPED"


def evidence_lines(check: dict, limit: int = MAX_LINES) -> list[str]:
    """A few lines that say what went wrong (empty for a VALID check with nothing notable)."""
    ev = _d(check.get("evidence"))
    lines: list[str] = []
    for f in _l(ev.get("failed_keys"))[:3]:  # linearizable
        f = _d(f)
        cex = [str(x) for x in _l(f.get("counterexample"))]
        lines.append(f"key {f.get('key')}: {f.get('explanation') or 'not linearizable'}")
        ctx = [str(x) for x in _l(f.get("context"))]
        if ctx:
            lines.append("  earlier operations that leave the starting state(s):")
            lines.extend("    " + x for x in ctx[-4:])
        lines.append(f"  operations that cannot be ordered ({len(cex)}):")
        lines.extend("    " + x for x in cex[-12:])
    for f in _l(ev.get("budget_keys"))[:3]:
        f = _d(f)
        lines.append(f"key {f.get('key')}: over the search budget ({f.get('reason')}, {f.get('ops')} ops)")
    for rule, items in _d(ev.get("violations")).items():  # raft-safety
        for it in _l(items)[:3]:
            lines.append(f"{rule}: {_d(it).get('detail', it)}")
    for it in _l(ev.get("lost"))[:5]:  # durability
        lines.append(str(_d(it).get("detail", it)))
    for name, part in _d(ev.get("parts")).items():  # convergence
        part = _d(part)
        if part.get("verdict") not in (None, "VALID"):
            lines.append(f"{name}: {part.get('summary', '')}")
            lines.extend(f"  {p}" for p in _l(part.get("final_problems"))[:5])
    for m in _l(ev.get("misses"))[:5]:  # availability / recovery
        lines.append(str(m))
    exps = _d(ev.get("expectations"))
    for e in _l(ev.get("never_observed")):  # expectations
        lines.append(f"never observed: {e} ({_d(exps.get(e)).get('detail', '')})")
    tb = ev.get("traceback")
    if isinstance(tb, str):
        lines.extend(tb.rstrip().splitlines()[-6:])
    if isinstance(ev.get("traceback_file"), str):
        lines.append(f"traceback: {ev['traceback_file']}")
    gaps = [_d(g).get("message") for g in _l(ev.get("record_gaps"))]  # incomplete record (rundir Gaps)
    lines.extend(f"record incomplete: {m}" for m in gaps[:5] if m)
    n = ev.get("record_gap_count")
    if isinstance(n, int) and n > 5:
        lines.append(f"record incomplete: … and {n - 5} more")
    return lines[:limit]


def brief(check: dict, width: int = 300) -> str:
    """One line: the summary, plus the first evidence line when it adds something."""
    summary = str(check.get("summary") or "")
    lines = [x.strip() for x in evidence_lines(check, 3)]
    extra = next((x for x in lines if x and x not in summary), "")
    text = f"{summary} — {extra}" if extra and check.get("verdict") != "VALID" else summary
    return text if len(text) <= width else text[: width - 1] + "…"


def failure_message(check: dict, width: int = 900) -> str:
    """The concise message of a JUnit failure/error: what the evidence shows, in one paragraph."""
    ev = _d(check.get("evidence"))
    parts = [str(check.get("summary") or check.get("verdict") or "")]
    for f in _l(ev.get("failed_keys"))[:2]:
        f = _d(f)
        ops = parse_counterexample(f)
        stuck = next((o for o in ops if o.stuck), None)
        others = [o.line for o in ops if not o.stuck]
        if stuck is not None:
            parts.append(f"key {f.get('key')}: cannot place [{stuck.line}] after "
                         f"[{'; '.join(others[-4:])}]" if others else
                         f"key {f.get('key')}: cannot place [{stuck.line}]")
    for rule, items in _d(ev.get("violations")).items():
        detail = str(_d(_l(items)[0]).get("detail", "")) if _l(items) else ""
        if detail and detail not in parts[0]:
            parts.append(f"{rule}: {detail}")
    lost = _l(ev.get("lost"))
    if lost and len(parts) == 1:
        parts.append(str(_d(lost[0]).get("detail", "")))
    text = "; ".join(p for i, p in enumerate(parts) if p and (i == 0 or p not in parts[0]))
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass(frozen=True)
class Expectation:
    name: str
    observed: bool
    detail: str


def split_expectations(check: dict) -> list[Expectation] | None:
    """The expectations check as one item per expectation; None when its evidence has no table."""
    ev = _d(check.get("evidence"))
    table = ev.get("expectations")
    if check.get("checker") != "expectations" or not isinstance(table, dict) or not table:
        return None
    return [Expectation(str(k), bool(_d(v).get("observed")), str(_d(v).get("detail", ""))) for k, v in table.items()]


def verdict_of(check: dict) -> str:
    return "SKIPPED" if is_skipped(check) else str(check.get("verdict") or "?")


def table_text(checks: list[dict], width: int = 100) -> str:
    """The verdict table as plain text (JUnit system-out, logs): check, verdict, time, summary."""
    rows = [("check", "verdict", "time", "summary")]
    for c in checks:
        d = c.get("duration_s")
        rows.append((str(c.get("name", "?")), verdict_of(c), f"{d:.2f}s" if isinstance(d, (int, float)) else "",
                     brief(c, width)))
        for ex in split_expectations(c) or []:
            rows.append((f"  expect {ex.name}", "VALID" if ex.observed else "UNKNOWN", "",
                         ("observed: " if ex.observed else "never observed: ") + ex.detail))
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:>{w[2]}}  {r[3]}".rstrip() for r in rows)


# --- the linearizability counterexample -------------------------------------------------------

_CEX_LINE = re.compile(r"^p(?P<proc>\S+) (?P<type>ok|fail|info) (?P<f>\S+) (?P<key>\S+) (?P<rest>.*?)"
                       r"\s+\[#(?P<inv>\d+)\.\.(?:#(?P<comp>\d+)|…)\]\s*$")


@dataclass(frozen=True)
class CexOp:
    line: str
    process: str
    type: str
    f: str
    key: str
    value: str
    invoke_index: int
    complete_index: int | None
    stuck: bool = False      # the operation that cannot be placed
    context: bool = False    # an earlier operation that only fixes the starting state


def _parse_line(line: str, context: bool = False) -> CexOp | None:
    m = _CEX_LINE.match(line)
    if not m:
        return None
    comp = m.group("comp")
    return CexOp(line, m.group("proc"), m.group("type"), m.group("f"), m.group("key"), m.group("rest").strip(),
                 int(m.group("inv")), int(comp) if comp is not None else None, False, context)


def parse_counterexample(failed_key: dict) -> list[CexOp]:
    """Operations of one failing key: context operations, then the counterexample.

    The operation that cannot be placed is the `ok` operation of the counterexample whose completion
    comes last: the counterexample is the smallest failing prefix of the history, so every operation
    completing before it can be linearized, and the search could not get past that completion.
    Lines that do not parse are left out.
    """
    cex = [o for o in (_parse_line(str(x)) for x in _l(failed_key.get("counterexample"))) if o]
    in_cex = {o.line for o in cex}  # an info operation may be in both: it may still land later
    ops = [o for o in (_parse_line(str(x), True) for x in _l(failed_key.get("context"))) if o and o.line not in in_cex]
    oks = [o for o in cex if o.type == "ok" and o.complete_index is not None]
    if oks:
        last = max(oks, key=lambda o: o.complete_index)
        cex = [replace(o, stuck=True) if o is last else o for o in cex]
    return ops + cex


def to_text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
