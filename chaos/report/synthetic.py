"""Synthetic run directories for report tests and benchmarks/report.py.

Owns: `make_run`, which writes a plausible run directory (docs/contracts.md section 5 plus the keys
the runner adds) without Docker: a seeded client history of any size, two faults with intended and
in-effect times (a partition of the first leader, a kill of a worker), manager journals with a leader
change, worker gossip events, status polls, final states, node logs and a results.json. The results
are made up to match `verdict` (tests that need real evidence run the checkers on the directory).

Must not import: docker, requests, matplotlib, the runner. Deterministic for a given seed.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

T0 = 1_700_000_000.0
PHASES = (("steady", 0.0, 20.0), ("fault", 20.0, 40.0), ("recovery", 40.0, 60.0))
EXPERIMENT_YAML = """\
# synthetic experiment (chaos.report.synthetic)
name: {name}
cluster: {{managers: {managers}, workers: {workers}}}
workload: {{clients: {clients}, keys: 10, mix: {{read: 0.5, write: 0.4, cas: 0.1}}}}
faults:
  - {{kind: partition, target: leader, at_s: 20, for_s: 20}}
  - {{kind: kill, target: "worker:random", at_s: 25, for_s: 7}}
expect: [leader-changed, "fault-applied:partition"]
"""


def _write_jsonl(path: Path, rows) -> None:
    with path.open("w", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows))


def _history(n_ops: int, clients: int, rng: random.Random, duration_s: float) -> list[dict]:
    """`n_ops` operations spread over `duration_s`; during the fault phase some fail or time out."""
    gap = duration_s * clients / max(1, n_ops)
    per_client = [n_ops // clients + (1 if c < n_ops % clients else 0) for c in range(clients)]
    raw: list[tuple[float, int, dict]] = []
    value = 0
    store: dict[str, int | None] = {}
    for c in range(clients):
        t = T0 + rng.random() * gap
        for _ in range(per_client[c]):
            key = f"k{rng.randrange(10)}"
            r = rng.random()
            f = "read" if r < 0.5 else "write" if r < 0.9 else "cas"
            in_fault = 20.0 <= t - T0 < 40.0
            lat = rng.lognormvariate(-5.3, 0.5)  # about 5 ms
            typ = "ok"
            if in_fault and rng.random() < 0.25:
                typ, lat = ("info", 1.0) if rng.random() < 0.6 else ("fail", rng.uniform(0.001, 0.05))
            value += 1
            inv_val: Any = None if f == "read" else value if f == "write" else [store.get(key), value]
            inv = {"process": c, "type": "invoke", "f": f, "key": key, "value": inv_val, "ts": round(t, 6)}
            comp: dict[str, Any] = {"process": c, "type": typ, "f": f, "key": key, "ts": round(t + lat, 6)}
            if f == "read":
                comp["value"] = store.get(key) if typ == "ok" else None
            else:
                comp["value"] = inv_val
                if typ == "ok":
                    store[key] = value
            if typ == "fail":
                comp["error"] = "not-leader"
            elif typ == "info":
                comp["error"] = "timeout"
            raw.append((inv["ts"], 1, inv))  # a completion sorts before an invoke at the same time
            raw.append((comp["ts"], 0, comp))
            t += lat + 0.0001 + rng.uniform(0.2, 1.8) * max(0.0, gap - lat)
    raw.sort(key=lambda x: (x[0], x[1]))
    out = []
    for i, (_, _, ev) in enumerate(raw):
        ev["index"] = i
        out.append(ev)
    return out


def _faults(first_leader: str, others: list[str], victim: str, old_style: bool) -> list[dict]:
    rows = []
    for fid, kind, targets, start, end, lag, heal_lag in (
            ("f1", "partition", [[first_leader], others], 20.0, 40.0, 0.3, 0.2),
            ("f2", "kill", [victim], 25.0, 32.0, 0.1, 1.0)):
        details = {"mode": "black-hole"} if kind == "partition" else {"signal": "SIGKILL"}
        base = {"fault": fid, "kind": kind, "targets": targets, "details": details}
        if not old_style:
            rows.append({"ts": T0 + start, "action": "intend-start", **base})
        rows.append({"ts": T0 + start + lag, "action": "start", "intended_ts": T0 + start, **base})
        if not old_style:
            rows.append({"ts": T0 + end, "action": "intend-stop", **base})
        rows.append({"ts": T0 + end + heal_lag, "action": "stop", **base})
    rows.sort(key=lambda r: r["ts"])
    return rows


def _raft_log(j: dict[str, list[dict]], managers: list[str], entries: list[float]) -> None:
    """append / commit / apply events for one log entry per acknowledged mutation (at its time), on
    every manager, as a real run's journals hold them (they dwarf the role events a report draws)."""
    h = ""
    for i, ts in enumerate(entries, 1):
        term = 1 if ts - T0 < 21.7 else 2
        h = f"{hash((h, i)) & 0xFFFFFFFFFFFFFFFF:016x}"
        for m in managers:
            seq = len(j[m]) + 1
            j[m].append({"node": m, "seq": seq, "ts": ts, "boot": 1, "type": "append", "index": i, "term": term,
                         "hash": h})
            j[m].append({"node": m, "seq": seq + 1, "ts": ts, "boot": 1, "type": "commit", "index": i})
            j[m].append({"node": m, "seq": seq + 2, "ts": ts, "boot": 1, "type": "apply", "index": i, "term": term,
                         "hash": h, "store_digest": h})


def _journals(managers: list[str], workers: list[str], victim: str, entries: list[float]) -> dict[str, list[dict]]:
    j: dict[str, list[dict]] = {n: [] for n in managers + workers}

    def ev(node, t, typ, boot=1, **fields):
        j[node].append({"node": node, "seq": len(j[node]) + 1, "ts": T0 + t, "boot": boot, "type": typ, **fields})

    for m in managers:
        ev(m, 0.0, "boot")
        ev(m, 0.5, "term", term=1)
        ev(m, 0.6, "role", role="leader" if m == managers[0] else "follower", term=1)
    # the partition isolates the first leader: the others elect managers[1] in term 2
    for m in managers[1:]:
        ev(m, 21.5, "term", term=2)
        ev(m, 21.5, "role", role="candidate" if m == managers[1] else "follower", term=2)
    ev(managers[1], 21.7, "role", role="leader", term=2)
    ev(managers[0], 20.9, "role", role="precandidate", term=1)
    ev(managers[0], 40.4, "term", term=2)
    ev(managers[0], 40.4, "role", role="follower", term=2)
    for w in workers:
        ev(w, 0.0, "boot")
    ev(workers[0], 26.0, "member", member=victim, state="suspect", incarnation=0)
    ev(workers[0], 28.0, "member", member=victim, state="dead", incarnation=0)
    ev(victim, 33.0, "boot", boot=2)
    ev(workers[0], 33.5, "member", member=victim, state="alive", incarnation=1)
    _raft_log(j, managers, entries)
    for m in managers:
        j[m].sort(key=lambda e: e["ts"])
        for k, e in enumerate(j[m], 1):
            e["seq"] = k
    return j


def _status(managers: list[str], workers: list[str], victim: str) -> list[dict]:
    rows = []
    for s in range(0, 60):
        for m in managers:
            if s < 21:
                st = {"role": "leader" if m == managers[0] else "follower", "term": 1, "leader": managers[0]}
            elif m == managers[0] and s < 41:
                st = {"role": "precandidate", "term": 1, "leader": None}
            else:
                st = {"role": "leader" if m == managers[1] else "follower", "term": 2, "leader": managers[1]}
            rows.append({"ts": T0 + s + 0.05, "node": m, "status": {**st, "commit_index": s * 10,
                                                                    "applied_index": s * 10}})
        for w in workers:
            st = {"error": "connection refused"} if (w == victim and 25 <= s < 33) else {"kind": "worker"}
            rows.append({"ts": T0 + s + 0.1, "node": w, "status": st})
    return rows


def make_results(verdict: str, checks: tuple[str, ...] = ("linearizable", "raft-safety", "durability",
                                                           "convergence", "availability")) -> dict:
    """Made-up results with the given overall verdict (the first check carries it)."""
    out = []
    for i, name in enumerate(checks):
        v = verdict if i == 0 else "VALID"
        out.append({"name": name, "checker": name, "verdict": v, "summary": f"synthetic {v.lower()} {name}",
                    "evidence": {}, "params": {"timeout_s": 60.0}, "duration_s": 0.01 * (i + 1)})
    out.append({"name": "expectations", "checker": "expectations", "verdict": "VALID",
                "summary": "all 2 expectation(s) observed",
                "evidence": {"expectations": {"leader-changed": {"observed": True, "detail": "leaders: 2"},
                                              "fault-applied:partition": {"observed": True,
                                                                          "detail": "1 partition fault start(s)"}},
                             "never_observed": []},
                "params": {"expect": ["leader-changed", "fault-applied:partition"]}, "duration_s": 0.002})
    return {"verdict": verdict, "checks": out}


def make_run(path: str | Path, *, ops: int = 2000, managers: int = 3, workers: int = 5, clients: int = 16,
             seed: int = 7, name: str = "leader-partition", verdict: str = "VALID", results: dict | None = None,
             old_style_faults: bool = False, run_extra: dict | None = None) -> Path:
    """Write a synthetic run directory at `path` (created) and return it."""
    rng = random.Random(seed)
    path = Path(path)
    (path / "events").mkdir(parents=True, exist_ok=True)
    (path / "final").mkdir(exist_ok=True)
    (path / "logs").mkdir(exist_ok=True)
    ms = [f"m{i + 1}" for i in range(managers)]
    ws = [f"w{i + 1}" for i in range(workers)]
    victim = ws[min(2, len(ws) - 1)]
    events = _history(ops, clients, rng, 60.0)
    ended = max(T0 + 60.0, (events[-1]["ts"] + 0.5) if events else 0.0)
    run = {
        "run_id": f"{name}-{seed}", "seed": seed, "started": T0, "ended": ended, "heal_ts": T0 + 40.2,
        "phases": [{"name": n, "start": T0 + a, "end": T0 + b} for n, a, b in PHASES],
        "nodes": {**{m: {"role": "manager"} for m in ms}, **{w: {"role": "worker"} for w in ws}},
        "experiment": name, "experiment_file": f"experiments/{name}.yaml",
        "experiment_sha256": "e" * 64, "plan_sha256": "a" * 64, "image": "chaos-node:synthetic",
        "image_id": "sha256:" + "1" * 64, "toxiproxy": "compatible", "agent_version": "0.1.0",
        "replay": f"chaos run experiments/{name}.yaml --seed {seed}",
        "command": f"chaos run experiments/{name}.yaml --seed {seed}", "plant": [], "partial": False,
        "outcome": "completed", "duration_s": round(ended - T0, 3),
    }
    run.update(run_extra or {})
    (path / "run.json").write_text(json.dumps(run, indent=2))
    plan = {"experiment": name, "seed": seed, "checks": ["linearizable", "raft-safety", "durability",
                                                          "convergence", "availability",
                                                          "expectations:expect=leader-changed+fault-applied:partition"],
            "expect": ["leader-changed", "fault-applied:partition"],
            "faults": [{"id": "f1", "kind": "partition", "at_s": 20, "for_s": 20, "target": "leader",
                        "params": {"mode": "black-hole"}},
                       {"id": "f2", "kind": "kill", "at_s": 25, "for_s": 7, "target": victim, "params": {}}]}
    (path / "plan.json").write_text(json.dumps(plan, indent=2))
    (path / "experiment.yaml").write_text(EXPERIMENT_YAML.format(name=name, managers=managers, workers=workers,
                                                                  clients=clients))
    _write_jsonl(path / "history.jsonl", events)
    _write_jsonl(path / "faults.jsonl", _faults(ms[0], ms[1:] + ws, victim, old_style_faults))
    _write_jsonl(path / "status.jsonl", _status(ms, ws, victim))
    acked = [e["ts"] for e in events if e["type"] == "ok" and e["f"] != "read"]
    for node, evs in _journals(ms, ws, victim, acked).items():
        _write_jsonl(path / "events" / f"{node}.jsonl", evs)
        (path / "logs" / f"{node}.log").write_text(f"{node}: synthetic log\n")
        (path / "final" / f"{node}.json").write_text(json.dumps({"status": {"kind": "manager" if node in ms else "worker"},
                                                                 "store": {"kv": {}}}))
    (path / "results.json").write_text(json.dumps(results if results is not None else make_results(verdict),
                                                  indent=2))
    return path
