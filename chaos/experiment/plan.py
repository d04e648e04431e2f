"""The plan: an experiment and a seed expanded into a concrete, JSON-serialisable timeline.

Owns: the expansion of every random choice that can be made before the cluster exists (random
fault blocks drawn from their fault space, repetitions, per-fault and per-client seeds), the check
specs that will be judged (plan.json `checks`, the form `chaos check` reads), the plan hash, and the
human-readable rendering `chaos plan` prints. Same experiment and seed -> the same plan, byte for
byte (canonical JSON; no clock, no set iteration, no module-level random).

Targets stay selectors (leader, followers, ...): which node they name depends on the cluster at the
moment a fault fires; the nemesis resolves them then, with the fault's seed, and records the result.
Must not import: click, docker, requests, chaos.env.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

from chaos.experiment import schema as S
from chaos.experiment.loader import check_to_spec, expect_to_str

PLAN_VERSION = 1

# Parameters of faults drawn by a random block (per kind), unless its `params` say otherwise.
RANDOM_PARAMS = S.RANDOM_DEFAULTS

_TIMING = {"name", "at", "after", "delay", "for", "until", "max", "repeat"}


def _sub_seed(seed: int, label: str) -> int:
    """A stable 48-bit seed for one named choice (sha256, so it is the same in every process)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{label}".encode()).digest()[:6], "big")


def _target_json(target: Any) -> Any:
    if isinstance(target, list):
        return [_target_json(t) for t in target]
    if isinstance(target, S.TargetSpec):
        return target.model_dump(exclude_defaults=True) or {"role": "all"}
    return target


def _fault_spec(item: S.FaultBase) -> dict:
    """The kind-specific part of a fault (no timing), JSON, by alias, defaults included."""
    raw = item.model_dump(by_alias=True, mode="json", exclude=None)
    out = {k: v for k, v in raw.items() if k not in _TIMING and v is not None}
    for key in ("target", "isolate", "among", "bridge", "peers"):
        if getattr(item, key, None) is not None:
            out[key] = _target_json(getattr(item, key))
    if isinstance(item, S.PartitionFault) and item.one_way is not None:
        out["one-way"] = {"from": _target_json(item.one_way.from_), "to": _target_json(item.one_way.to)}
    return out


def _entry(fid: str, origin: str, spec: dict, seed: int, *, at_s: float | None, after: str | None,
           delay_s: float, for_s: float | None, until: dict | None, max_s: float | None) -> dict:
    return {"id": fid, "origin": origin, "kind": spec["fault"],
            "start": {"at_s": round(at_s, 6)} if at_s is not None else {"after": after, "delay_s": delay_s},
            "for_s": for_s, "until": until, "max_s": max_s, "spec": spec, "seed": _sub_seed(seed, f"fault:{fid}")}


def _random_faults(block: S.RandomSpace, index: int, seed: int) -> list[dict]:
    rng = random.Random(_sub_seed(seed, f"random:{index}"))
    prefix = block.name or f"r{index + 1}"
    faults = []
    lanes = [block.from_] * block.concurrency
    k = 0
    for lane in range(block.concurrency):
        t = lanes[lane]
        while True:
            dur = round(rng.uniform(*block.duration), 3)
            if t + dur > block.to or t >= block.to:
                break
            kind = rng.choice(block.kinds)
            target = rng.choice(block.targets)
            k += 1
            fid = f"{prefix}-{k}"
            spec: dict[str, Any] = {"fault": kind, **block.kind_params(kind)}
            if kind == "partition":
                spec.update({"isolate": _target_json(target), "mode": block.mode})
            else:
                spec["target"] = _target_json(target)
                if kind in S.LINK_KINDS:
                    spec.update({"peers": "all", "direction": "both"})
            faults.append(_entry(fid, f"schedule[{index}].random", spec, seed, at_s=round(t, 3), after=None, delay_s=0.0,
                                 for_s=round(dur, 3), until=None, max_s=None))
            t += dur + rng.uniform(*block.gap)
    faults.sort(key=lambda f: (f["start"]["at_s"], f["id"]))
    return faults


def _drawn_spec(item: S.FaultBase) -> dict:
    """A drawn fault's kind-specific part: only the keys written (a random block's faults carry no
    defaults either, so a block written out by `chaos export` plans to the same bytes)."""
    raw = item.model_dump(by_alias=True, mode="json", exclude_unset=True)
    out = {k: v for k, v in raw.items() if k not in _TIMING and v is not None}
    for key in ("target", "isolate", "among", "bridge", "peers"):
        if key in out:
            out[key] = _target_json(getattr(item, key))
    if "one-way" in out:
        out["one-way"] = {"from": _target_json(item.one_way.from_), "to": _target_json(item.one_way.to)}
    return out


def _drawn_faults(block: S.DrawnFaults, index: int, seed: int) -> list[dict]:
    return [_entry(f.name or f"{block.name}-{k}", f"schedule[{index}].random", _drawn_spec(f), seed,
                   at_s=f.at, after=None, delay_s=0.0, for_s=f.for_, until=None, max_s=None)
            for k, f in enumerate(block.faults, 1)]


def check_specs(exp: S.Experiment) -> list[dict]:
    """The checks plan.json carries (chaos check reads them), expectations last."""
    if exp.checks is None:
        from chaos.checkers.core import default_checks
        specs = [{"checker": n, "params": {}} for n in default_checks()]
        for s in specs:
            if s["checker"] == "raft-safety":
                s["params"]["commit_persisted"] = True  # the agent persists its commit index
            if s["checker"] == "convergence" and exp.workload.services:
                s["params"]["require"] = ["managers", "members", "services"]
    else:
        specs = [check_to_spec(c) for c in exp.checks]
    expect = [expect_to_str(e) for e in exp.expect]
    if expect and not any(s["checker"] == "expectations" for s in specs):
        specs.append({"checker": "expectations", "params": {"expect": expect}})
    return specs


def expand(exp: S.Experiment, seed: int) -> dict:
    """The plan of `exp` under `seed` (a JSON-serialisable dict)."""
    faults: list[dict] = []
    previous: str | None = None
    for i, item in enumerate(exp.schedule):
        if isinstance(item, (S.RandomBlock, S.DrawnBlock)):
            drawn = (_random_faults(item.random, i, seed) if isinstance(item, S.RandomBlock)
                     else _drawn_faults(item.drawn, i, seed))
            faults.extend(drawn)
            if drawn:
                previous = drawn[-1]["id"]
            continue
        fid = item.name or f"f{i + 1}"
        after = previous if item.after == "previous" else item.after
        until = item.until.model_dump(exclude_none=True) if item.until else None
        count = item.repeat.count if item.repeat else 1
        for r in range(count):
            rid = fid if count == 1 else f"{fid}.{r + 1}"
            if item.at is not None:
                at_s, dep = item.at + r * (item.repeat.every if item.repeat else 0), None
            elif r == 0:
                at_s, dep = None, after
            else:
                at_s, dep = None, None
            e = _entry(rid, f"schedule[{i}]", _fault_spec(item), seed, at_s=at_s, after=dep,
                       delay_s=item.delay, for_s=item.for_, until=until, max_s=item.max)
            if item.at is None and r > 0:  # a repetition of an `after` fault: relative to its first start
                e["start"] = {"repeat_of": f"{fid}.1", "offset_s": r * item.repeat.every}
            e["group"] = fid
            faults.append(e)
        previous = f"{fid}.{count}" if count > 1 else fid
    services = [svc.model_dump(exclude_none=True) for svc in exp.workload.services]
    w = exp.workload
    workload = {
        "clients": w.clients, "rate": None if w.closed else w.rate, "closed": w.closed, "think_s": w.think,
        "keys": w.keys, "key_concurrency": w.key_concurrency, "mix": w.mix.pairs(), "op_timeout_s": w.op_timeout,
        "values": w.values, "sessions": w.sessions, "retry": w.retry, "nodes": _target_json(w.nodes),
        "max_in_flight": None if w.closed else w.max_in_flight,
        "client_seeds": [_sub_seed(seed, f"client:{i}") for i in range(w.clients)],
    }
    plan = {
        "plan_version": PLAN_VERSION, "experiment": exp.name, "seed": seed,
        "cluster": {"managers": exp.cluster.managers, "workers": exp.cluster.workers,
                    "agent_env": dict(sorted(exp.cluster.agent.as_env().items())),
                    "toxiproxy": exp.cluster.toxiproxy, "toxiproxy_shards": exp.cluster.toxiproxy_shards,
                    "plant": sorted(set(exp.cluster.plant)),
                    "ready_timeout_s": exp.cluster.ready_timeout},
        "workload": workload, "services": services,
        "steady_s": exp.steady if not faults else None,
        "faults": faults,
        "schedule_bound_s": round(schedule_bound(faults, exp.steady), 6),
        "recovery": {"window_s": exp.recovery.window, "converge_s": exp.recovery.converge},
        "checks": check_specs(exp),
        "expect": [expect_to_str(e) for e in exp.expect],
    }
    return plan


def with_plant(plan: dict, bugs: list[str]) -> dict:
    """The plan with these planted bugs added (`chaos run --plant`); its hash changes with it."""
    if not bugs:
        return plan
    out = json.loads(json.dumps(plan))
    out["cluster"]["plant"] = sorted(set(out["cluster"].get("plant", [])) | set(bugs))
    return out


def schedule_bound(faults: list[dict], steady_s: float) -> float:
    """The latest moment (s after the workload starts) the last fault can end, every `until` at its
    bound. Without faults, the steady phase's length."""
    if not faults:
        return steady_s
    end: dict[str, float] = {}
    first_start: dict[str, float] = {}
    for f in faults:
        st = f["start"]
        if "at_s" in st:
            start = st["at_s"]
        elif "after" in st:
            start = end.get(st["after"], 0.0) + st["delay_s"]
        else:
            start = first_start.get(st["repeat_of"], 0.0) + st["offset_s"]
        first_start[f["id"]] = start
        end[f["id"]] = start + (f["for_s"] if f["for_s"] is not None else f["max_s"])
        if "group" in f:
            end[f["group"]] = end[f["id"]]
    return max(end.values())


def canonical(plan: dict) -> bytes:
    return (json.dumps(plan, sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n").encode()


def plan_hash(plan: dict) -> str:
    return hashlib.sha256(canonical(plan)).hexdigest()


def _fmt_target(t: Any) -> str:
    if isinstance(t, list):
        return " + ".join(_fmt_target(x) for x in t)
    if isinstance(t, dict):
        if t.get("of"):
            who = f"the nodes of {t['of']}"
        else:
            who = ",".join(t["nodes"]) if t.get("nodes") else t.get("role", "all")
        if t.get("exclude") is not None:
            who += f" except {_fmt_target(t['exclude'])}"
        count = t.get("count", "all")
        return f"{who}" if count == "all" else f"{count} of {who}" + (" (first)" if t.get("pick") == "first" else "")
    return str(t)


def describe_fault(f: dict) -> str:
    s = f["spec"]
    kind = f["kind"]
    if kind == "partition":
        if "isolate" in s:
            what = f"isolate {_fmt_target(s['isolate'])}"
        elif "groups" in s:
            what = "groups " + " | ".join(",".join(g) for g in s["groups"]) + f" (rest: {s.get('rest', 'own')})"
        elif "one-way" in s:
            what = f"one-way {_fmt_target(s['one-way']['from'])} -/-> {_fmt_target(s['one-way']['to'])}"
        else:
            what = f"{s['shape']} among {_fmt_target(s.get('among', 'all'))}"
        return f"partition {what} [{s.get('mode', 'blackhole')}]"
    params = {k: v for k, v in s.items() if k not in ("fault", "target", "peers", "direction", "mode")}
    ptxt = " ".join(f"{k}={v}" for k, v in params.items())
    where = _fmt_target(s.get("target"))
    if kind in S.LINK_KINDS:
        extra = "" if s.get("peers", "all") == "all" else f" <-> {_fmt_target(s['peers'])}"
        where = f"links of {where}{extra} ({s.get('direction', 'both')})"
    return f"{kind} {where}" + (f" {ptxt}" if ptxt else "")


def _fmt_values(values) -> str:
    return values if values in ("unique", "latest") else f"1..{values}"


def render(plan: dict) -> list[str]:
    """Human-readable lines for `chaos plan`."""
    c, w = plan["cluster"], plan["workload"]
    lines = [f"experiment {plan['experiment']}  seed {plan['seed']}  plan {plan_hash(plan)[:12]}",
             *([f"PLANTED BUGS: {', '.join(c['plant'])} -- the agents are deliberately wrong; not a real result"]
               if c.get("plant") else []),
             f"cluster: {c['managers']} managers + {c['workers']} workers, Toxiproxy {c['toxiproxy']}"
             + (f", agent {' '.join(f'{k}={v}' for k, v in c['agent_env'].items())}" if c["agent_env"] else ""),
             f"workload: {w['clients']} clients, " + ("closed loop" if w["closed"] else f"{w['rate']:g} ops/s open loop")
             + f", {w['keys']} keys, mix " + " ".join(f"{f}:{n}" for f, n in w["mix"])
             + f", values {_fmt_values(w.get('values', 'unique'))}, timeout {w['op_timeout_s']:g} s"
             + (", retried across nodes" if w.get("retry") else "")
             + (" with client_id/seq" if w.get("sessions") else "")
             + f", via {_fmt_target(w['nodes'])}"]
    for svc in plan["services"]:
        verb = "create" if "create" in svc else "scale"
        lines.append(f"  t+{svc.get('at', 0):>7.2f}s  service {verb} {svc.get(verb)} replicas={svc['replicas']}")
    if not plan["faults"]:
        lines.append(f"schedule: none; steady for {plan['steady_s']:g} s")
    else:
        lines.append(f"schedule ({len(plan['faults'])} faults, ends by t+{plan['schedule_bound_s']:.2f}s):")
    for f in plan["faults"]:
        st = f["start"]
        if "at_s" in st:
            when = f"t+{st['at_s']:>7.2f}s"
        elif "after" in st:
            when = f"after {st['after']}" + (f" +{st['delay_s']:g}s" if st["delay_s"] else "")
        else:
            when = f"{st['repeat_of']} +{st['offset_s']:g}s"
        hold = f"for {f['for_s']:g}s" if f["for_s"] is not None else (
            f"until {f['until']['condition']}" + "".join(f" {k}={v}" for k, v in f["until"].items() if k != "condition")
            + f" (max {f['max_s']:g}s)")
        lines.append(f"  {when:<16} {f['id']:<10} {describe_fault(f)}, {hold}")
    r = plan["recovery"]
    lines.append(f"final heal (verified), then recovery {r['window_s']:g} s, converge within {r['converge_s']:g} s")
    lines.append("checks: " + ", ".join(
        s["checker"] + (f"({', '.join(f'{k}={v}' for k, v in s['params'].items())})" if s.get("params") else "")
        for s in plan["checks"]))
    return lines
