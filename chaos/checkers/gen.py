"""Seeded simulated register histories, for tests and benchmarks/checker.py.

Owns: `simulate(seed, clients, keys, ops)` producing history events (docs/contracts.md section 5) from a
correct, linearizable in-memory register (each operation takes effect at a random instant between its
invocation and completion), and `inject_stale_read(events, seed)` which turns one ok read into a read
of a value that was provably overwritten before the read began (so the history is not linearizable);
`cas_heavy(seed)`, one register with half the operations cas and small values, and `corrupt_read`,
which makes one read return a value nothing writes.

Must not import: click, rich, docker. Uses only its own `random.Random(seed)`.
"""

from __future__ import annotations

import heapq
import json
import random


def simulate(seed: int, clients: int = 20, keys: int = 100, ops: int = 1000, *, p_info: float = 0.02,
             mix: tuple[float, float, float, float] = (0.5, 0.3, 0.15, 0.05), values: int | None = None,
             final: dict | None = None) -> list[dict]:
    """Events of `ops` operations from `clients` concurrent clients over `keys` keys.

    mix: shares of read / write / cas / delete. Writes and cas carry unique values (values None; a
    cas then expects the current value 70 % of the time), or, with `values` N, values drawn from 1..N
    for writes and both cas operands, as the workload draws them. A cas whose expected value does not
    match completes as `fail` (definite, `cas-mismatch`). With probability `p_info` an operation times
    out (`info`); it took effect or not at random. `final`, if given, receives the register's final
    state (key -> value; deleted keys absent), i.e. what a correct store holds at the end.
    """
    rng = random.Random(seed)
    state: dict[str, int | None] = {}
    events: list[dict] = []
    heap: list[tuple[float, int, str, int]] = []
    seq = 0
    pending: dict[int, dict] = {}
    next_value = 1
    issued = 0
    now = 0.0
    t0 = 1_700_000_000.0

    def push(t: float, kind: str, client: int) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(heap, (t, seq, kind, client))

    for c in range(clients):
        push(rng.random() * 0.01, "invoke", c)
    while heap:
        now, _, kind, c = heapq.heappop(heap)
        if kind == "invoke":
            if issued >= ops:
                continue
            issued += 1
            key = f"k{rng.randrange(keys)}"
            r = rng.random()
            if r < mix[0]:
                f, value = "read", None
            elif values is not None and r < mix[0] + mix[1] + mix[2]:
                f = "write" if r < mix[0] + mix[1] else "cas"
                value = rng.randint(1, values) if f == "write" else [rng.randint(1, values), rng.randint(1, values)]
            elif r < mix[0] + mix[1]:
                f, value = "write", next_value
                next_value += 1
            elif r < mix[0] + mix[1] + mix[2]:
                cur = state.get(key)
                exp = cur if (cur is not None and rng.random() < 0.7) else rng.randrange(1, max(2, next_value))
                f, value = "cas", [exp, next_value]
                next_value += 1
            else:
                f, value = "delete", None
            info = rng.random() < p_info
            op = {"key": key, "f": f, "value": value, "info": info, "takes_effect": (not info) or rng.random() < 0.5}
            pending[c] = op
            events.append({"index": len(events), "process": c, "type": "invoke", "f": f, "key": key,
                           "value": value, "ts": round(t0 + now, 6)})
            lin = now + rng.expovariate(1 / 0.002)
            done = lin + rng.expovariate(1 / 0.002)
            push(lin, "linearize", c)
            push(done, "complete", c)
        elif kind == "linearize":
            op = pending[c]
            if not op["takes_effect"]:
                op["result"] = ("info", None)
                continue
            key, f, value = op["key"], op["f"], op["value"]
            cur = state.get(key)
            if f == "read":
                op["result"] = ("ok", cur)
            elif f == "write":
                state[key] = value
                op["result"] = ("ok", value)
            elif f == "cas":
                if cur == value[0]:
                    state[key] = value[1]
                    op["result"] = ("ok", value)
                else:
                    op["result"] = ("fail", value)
            else:
                state[key] = None
                op["result"] = ("ok", cur is not None)
        else:
            op = pending.pop(c)
            typ, val = op["result"]
            if op["info"]:
                typ, val = "info", (None if op["f"] in ("read", "delete") else op["value"])
            ev = {"index": len(events), "process": c, "type": typ, "f": op["f"], "key": op["key"],
                  "value": val, "ts": round(t0 + now, 6)}
            if typ == "fail":
                ev["error"] = "cas-mismatch"
            elif typ == "info":
                ev["error"] = "timeout"
            events.append(ev)
            push(now + rng.expovariate(1 / 0.001), "invoke", c)
    if final is not None:
        final.update({k: v for k, v in state.items() if v is not None})
    return events


def inject_stale_read(events: list[dict], seed: int) -> tuple[list[dict], dict]:
    """Copy of `events` where one ok read returns a value overwritten before the read was invoked.

    Chooses a read R of key K and two ok writes W1 (value v) and W2 with W1 complete < W2 invoke and
    W2 complete < R invoke; R's value becomes v. Values are unique, so no later operation writes v
    again, and R cannot be linearized. Returns (events, description).
    """
    rng = random.Random(seed)
    comp: dict[int, dict] = {}
    open_: dict = {}
    ops = []
    for ev in events:
        if ev["type"] == "invoke":
            open_[ev["process"]] = ev
        else:
            inv = open_.pop(ev["process"])
            ops.append((inv, ev))
            comp[inv["index"]] = ev
    writes_by_key: dict[str, list] = {}
    for inv, c in ops:
        if inv["f"] == "write" and c["type"] == "ok":
            writes_by_key.setdefault(inv["key"], []).append((inv, c))
    reads = [(inv, c) for inv, c in ops if inv["f"] == "read" and c["type"] == "ok"]
    rng.shuffle(reads)
    for rinv, rc in reads:
        ws = [w for w in writes_by_key.get(rinv["key"], []) if w[1]["index"] < rinv["index"]]
        for i in range(len(ws) - 1, 0, -1):
            w2 = ws[i]
            w1 = next((w for w in reversed(ws[:i]) if w[1]["index"] < w2[0]["index"]), None)
            if w1 is not None and w1[0]["value"] != rc["value"]:
                out = [dict(ev) for ev in events]
                out[rc["index"]]["value"] = w1[0]["value"]
                return out, {"read_invoke": rinv["index"], "read_complete": rc["index"], "key": rinv["key"],
                             "stale_value": w1[0]["value"], "overwritten_by_invoke": w2[0]["index"]}
    raise ValueError("no read suitable for a stale-read injection")


CAS_HEAVY_MIX = (0.3, 0.2, 0.5, 0.0)  # read / write / cas / delete: half the operations are cas


def cas_heavy(seed: int, ops: int = 10_000, clients: int = 20, values: int = 3,
              p_info: float = 0.01) -> list[dict]:
    """One register (key `k0`) under `clients` concurrent processes, half of the operations cas,
    values drawn from 1..`values` as `workload.values: N` draws them (so about a third of the cas
    succeed; 0.34 with the defaults and seed 1), 1 % timed out (`info`). Linearizable by
    construction (`simulate`): the checker's hard case, with many equal states and overlaps."""
    return simulate(seed=seed, clients=clients, keys=1, ops=ops, p_info=p_info, mix=CAS_HEAVY_MIX,
                    values=values)


def corrupt_read(events: list[dict], after: int, value=0) -> tuple[list[dict], dict]:
    """Copy of `events` where the first `ok` read completing after event index `after` returns
    `value` instead, a value no operation writes (the default 0 is outside 1..N and not absent), so
    the copy is not linearizable: nothing could have left that value. Returns (events, description)."""
    written = {json.dumps(ev.get("value")) for ev in events if ev["f"] == "write"}
    written |= {json.dumps(ev["value"][1]) for ev in events if ev["f"] == "cas" and ev["type"] == "invoke"}
    if json.dumps(value) in written:
        raise ValueError(f"value {value!r} is written by an operation of the history")
    for ev in events:
        if ev["index"] > after and ev["f"] == "read" and ev["type"] == "ok":
            out = [dict(e) for e in events]
            pos = next(i for i, e in enumerate(out) if e["index"] == ev["index"])
            out[pos]["value"] = value
            return out, {"read_complete": ev["index"], "process": ev["process"], "was": ev["value"],
                         "now": value}
    raise ValueError(f"no ok read completes after event {after}")
