"""The `cpu` and `memory` faults without Docker: schema, plan, evidence, and the nemesis's
bookkeeping (limits lowered on every target, restored when the last fault holding them ends, an
OOM kill recorded)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from chaos import fault_effect
from chaos.experiment import plan as plan_mod
from chaos.experiment.loader import load_text
from chaos.nemesis import FaultLog, Nemesis, View

BASE = "version: 1\nname: r\ncluster: {managers: 3, workers: 1}\nschedule:\n"


def _errors(item: str) -> list[str]:
    exp, problems = load_text(BASE + "  - " + item + "\n", "t.yaml")
    return [f"{p.line}:{p.col}: {p.message}" for p in problems if p.severity == "error"]


def test_resource_schema_accepts_and_parses():
    exp, problems = load_text(BASE + "  - {at: 1s, for: 5s, fault: cpu, target: leader, cpus: 0.05}\n"
                                     "  - {at: 1s, for: 5s, fault: memory, target: m1, limit: 64MB}\n"
                                     "  - {at: 1s, for: 5s, fault: memory, target: m2, limit: 96MiB}\n", "t.yaml")
    assert not [p for p in problems if p.severity == "error"]
    cpu, mem, mib = exp.schedule
    assert cpu.cpus == 0.05 and mem.limit == 64_000_000 and mib.limit == 96 * 1024 * 1024


@pytest.mark.parametrize("item, words", [
    ("{at: 1s, for: 5s, fault: cpu, target: leader}", "cpus"),
    ("{at: 1s, for: 5s, fault: cpu, target: leader, cpus: 0}", "greater than 0"),
    ("{at: 1s, for: 5s, fault: cpu, target: leader, cpus: 0.001}", "at least 0.01"),
    ("{at: 1s, for: 5s, fault: memory, target: leader, limit: 1MB}", "at least 6MiB"),
    ("{at: 1s, for: 5s, fault: memory, target: leader, limit: 64 megs}", "not a size"),
    ("{at: 1s, for: 5s, fault: memory, target: leader, cpus: 1}", "cpus"),
])
def test_resource_schema_refuses_with_a_position(item, words):
    errs = _errors(item)
    assert errs and any(words in e for e in errs), errs
    assert all(e.split(":")[0].isdigit() for e in errs)


def test_resource_plan_and_random_draws():
    exp, _ = load_text(BASE + "  - {name: starve, at: 1s, for: 5s, fault: cpu, target: leader, cpus: 0.05}\n"
                              "  - random: {from: 10s, to: 40s, kinds: [cpu, memory], duration: [1s, 2s]}\n", "t.yaml")
    plan = plan_mod.expand(exp, 3)
    assert {f["kind"] for f in plan["faults"]} == {"cpu", "memory"}
    assert "cpu leader cpus=0.05" in "\n".join(plan_mod.render(plan))


def test_resource_effect_needs_the_limit_read_back():
    ok = fault_effect.resource_effect("cpu", 0.05, {"m1": {"after": {"cpus": 0.05}}}, {"m1": {}})
    assert ok["effective"] is True and ok["acted"] == "limit-in-force"
    # the deliberately wrong engine: the update was accepted but the container shows no limit
    bad = fault_effect.resource_effect("cpu", 0.05, {"m1": {"after": {"cpus": 0.0}}}, {"m1": {}})
    assert bad["effective"] is False and "m1" in bad["why"]
    assert fault_effect.resource_effect("memory", 64_000_000, {}, {})["effective"] is False
    oom = fault_effect.resource_effect("memory", 64_000_000, {"m1": {"after": {"memory": 64_000_000}}},
                                       {"m1": {"oom_killed": True}})
    assert oom["effective"] is True and oom["acted"] == "oom-killed"


class FakeContainers:
    def __init__(self, oom: frozenset = frozenset()):
        self.lock = threading.Lock()
        self.limits: dict[tuple[str, str], object] = {}
        self.calls: list[tuple] = []
        self.oom = oom

    def view(self):
        return View(("m1", "m2", "m3"), ("w1",), {m: {"role": "leader" if m == "m2" else "follower", "term": 3}
                                                   for m in ("m1", "m2", "m3")})

    def leader_store(self, leader):
        return None

    def heal_all(self):
        return {}

    def resource_limit(self, kind, node, value):
        with self.lock:
            before = self.limits.get((kind, node), "unlimited")
            self.limits[(kind, node)] = value
            self.calls.append(("limit", kind, node, value))
        after = {"cpus": value} if kind == "cpu" else {"memory": value}
        return {"before": before, "after": after}

    def resource_restore(self, kind, node, before):
        with self.lock:
            self.limits[(kind, node)] = before
            self.calls.append(("restore", kind, node, before))
        return {"after": before, "oom_killed": node in self.oom}


def _fault(fid, kind, at, for_s, spec):
    return {"id": fid, "kind": kind, "start": {"at_s": at}, "for_s": for_s, "until": None, "max_s": None,
            "spec": {"fault": kind, **spec}, "seed": 1, "origin": "t"}


def _run(faults, eff, tmp_path):
    log = FaultLog(tmp_path / "faults.jsonl")
    nem = Nemesis(faults, eff, log)
    nem.start(time.monotonic())
    assert nem.wait(15)
    nem.final_heal()
    log.close()
    return [json.loads(line) for line in (tmp_path / "faults.jsonl").read_text().splitlines()]


def test_resource_nemesis_limits_and_restores(tmp_path):
    eff = FakeContainers()
    rows = _run([_fault("starve", "cpu", 0.0, 0.3, {"target": "leader", "cpus": 0.05})], eff, tmp_path)
    assert eff.calls == [("limit", "cpu", "m2", 0.05), ("restore", "cpu", "m2", "unlimited")]
    stop = next(r for r in rows if r["action"] == "stop")
    assert stop["effect"]["effective"] is True


def test_resource_nemesis_overlap_restores_the_original_once(tmp_path):
    eff = FakeContainers()
    _run([_fault("a", "memory", 0.0, 0.6, {"target": "m1", "limit": 64_000_000}),
          _fault("b", "memory", 0.2, 0.8, {"target": "m1", "limit": 32_000_000})], eff, tmp_path)
    restores = [c for c in eff.calls if c[0] == "restore"]
    assert restores == [("restore", "memory", "m1", "unlimited")]
    assert eff.limits[("memory", "m1")] == "unlimited"


def test_resource_nemesis_records_an_oom_kill(tmp_path):
    rows = _run([_fault("squeeze", "memory", 0.0, 0.3, {"target": "m1", "limit": 8_000_000})],
                FakeContainers(oom=frozenset({"m1"})), tmp_path)
    stop = next(r for r in rows if r["action"] == "stop")
    assert stop["details"]["nodes"]["m1"]["oom_killed"] is True
    assert stop["effect"]["acted"] == "oom-killed"


def test_resource_memory_limit_below_usage_is_named_as_the_files_problem():
    """runc refuses a limit below the container's current use (seen on this engine: 'unable to set
    memory limit to 8388608 (current usage: 45625344, peak usage: 53932032)'); the run says so in
    the experiment's terms, with the usage, instead of an engine failure."""
    import docker

    from chaos.errors import FaultError
    from chaos.runner import ClusterEffects, memory_refusal

    text = ("Cannot update container 0ede: runc did not terminate successfully: exit status 1: unable to set "
            "memory limit to 8388608 (current usage: 45625344, peak usage: 53932032)")

    class Container:
        attrs = {"HostConfig": {"Memory": 0, "MemorySwap": 0}}

        def reload(self):
            pass

        def update(self, **kw):
            raise docker.errors.APIError(text)

    class Cluster:
        def container(self, node):
            return Container()

    eff = ClusterEffects.__new__(ClusterEffects)
    eff.cluster, eff.clock = Cluster(), time.time
    with pytest.raises(FaultError) as info:
        eff.resource_limit("memory", "w1", 8_388_608)
    assert "below what the container uses now (45,625,344 bytes)" in info.value.message
    assert "57MB" in info.value.hint
    assert memory_refusal("Minimum memory limit allowed is 6MB", "w1", 1) is None
