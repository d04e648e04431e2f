"""Client histories: reading and writing `history.jsonl`, and Jepsen's text logs.

Owns: the history event format of docs/contracts.md section 5 (validation of each line), pairing of
invocations with completions into `Op` records, and the Jepsen text-log reader/writer used for the
reference histories in ../shared/histories.

Must not import: click, rich, docker, anything under `chaos.checkers` (checkers import this module,
never the other way round), or `swarmnode`.

Pairing rule (Jepsen's model): every `invoke` is completed by the next event of the same process.
A completion of type `ok` / `fail` / `info` gives the operation that type; an invoke with no
completion before the end of the history is `info` (it may have taken effect, or not). A completion
with no pending invoke, or an invoke while the process already has one pending, is a `HistoryError`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

EVENT_TYPES = ("invoke", "ok", "fail", "info")
FUNCTIONS = ("read", "write", "cas", "delete")
CAS_REFUSED = "cas-mismatch"  # error of a cas refused on a value mismatch: served and definite, "refused"


def refused(typ: str | None, error: str | None) -> bool:
    """A completion that is a cas refused because the expected value did not match: recorded as
    `fail` (it did not take effect), but the store served it; reports name it "refused", never a
    failure."""
    return typ == "fail" and error == CAS_REFUSED


class HistoryError(ValueError):
    """A history line that does not follow the contract; the message names the line."""


@dataclass(frozen=True, slots=True)
class Op:
    """One client operation: an invocation and its completion (if any).

    `type` is the completion type (`ok`, `fail`, `info`); an operation that never completed has type
    `info` and `complete_index` None. `value` is the invocation's value for write / cas / delete and
    the value read (completion value) for an `ok` read.
    """

    process: Any
    type: str
    f: str
    key: Any
    value: Any
    invoke_index: int
    complete_index: int | None
    invoke_ts: float | None
    complete_ts: float | None
    error: str | None = None
    result: Any = None  # completion value as recorded (e.g. delete's `existed`), else None
    attempts: int = 1   # HTTP attempts the client made (the completion's `attempts`; retries after a
                        # node could not serve it)

    @property
    def latency_s(self) -> float | None:
        if self.invoke_ts is None or self.complete_ts is None:
            return None
        return self.complete_ts - self.invoke_ts

    @property
    def refused(self) -> bool:
        """A cas refused on a value mismatch (a served answer; see `refused`)."""
        return refused(self.type, self.error)

    def describe(self) -> str:
        """One readable line, e.g. `p3 ok write k1 7  [#12..#15]`."""
        end = "…" if self.complete_index is None else f"#{self.complete_index}"
        err = f" ({self.error})" if self.error else ""
        val = json.dumps(self.value)
        return f"p{self.process} {self.type} {self.f} {self.key} {val}{err}  [#{self.invoke_index}..{end}]"


def validate_event(ev: Any, where: str) -> dict:
    """Check one history event against the contract; return it (with `index` filled if absent)."""
    if not isinstance(ev, dict):
        raise HistoryError(f"{where}: expected a JSON object, got {type(ev).__name__}")
    for field in ("process", "type", "f"):
        if field not in ev:
            raise HistoryError(f"{where}: missing field {field!r}")
    if ev["type"] not in EVENT_TYPES:
        raise HistoryError(f"{where}: type {ev['type']!r} is not one of {', '.join(EVENT_TYPES)}")
    if ev["f"] not in FUNCTIONS:
        raise HistoryError(f"{where}: f {ev['f']!r} is not one of {', '.join(FUNCTIONS)}")
    if "index" in ev and (not isinstance(ev["index"], int) or isinstance(ev["index"], bool)):
        raise HistoryError(f"{where}: index {ev['index']!r} is not an integer")
    ts = ev.get("ts")
    if ts is not None and (not isinstance(ts, (int, float)) or isinstance(ts, bool)):
        raise HistoryError(f"{where}: ts {ts!r} is not a number")
    if ev["f"] == "cas" and ev["type"] == "invoke":
        v = ev.get("value")
        if not (isinstance(v, list) and len(v) == 2):
            raise HistoryError(f"{where}: cas invoke value must be [expected, new], got {v!r}")
    return ev


def iter_history_lines(lines: Iterable[str], source: str = "history") -> Iterator[dict]:
    """Parse JSON lines into validated events; blank lines are skipped. Missing `index` = position."""
    position = 0
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        try:
            ev = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HistoryError(f"{where}: not JSON ({exc.msg})") from None
        ev = validate_event(ev, where)
        if "index" not in ev:
            ev["index"] = position
        position += 1
        yield ev


def read_history(path: str | Path) -> list[dict]:
    """Read `history.jsonl`. Raises HistoryError on a bad line, OSError when unreadable."""
    path = Path(path)
    with path.open("r", encoding="utf-8") as fh:
        return list(iter_history_lines(fh, source=path.name))


def write_history(path: str | Path, events: Iterable[dict]) -> None:
    """Write events as JSON lines (one object per line, keys in insertion order)."""
    with Path(path).open("w", encoding="utf-8") as fh:
        for ev in events:
            fh.write(json.dumps(ev, separators=(",", ":")) + "\n")


def pair_ops(events: Iterable[dict]) -> list[Op]:
    """Pair invocations with completions (module docstring). Ops are ordered by invocation index."""
    pending: dict[Any, dict] = {}
    ops: list[Op] = []
    last_index = None
    for ev in events:
        idx = ev["index"]
        if not isinstance(idx, int) or (last_index is not None and idx <= last_index):
            raise HistoryError(f"event index {idx!r} after {last_index!r}: indexes must increase "
                               f"(they give the real-time order)")
        last_index = idx
        proc = ev["process"]
        if ev["type"] == "invoke":
            if proc in pending:
                raise HistoryError(
                    f"event #{ev['index']}: process {proc} invoked while #{pending[proc]['index']} is pending")
            pending[proc] = ev
            continue
        inv = pending.pop(proc, None)
        if inv is None:
            raise HistoryError(f"event #{ev['index']}: {ev['type']} from process {proc} with no pending invoke")
        if inv["f"] != ev["f"]:
            raise HistoryError(f"event #{ev['index']}: completion f {ev['f']!r} does not match "
                               f"invoke #{inv['index']} f {inv['f']!r}")
        ops.append(_make_op(inv, ev))
    for inv in pending.values():
        ops.append(_make_op(inv, None))
    ops.sort(key=lambda o: o.invoke_index)
    return ops


def _make_op(inv: dict, comp: dict | None) -> Op:
    f = inv["f"]
    value = inv.get("value")
    result = None
    if comp is not None:
        result = comp.get("value")
        if f == "read" and comp["type"] == "ok":
            value = result
        if isinstance(value, list):
            value = list(value)
    return Op(
        process=inv["process"],
        type="info" if comp is None else comp["type"],
        f=f,
        key=inv.get("key"),
        value=value,
        invoke_index=inv["index"],
        complete_index=None if comp is None else comp["index"],
        invoke_ts=inv.get("ts"),
        complete_ts=None if comp is None else comp.get("ts"),
        error=None if comp is None else comp.get("error"),
        result=result if f == "delete" else None,
        attempts=_attempts(comp),
    )


def _attempts(comp: dict | None) -> int:
    n = None if comp is None else comp.get("attempts")
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else 1


# --- Jepsen text logs -------------------------------------------------------------------------

_JEPSEN_LINE = re.compile(r"jepsen\.util\s+-\s+(\S+)\s+:(\w+)\s+:(\w+)\s*(.*?)\s*$")


def _parse_jepsen_value(text: str, where: str) -> Any:
    text = text.strip()
    if text in ("", "nil"):
        return None
    if text.startswith(":"):  # a keyword such as :timed-out: the completion carries no value
        return None
    if text.startswith("[") and text.endswith("]"):
        return [_parse_jepsen_value(part, where) for part in text[1:-1].split()]
    try:
        return int(text)
    except ValueError:
        raise HistoryError(f"{where}: cannot parse value {text!r}") from None


def parse_jepsen_log(text: str, key: str = "k", source: str = "log") -> list[dict]:
    """Parse a Jepsen text log (fields separated by tabs or spaces) into history events.

    Lines without the `jepsen.util -` prefix are ignored. `:timed-out` (or any keyword) values become
    the invoke's value on `info`/`fail` completions, since such completions carry no value of their
    own. Event `index` is the position among parsed events.
    """
    events: list[dict] = []
    last_invoke: dict[Any, dict] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        m = _JEPSEN_LINE.search(line)
        if not m:
            continue
        where = f"{source}:{lineno}"
        proc_text, typ, f, raw = m.groups()
        try:
            proc: Any = int(proc_text)
        except ValueError:
            proc = proc_text
        value = _parse_jepsen_value(raw, where)
        if raw.strip().startswith(":") and typ != "invoke":
            inv = last_invoke.get(proc)
            value = inv.get("value") if inv and f != "read" else None
        ev = {"index": len(events), "process": proc, "type": typ, "f": f, "key": key, "value": value}
        validate_event(ev, where)
        if typ == "invoke":
            last_invoke[proc] = ev
        events.append(ev)
    return events


def read_jepsen_log(path: str | Path, key: str = "k") -> list[dict]:
    path = Path(path)
    return parse_jepsen_log(path.read_text(encoding="utf-8"), key=key, source=path.name)


def _format_jepsen_value(v: Any) -> str:
    if v is None:
        return "nil"
    if isinstance(v, list):
        return "[" + " ".join(_format_jepsen_value(x) for x in v) + "]"
    return json.dumps(v)


def format_jepsen_log(events: Iterable[dict]) -> str:
    """Render events as a Jepsen text log (tab-separated, the format `parse_jepsen_log` reads)."""
    out = []
    for ev in events:
        out.append(f"INFO  jepsen.util - {ev['process']}\t:{ev['type']}\t:{ev['f']}\t"
                   f"{_format_jepsen_value(ev.get('value'))}")
    return "\n".join(out) + ("\n" if out else "")
