"""Run directories for report tests: synthetic ones (chaos.report.synthetic) and ones with real
checker evidence (the checkers run on a synthetic directory with bugs put in on purpose)."""

from __future__ import annotations

import json
from pathlib import Path

from chaos.checkers import run_checks
from chaos.report import synthetic

T0 = synthetic.T0


def append_history(run_dir: Path, ops: list[tuple]) -> None:
    """Append operations after the last event of history.jsonl: (process, f, key, invoke value,
    completion type, completion value, invoke ms, completion ms), times relative to the end."""
    path = run_dir / "history.jsonl"
    events = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    idx = events[-1]["index"] + 1 if events else 0
    base = (events[-1]["ts"] if events else T0) + 0.01
    new = []
    for proc, f, key, inv_val, typ, comp_val, t_inv, t_comp in ops:
        new.append((t_inv, 1, {"process": proc, "type": "invoke", "f": f, "key": key, "value": inv_val,
                               "ts": base + t_inv / 1000}))
        new.append((t_comp, 0, {"process": proc, "type": typ, "f": f, "key": key, "value": comp_val,
                                "ts": base + t_comp / 1000}))
    with path.open("a") as fh:
        for _, _, ev in sorted(new, key=lambda x: (x[0], x[1])):
            fh.write(json.dumps({"index": idx, **ev}) + "\n")
            idx += 1


STALE_READ = [  # p104 reads 1 after the write of 2 completed: not linearizable
    (101, "write", "kx", 1, "ok", 1, 0, 10),
    (102, "write", "kx", 2, "ok", 2, 20, 60),
    (103, "read", "kx", None, "ok", 2, 30, 40),
    (105, "write", "kx", 3, "info", 3, 65, 200),
    (104, "read", "kx", None, "ok", 1, 70, 80),
]


def broken_run(path: Path, **kw) -> Path:
    """A run the real checkers judge INVALID three ways: a stale read on key `kx` (linearizable),
    two leaders in term 2 (raft-safety: m3 also claims term 2 at T0+30), and final stores that lost
    every acknowledged write (durability: the synthetic final stores are empty)."""
    d = synthetic.make_run(path, ops=120, clients=1, **kw)
    append_history(d, STALE_READ)
    with (d / "events" / "m3.jsonl").open("a") as fh:
        fh.write(json.dumps({"node": "m3", "seq": 99, "ts": T0 + 30, "boot": 1, "type": "role",
                             "role": "leader", "term": 2}) + "\n")
    run_checks(d, ["linearizable", "raft-safety", "durability",
                   "expectations:expect=leader-changed+ops-failed-in-phase:steady"])
    return d
