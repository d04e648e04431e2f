"""Synthetic run directories for checker tests (docs/contracts.md sections 4 and 5).

Owns: `RunBuilder` (history events, journals, final states, status polls, faults, run.json) and
`healthy_cluster`, which writes a consistent 3-manager / 2-worker run that every checker judges VALID.
Tests then break one thing on purpose. Must not import: docker, swarmnode runtime.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

T0 = 1_700_000_000.0


def chain(prev: str, term: int, data: str) -> str:
    return hashlib.sha256(f"{prev}|{term}|{data}".encode()).hexdigest()[:16]


class RunBuilder:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.run: dict = {"run_id": "test", "seed": 1, "started": T0, "ended": T0 + 100, "phases": [], "nodes": {}}
        self.plan: dict | None = None
        self.events: list[dict] = []
        self.journals: dict[str, list[dict]] = {}
        self.boots: dict[str, int] = {}
        self.finals: dict[str, dict] = {}
        self.status: list[dict] = []
        self.faults: list[dict] = []
        self._open: dict = {}

    # -- history --
    def invoke(self, p, f, key, value=None, ts=None):
        ev = {"index": len(self.events), "process": p, "type": "invoke", "f": f, "key": key, "value": value,
              "ts": T0 + len(self.events) * 0.01 if ts is None else ts}
        self.events.append(ev)
        self._open[p] = ev
        return ev

    def complete(self, p, typ="ok", value="same", ts=None, error=None):
        inv = self._open.pop(p)
        ev = {"index": len(self.events), "process": p, "type": typ, "f": inv["f"], "key": inv["key"],
              "value": inv["value"] if value == "same" else value,
              "ts": T0 + len(self.events) * 0.01 if ts is None else ts}
        if error:
            ev["error"] = error
        self.events.append(ev)
        return ev

    def op(self, p, f, key, value=None, typ="ok", result="same", ts=None, dur=0.005):
        self.invoke(p, f, key, value, ts=ts)
        self.complete(p, typ, result if result != "same" else (value if f != "read" else None),
                      ts=None if ts is None else ts + dur)

    # -- journals --
    def node(self, name, role):
        self.run["nodes"][name] = {"role": role}
        self.journals.setdefault(name, [])
        self.boots.setdefault(name, 1)

    def j(self, node, type_, ts=None, **fields):
        evs = self.journals.setdefault(node, [])
        ev = {"node": node, "seq": len(evs) + 1, "ts": ts if ts is not None else T0 + len(evs) * 0.01,
              "boot": self.boots.get(node, 1), "type": type_, **fields}
        evs.append(ev)
        return ev

    def restart(self, node, ts=None):
        self.boots[node] = self.boots.get(node, 1) + 1
        self.j(node, "boot", ts=ts)

    def write(self) -> Path:
        """(Re)write the whole directory: tests mutate the builder and write again."""
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        (self.path / "run.json").write_text(json.dumps(self.run))
        if self.plan is not None:
            (self.path / "plan.json").write_text(json.dumps(self.plan))
        with (self.path / "history.jsonl").open("w") as fh:
            for ev in self.events:
                fh.write(json.dumps(ev) + "\n")
        (self.path / "events").mkdir(exist_ok=True)
        for node, evs in self.journals.items():
            with (self.path / "events" / f"{node}.jsonl").open("w") as fh:
                for ev in evs:
                    fh.write(json.dumps(ev) + "\n")
        (self.path / "final").mkdir(exist_ok=True)
        for node, fin in self.finals.items():
            (self.path / "final" / f"{node}.json").write_text(json.dumps(fin))
        for name, rows in (("status.jsonl", self.status), ("faults.jsonl", self.faults)):
            with (self.path / name).open("w") as fh:
                for r in rows:
                    fh.write(json.dumps(r) + "\n")
        return self.path


MANAGERS = ("m1", "m2", "m3")
WORKERS = ("w1", "w2")


def healthy_cluster(path: Path, entries: int = 6) -> RunBuilder:
    """A consistent run: m1 leads term 1, is killed at T0+10 (heal at T0+20), m2 leads term 2.

    Every manager appends, commits and applies the same entries (chain hashes, store digests);
    history: ok writes/reads on k1/k2 consistent with the final store; gossip members all alive;
    service `web` with 2 running tasks moving forward; status polls agree 1 s after heal.
    """
    b = RunBuilder(path)
    heal = T0 + 20
    b.run.update(heal_ts=heal, phases=[{"name": "steady", "start": T0, "end": T0 + 10},
                                       {"name": "fault", "start": T0 + 10, "end": heal},
                                       {"name": "recovery", "start": heal, "end": T0 + 40}])
    for m in MANAGERS:
        b.node(m, "manager")
    for w in WORKERS:
        b.node(w, "worker")
    # term 1: m1 leader, entries 1..entries-2 ; term 2: m2 leader, rest
    log: list[tuple[int, str, str]] = []   # (term, hash, digest)
    prev = ""
    for i in range(1, entries + 1):
        term = 1 if i <= entries - 2 else 2
        prev = chain(prev, term, f"e{i}")
        log.append((term, prev, f"d{i}"))
    for m in MANAGERS:
        b.j(m, "boot", ts=T0)
        b.j(m, "term", ts=T0 + 1, term=1)
    b.j("m2", "vote", ts=T0 + 1, term=1, candidate="m1")
    b.j("m3", "vote", ts=T0 + 1, term=1, candidate="m1")
    b.j("m1", "vote", ts=T0 + 1, term=1, candidate="m1")
    b.j("m1", "role", ts=T0 + 1.1, role="leader", term=1)
    for m in ("m2", "m3"):
        b.j(m, "role", ts=T0 + 1.1, role="follower", term=1)
    n1 = entries - 2
    for m in MANAGERS:
        for i in range(1, n1 + 1):
            t, h, _ = log[i - 1]
            b.j(m, "append", ts=T0 + 2 + i * 0.01, index=i, term=t, hash=h)
        b.j(m, "commit", ts=T0 + 3, index=n1)
        for i in range(1, n1 + 1):
            t, h, d = log[i - 1]
            b.j(m, "apply", ts=T0 + 3 + i * 0.01, index=i, term=t, hash=h, store_digest=d)
    # m1 is killed at T0+10, m2 wins term 2, m1 restarts after heal
    b.faults += [{"ts": T0 + 10, "fault": "f1", "action": "start", "kind": "kill", "targets": ["m1"], "details": {}},
                 {"ts": heal, "fault": "f1", "action": "stop", "kind": "kill", "targets": ["m1"], "details": {}}]
    for m in ("m2", "m3"):
        b.j(m, "term", ts=T0 + 12, term=2)
        b.j(m, "vote", ts=T0 + 12, term=2, candidate="m2")
    b.j("m2", "role", ts=T0 + 12.5, role="leader", term=2)
    b.j("m3", "role", ts=T0 + 12.5, role="follower", term=2)
    b.restart("m1", ts=heal + 0.1)
    b.j("m1", "term", ts=heal + 0.6, term=2)
    b.j("m1", "role", ts=heal + 0.6, role="follower", term=2)
    for m in MANAGERS:
        base = heal + 0.5 if m == "m1" else T0 + 13
        for i in range(n1 + 1, entries + 1):
            t, h, _ = log[i - 1]
            b.j(m, "append", ts=base + i * 0.01, index=i, term=t, hash=h)
        b.j(m, "commit", ts=base + 0.5, index=entries)
        start = 1 if m == "m1" else n1 + 1   # m1 re-applies from 1 after restart
        for i in range(start, entries + 1):
            t, h, d = log[i - 1]
            b.j(m, "apply", ts=base + 0.6 + i * 0.01, index=i, term=t, hash=h, store_digest=d)
    # gossip + tasks
    for w in WORKERS:
        b.j(w, "boot", ts=T0)
        b.j(w, "member", ts=T0 + 11, member="m1", state="suspect", incarnation=0)
        b.j(w, "member", ts=T0 + 12, member="m1", state="dead", incarnation=0)
        b.j(w, "member", ts=heal + 2, member="m1", state="alive", incarnation=1)
    for slot, w in enumerate(WORKERS, 1):
        for st, dt in (("new", 0), ("assigned", 0.1), ("running", 0.2)):
            b.j("m2", "task", ts=T0 + 5 + dt, task=f"web.{slot}", service="web", slot=slot, worker=w, state=st)
        for st, dt in (("assigned", 0.15), ("running", 0.25)):
            b.j(w, "task", ts=T0 + 5 + dt, task=f"web.{slot}", service="web", slot=slot, worker=w, state=st)
    # history: k1 written and read; k2 written then cas; heal-after write
    b.op(0, "write", "k1", 1, ts=T0 + 1.5)
    b.op(1, "read", "k1", result=1, ts=T0 + 1.6)
    b.op(0, "write", "k2", 10, ts=T0 + 2)
    b.op(1, "cas", "k2", [10, 11], ts=T0 + 2.1)
    b.op(2, "cas", "k2", [99, 12], typ="fail", result=[99, 12], ts=T0 + 2.2)
    b.op(0, "write", "k1", 2, typ="info", result=2, ts=T0 + 10.5)
    b.op(1, "read", "k1", typ="fail", result=None, ts=T0 + 11)
    b.op(0, "write", "k3", 30, ts=heal + 1)
    b.op(1, "read", "k3", result=30, ts=heal + 2)
    b.op(2, "read", "k2", result=11, ts=heal + 2.1)
    kv = {"k1": 2, "k2": 11, "k3": 30}
    members = {n: {"state": "alive", "incarnation": 1 if n == "m1" else 0} for n in (*MANAGERS, *WORKERS)}
    services = {"web": {"replicas": 2}}
    tasks = {f"web.{s}": {"service": "web", "slot": s, "worker": w, "state": "running"}
             for s, w in enumerate(WORKERS, 1)}
    last = log[-1]
    for m in MANAGERS:
        st = {"node": m, "kind": "manager", "role": "leader" if m == "m2" else "follower", "term": 2,
              "leader": "m2", "applied_index": entries, "commit_index": entries, "store_digest": last[2],
              "members": {k: v for k, v in members.items() if k != m}}
        store = {"applied_index": entries, "store_digest": last[2], "kv": kv, "services": services,
                 "tasks": tasks, "nodes": {}}
        b.finals[m] = {"status": st, "store": json.loads(json.dumps(store))}
    for w in WORKERS:
        b.finals[w] = {"status": {"node": w, "kind": "worker", "role": "worker", "leader": "m2",
                                  "members": {k: v for k, v in members.items() if k != w}}}
    # status polls: just after heal m1 is behind and seen dead; 1 s later all agree
    for n in (*MANAGERS, *WORKERS):
        s0 = json.loads(json.dumps(b.finals[n]["status"]))
        if n == "m1":
            s0["applied_index"], s0["store_digest"] = entries - 2, log[entries - 3][2]
        elif "m1" in s0["members"]:
            s0["members"]["m1"] = {"state": "dead", "incarnation": 0}
        b.status.append({"ts": heal + 0.2, "node": n, "status": s0})
    for n in (*MANAGERS, *WORKERS):
        b.status.append({"ts": heal + 3, "node": n, "status": b.finals[n]["status"]})
    return b
