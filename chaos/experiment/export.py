"""A resolved plan written back as a standalone experiment file (`chaos export`, `chaos shrink`).

Owns: `plan_to_doc` (plan.json -> the mapping of an experiment file whose plan, with the same seed,
is the same plan: every random block's faults written out as a `drawn:` block, explicit faults with
their names, selectors kept as written (`leader`), repeats kept, the cluster, workload, recovery,
checks and expectations as they ran), `dump` (that mapping as YAML text with a header comment), and
`load_run_dir` (a run directory's plan and facts, every problem a `RunDirError`, exit 2).
The export checks itself: the text is validated and planned again, and must give the same plan.
Must not import: click, docker, requests, chaos.env.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chaos.errors import RunDirError
from chaos.experiment import plan as plan_mod
from chaos.experiment.loader import load_text

# agent_env variables that have a key of their own in `cluster.agent` (the rest stay in `env`)
_AGENT_KEYS = {"CHAOS_HEARTBEAT_MS": "heartbeat_ms", "CHAOS_TICK_MS": "tick_ms",
               "CHAOS_SNAPSHOT_ENTRIES": "snapshot_entries",
               "CHAOS_MAX_ENTRIES_PER_MESSAGE": "max_entries_per_message",
               "CHAOS_DISPATCHER_HEARTBEAT_MS": "dispatcher_heartbeat_ms",
               "CHAOS_DISPATCHER_GRACE": "dispatcher_grace",
               "CHAOS_GOSSIP_PROBE_INTERVAL_MS": "gossip_probe_interval_ms"}
_ORIGIN = re.compile(r"^schedule\[(\d+)\](\.random)?$")


def duration(seconds: float) -> str | float:
    """Seconds as a duration string that reads back to the same float (`5s`, `2.345s`)."""
    seconds = float(seconds)
    for text in (f"{seconds:g}", repr(seconds)):
        if re.fullmatch(r"\d+(\.\d+)?", text) and float(text) == seconds:
            return f"{text}s"
    return seconds


@dataclass(frozen=True)
class RunFacts:
    """What a run directory says about how it ran, beyond plan.json."""

    run_dir: Path
    plan: dict
    seed: int
    experiment_sha256: str | None
    experiment_file: str | None
    description: str
    backend: str | None
    random_names: dict[int, str]   # schedule index -> random block name (from experiment.yaml)
    schedule_len: int | None
    checks: list[dict]             # results.json checks (name, checker, verdict, ...); [] when absent


def _read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing; a run directory written by `chaos run` holds {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path}: cannot be read ({exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg})",
                          hint="the run directory is damaged; run the experiment again") from None


def load_run_dir(run_dir: Path) -> RunFacts:
    """The plan and facts of a run directory; RunDirError (exit 2) when it is not one or is damaged."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise RunDirError(f"{run_dir}: no such run directory")
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: not a directory (give the run directory `chaos run` printed)")
    plan = _read_json(run_dir / "plan.json", "plan.json")
    if not isinstance(plan, dict) or plan.get("plan_version") != plan_mod.PLAN_VERSION:
        raise RunDirError(f"{run_dir / 'plan.json'}: not a version-{plan_mod.PLAN_VERSION} plan")
    run: Any = {}
    if (run_dir / "run.json").is_file():
        run = _read_json(run_dir / "run.json", "run.json")
        if not isinstance(run, dict):
            raise RunDirError(f"{run_dir / 'run.json'}: not a JSON object")
    seed = plan.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise RunDirError(f"{run_dir / 'plan.json'}: `seed` is not an integer")
    description, backend, names, schedule_len = "", None, {}, None
    exp_text = None
    try:
        exp_text = (run_dir / "experiment.yaml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        pass
    if exp_text is not None:
        exp, _ = load_text(exp_text, str(run_dir / "experiment.yaml"))
        if exp is not None:  # the file as it ran; it may not load with this version of chaos
            from chaos.experiment import schema as S
            description, backend, schedule_len = exp.description, exp.cluster.backend, len(exp.schedule)
            names = {i: item.random.name or f"r{i + 1}" for i, item in enumerate(exp.schedule)
                     if isinstance(item, S.RandomBlock)}
            names.update({i: item.drawn.name for i, item in enumerate(exp.schedule) if isinstance(item, S.DrawnBlock)})
    sha = run.get("experiment_sha256")
    if not isinstance(sha, str) and exp_text is not None:
        sha = hashlib.sha256(exp_text.encode()).hexdigest()
    checks: list[dict] = []
    if (run_dir / "results.json").is_file():
        res = _read_json(run_dir / "results.json", "results.json")
        if isinstance(res, dict) and isinstance(res.get("checks"), list):
            checks = [c for c in res["checks"] if isinstance(c, dict)]
    return RunFacts(run_dir, plan, seed, sha if isinstance(sha, str) else None,
                    run.get("experiment_file") if isinstance(run.get("experiment_file"), str) else None,
                    description, backend, names, schedule_len, checks)


def _agent(env: dict) -> dict:
    out: dict[str, Any] = {}
    rest = dict(env)
    lo, hi = rest.get("CHAOS_ELECTION_TIMEOUT_MIN_MS"), rest.get("CHAOS_ELECTION_TIMEOUT_MAX_MS")
    if _canonical_int(lo) and _canonical_int(hi) and 1 <= int(lo) < int(hi):
        out["election_timeout_ms"] = [int(lo), int(hi)]
        del rest["CHAOS_ELECTION_TIMEOUT_MIN_MS"], rest["CHAOS_ELECTION_TIMEOUT_MAX_MS"]
    for var, key in _AGENT_KEYS.items():
        if _canonical_int(rest.get(var)):
            out[key] = int(rest.pop(var))
    if rest:
        out["env"] = dict(sorted(rest.items()))
    return out


def _canonical_int(v: Any) -> bool:
    return isinstance(v, str) and re.fullmatch(r"[1-9]\d{0,8}", v) is not None


def _fault_item(entry: dict, repeats: list[dict]) -> dict:
    """An explicit fault (and its repetitions) back as a schedule item."""
    item: dict[str, Any] = {"name": entry.get("group") or entry["id"]}
    st = entry["start"]
    if "at_s" in st:
        item["at"] = duration(st["at_s"])
    else:
        item["after"] = st["after"]
        if st.get("delay_s"):
            item["delay"] = duration(st["delay_s"])
    if entry.get("for_s") is not None:
        item["for"] = duration(entry["for_s"])
    else:
        item["until"] = entry["until"]
        item["max"] = duration(entry["max_s"])
    if len(repeats) > 1:
        second = repeats[1]["start"]
        every = (second["offset_s"] if "offset_s" in second else round(second["at_s"] - st["at_s"], 6))
        item["repeat"] = {"every": duration(every), "count": len(repeats)}
    item.update(_spec_ordered(entry["spec"]))
    return item


def _spec_ordered(spec: dict) -> dict:
    """The kind first, then its selectors, then the rest (the plan's keys are sorted)."""
    first = [k for k in ("fault", "target", "isolate", "groups", "shape", "one-way", "peers", "among") if k in spec]
    return {k: spec[k] for k in first + [k for k in spec if k not in first]}


def _drawn_item(entry: dict) -> dict:
    return {"name": entry["id"], "at": duration(entry["start"]["at_s"]), "for": duration(entry["for_s"]),
            **_spec_ordered(entry["spec"])}


def _schedule(plan: dict, facts: RunFacts | None) -> list[dict]:
    by_index: dict[int, list[dict]] = {}
    random_index: set[int] = set()
    for f in plan["faults"]:
        m = _ORIGIN.match(str(f.get("origin", "")))
        if m is None:
            raise ValueError(f"fault {f.get('id')!r}: origin {f.get('origin')!r} is not schedule[N]")
        i = int(m.group(1))
        by_index.setdefault(i, []).append(f)
        if m.group(2):
            random_index.add(i)
    names = facts.random_names if facts else {}
    top = max([*by_index, *((facts.schedule_len - 1,) if facts and facts.schedule_len else ())], default=-1)
    out: list[dict] = []
    for i in range(top + 1):
        entries = by_index.get(i, [])
        if i in random_index or not entries:  # a random block (one that drew nothing has no entry)
            prefix = names.get(i) or (entries[0]["id"].rsplit("-", 1)[0] if entries else f"r{i + 1}")
            out.append({"drawn": {"name": prefix, "faults": [_drawn_item(e) for e in entries]}})
        else:
            out.append(_fault_item(entries[0], entries))
    return out


def _checks(plan: dict) -> list:
    specs = list(plan.get("checks") or [])
    expect = plan.get("expect") or []
    auto = {"checker": "expectations", "params": {"expect": list(expect)}}
    if expect and specs and specs[-1] == auto and sum(s.get("checker") == "expectations" for s in specs) == 1:
        specs = specs[:-1]  # added by the plan from `expect`; it will be again
    out: list = []
    for s in specs:
        if set(s) == {"checker", "params"} and isinstance(s["params"], dict) and re.fullmatch(r"[a-z][a-z0-9-]*",
                                                                                           str(s["checker"])):
            out.append(s["checker"] if not s["params"] else {s["checker"]: s["params"]})
        else:
            out.append(dict(s))
    return out


def plan_to_doc(plan: dict, facts: RunFacts | None = None) -> dict:
    """The experiment file (as a mapping) whose plan under plan['seed'] is `plan`. ValueError or
    KeyError when the plan lacks what a plan has."""
    c, w = plan["cluster"], plan["workload"]
    cluster: dict[str, Any] = {"managers": c["managers"], "workers": c["workers"]}
    agent = _agent(c.get("agent_env") or {})
    if agent:
        cluster["agent"] = agent
    cluster["toxiproxy"] = c.get("toxiproxy", "auto")
    if c.get("toxiproxy_shards") is not None:
        cluster["toxiproxy_shards"] = c["toxiproxy_shards"]
    if facts is not None and facts.backend and facts.backend != "local":
        cluster["backend"] = facts.backend
    cluster["ready_timeout"] = duration(c["ready_timeout_s"])
    if c.get("plant"):
        cluster["plant"] = list(c["plant"])
    weights = {f: n for f, n in w["mix"]}
    workload: dict[str, Any] = {"clients": w["clients"]}
    if w.get("closed"):
        workload.update({"closed": True, "rate": None})
    else:
        workload["rate"] = w["rate"]
    workload.update({"think": duration(w["think_s"]), "keys": w["keys"]})
    if w.get("key_concurrency") is not None:
        workload["key_concurrency"] = w["key_concurrency"]
    if w.get("max_in_flight") is not None:
        workload["max_in_flight"] = w["max_in_flight"]
    workload["mix"] = {f: weights.get(f, 0) for f in ("read", "write", "cas", "delete")}
    workload.update({"values": w.get("values", "unique"), "op_timeout": duration(w["op_timeout_s"]),
                     "retry": bool(w.get("retry", False)), "sessions": bool(w.get("sessions", False)),
                     "nodes": w["nodes"]})
    if plan.get("services"):
        workload["services"] = [{**s, **({"at": duration(s["at"])} if "at" in s else {})} for s in plan["services"]]
    doc: dict[str, Any] = {"version": 1, "name": plan["experiment"]}
    if facts is not None and facts.description:
        doc["description"] = facts.description
    doc.update({"cluster": cluster, "workload": workload})
    if plan.get("steady_s") is not None:
        doc["steady"] = duration(plan["steady_s"])
    doc["schedule"] = _schedule(plan, facts)
    r = plan["recovery"]
    doc["recovery"] = {"window": duration(r["window_s"]), "converge": duration(r["converge_s"])}
    doc["checks"] = _checks(plan)
    if plan.get("expect"):
        doc["expect"] = list(plan["expect"])
    return doc


class _Dumper(yaml.SafeDumper):
    pass


def _flow_list(dumper, data):
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


def dump(doc: dict, header: list[str] = ()) -> str:
    """YAML text: block style at the top, one flow mapping per fault (one line each)."""
    def flow(v: Any) -> str:
        text = yaml.safe_dump(v, default_flow_style=True, sort_keys=False, width=10_000).strip()
        return text[:-3].strip() if text.endswith("\n...") else text  # a lone scalar's document end

    lines = [f"# {h}" if h else "#" for h in header]
    for key, value in doc.items():
        if key == "schedule":
            lines.append("schedule:" if value else "schedule: []")
            for item in value:
                if "drawn" in item:
                    d = item["drawn"]
                    lines.append(f"  - drawn:\n      name: {d['name']}")
                    lines.append("      faults:" if d["faults"] else "      faults: []")
                    lines += [f"        - {flow(f)}" for f in d["faults"]]
                else:
                    lines.append(f"  - {flow(item)}")
        elif key == "checks" or key == "expect":
            lines.append(f"{key}:" if value else f"{key}: []")
            lines += [f"  - {flow(v)}" for v in value]
        elif isinstance(value, dict):
            lines.append(f"{key}:")
            for k, v in value.items():
                lines.append(f"  {k}: {flow(v)}")
        else:
            lines.append(f"{key}: {flow(value)}")
    return "\n".join(lines) + "\n"


def header_lines(facts: RunFacts, what: str) -> list[str]:
    run_id = facts.run_dir.name
    first = (f"Exported from run {run_id} (`chaos export`): its plan with every random block written out."
             if what == "Exported" else f"{what} from run {run_id}.")
    lines = [first,
             f"Seed {facts.seed}: `chaos run FILE --seed {facts.seed}` plans exactly what that run ran "
             f"(the seed also drives the clients and selector picks).",
             f"Original file: {facts.experiment_file or '(unknown)'} sha256 {facts.experiment_sha256 or '(unknown)'}",
             f"Original plan sha256: {plan_mod.plan_hash(facts.plan)}"]
    if facts.plan.get("cluster", {}).get("plant"):
        lines.append(f"PLANTED BUGS: {', '.join(facts.plan['cluster']['plant'])} (the agents are deliberately wrong)")
    return lines


def verify(text: str, plan: dict, file: str = "<export>") -> None:
    """The text validates and plans to `plan` (canonical bytes) under plan['seed']; else ValueError."""
    exp, problems = load_text(text, file)
    if exp is None:
        raise ValueError("the exported file does not validate: " + "; ".join(str(p) for p in problems[:3]))
    again = plan_mod.expand(exp, plan["seed"])
    if plan_mod.canonical(again) != plan_mod.canonical(plan):
        diff = sorted(k for k in set(again) | set(plan) if again.get(k) != json.loads(json.dumps(plan.get(k))))
        raise ValueError(f"the exported file plans differently (keys {', '.join(diff)})")


def export_run(run_dir: Path) -> tuple[str, RunFacts]:
    """The exported text of a run directory (checked: it validates and plans to the run's plan)."""
    facts = load_run_dir(run_dir)
    try:
        doc = plan_to_doc(facts.plan, facts)
        text = dump(doc, header_lines(facts, "Exported"))
        verify(text, facts.plan)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise RunDirError(f"{facts.run_dir / 'plan.json'}: cannot be exported: {what}",
                          hint="the plan is damaged or was written by another version of chaos; "
                               "`chaos replay RUN_DIR` runs it as stored") from None
    return text, facts
