"""Power loss, without Docker: the synced-length ledger the agent's storage keeps, the cut a
restart applies when the marker is there, the planted deferred fsync it exposes, and the harness's
judgment of a power loss's evidence (chaos.fault_effect.power_loss_effect) and its plan/schema."""

from __future__ import annotations

import json
import os
import threading
import time


from swarmnode import durability
from swarmnode.agent.manager import _DeferredFsyncStorage
from swarmnode.raft.messages import Entry
from swarmnode.raft.storage import FileStorage, HardState


def _entries(first, last, term=1):
    return [Entry(i, term, {"op": "kv.put", "key": "k", "value": i}, f"h{i}") for i in range(first, last + 1)]


def _arm(data_dir):
    open(os.path.join(data_dir, durability.POWER_LOSS_MARKER), "w").close()


def test_ledger_follows_each_fsync_and_the_cut_keeps_exactly_the_synced_entries(tmp_path):
    raft = tmp_path / "raft"
    s = FileStorage(str(raft))
    s.persist(HardState(1, "m1", 0), _entries(1, 3), None)
    s.sync()
    log = str(raft / "log.jsonl")
    synced = os.path.getsize(log)
    assert durability.read_synced(log) == synced
    # appended and handed to the OS (a SIGKILL keeps it), never fsynced: a power cut loses it
    s.persist(None, _entries(4, 6), None)
    s._write_out()
    assert os.path.getsize(log) > synced
    _arm(str(tmp_path))
    (raft / "hardstate.json.tmp").write_bytes(b"{half")   # an atomic replace that never completed
    cut = durability.apply_power_loss(str(tmp_path))
    assert cut["files"]["raft/log.jsonl"]["dropped"] == cut["dropped_bytes"] > 0
    assert cut["files"]["raft/log.jsonl"]["synced"] == synced == os.path.getsize(log)
    assert cut["removed_tmp"] == ["raft/hardstate.json.tmp"]
    assert not os.path.exists(tmp_path / durability.POWER_LOSS_MARKER)   # done once
    back = FileStorage(str(raft)).load()
    assert [e.index for e in back.entries] == [1, 2, 3]
    assert back.hard_state == HardState(1, "m1", 0)


def test_without_the_marker_nothing_is_cut_and_a_plain_kill_loses_nothing(tmp_path):
    raft = tmp_path / "raft"
    s = FileStorage(str(raft))
    s.persist(HardState(1, None, 0), _entries(1, 2), None)
    s.sync()
    s.persist(None, _entries(3, 4), None)
    s._write_out()           # in the page cache: a SIGKILL (not a power cut) keeps it
    assert durability.apply_power_loss(str(tmp_path)) is None
    again = FileStorage(str(raft))
    assert [e.index for e in again.load().entries] == [1, 2, 3, 4]
    # load made what it read durable: the ledger now covers the whole file
    assert durability.read_synced(str(raft / "log.jsonl")) == os.path.getsize(raft / "log.jsonl")


def test_a_log_rewritten_after_a_snapshot_is_ledgered_whole(tmp_path):
    from swarmnode.raft.messages import Snapshot
    raft = tmp_path / "raft"
    s = FileStorage(str(raft))
    s.persist(HardState(1, None, 2), _entries(1, 4), None)
    s.sync()
    s.persist(None, _entries(3, 4), Snapshot(2, 1, "h2", {"kv": {}}))
    s.sync()
    log = str(raft / "log.jsonl")
    assert durability.read_synced(log) == os.path.getsize(log)
    _arm(str(tmp_path))
    assert durability.apply_power_loss(str(tmp_path))["dropped_bytes"] == 0
    assert [e.index for e in FileStorage(str(raft)).load().entries] == [3, 4]


def test_a_ledger_longer_than_its_file_is_reported_not_extended(tmp_path):
    f = tmp_path / "x.log"
    f.write_bytes(b"abc")
    durability.note_synced(str(f), 10)
    _arm(str(tmp_path))
    cut = durability.apply_power_loss(str(tmp_path))
    assert cut["files"]["x.log"] == {"size": 3, "synced": 10, "dropped": 0, "short": True}
    assert f.read_bytes() == b"abc"


def test_planted_ack_before_fsync_loses_synced_looking_entries_to_a_power_cut(tmp_path):
    """The planted storage returns from sync() before the fsync: what it 'synced' (and the agent
    acknowledged) is cut by a power loss until the background fsync ran."""
    raft = tmp_path / "raft"
    s = _DeferredFsyncStorage(str(raft))
    s.persist(HardState(1, "m1", 0), _entries(1, 3), None)
    s.sync()
    s.background_fsync()
    s.persist(None, _entries(4, 5), None)
    s.sync()                 # the agent would now acknowledge 4 and 5
    _arm(str(tmp_path))
    cut = durability.apply_power_loss(str(tmp_path))
    assert cut["dropped_bytes"] > 0
    assert [e.index for e in FileStorage(str(raft)).load().entries] == [1, 2, 3]
    # the correct storage under the same calls keeps them
    ok_dir = tmp_path / "ok"
    good = FileStorage(str(ok_dir / "raft"))
    good.persist(HardState(1, "m1", 0), _entries(1, 3), None)
    good.sync()
    good.persist(None, _entries(4, 5), None)
    good.sync()
    _arm(str(ok_dir))
    assert durability.apply_power_loss(str(ok_dir))["dropped_bytes"] == 0
    assert [e.index for e in FileStorage(str(ok_dir / "raft")).load().entries] == [1, 2, 3, 4, 5]


def test_the_harness_and_the_agent_agree_on_the_marker_name():
    from chaos.env import nodeops
    assert nodeops.OPERATIONS["power-loss"] is nodeops.power_loss
    assert durability.POWER_LOSS_MARKER == "power-loss"


def test_the_journal_event_of_a_power_loss_is_a_known_type_for_the_checkers():
    from chaos.checkers.rundir import JOURNAL_TYPES
    assert "power-loss" in JOURNAL_TYPES


# -- the harness's judgment ----------------------------------------------------------------------

def test_power_loss_effect_needs_a_reboot_and_the_cut_report_of_that_boot():
    from chaos.fault_effect import power_loss_effect
    down = {"effective": True}
    cut = {"boot": 3, "files": {"raft/log.jsonl": {"size": 900, "synced": 700, "dropped": 200}},
           "removed_tmp": [], "dropped_bytes": 200}
    ok = power_loss_effect(down, {"m1": 2}, {"m1": {"boot": 3, "power_loss": cut}})
    assert ok["effective"] is True
    assert ok["evidence"]["cut"]["m1"] == {"dropped_bytes": 200, "files": {"raft/log.jsonl": 200}}
    # rebooted, but the agent did not report a cut for this boot (marker ignored): not effective
    stale = power_loss_effect(down, {"m1": 2}, {"m1": {"boot": 3, "power_loss": {**cut, "boot": 1}}})
    assert stale["effective"] is False and "m1" in stale["why"]
    # never came back: not effective, whatever it said before
    gone = power_loss_effect(down, {"m1": 2}, {"m1": {"answering_ts": None}})
    assert gone["effective"] is False
    # one of two targets without its report: not effective
    two = power_loss_effect(down, {"m1": 2, "m2": 5},
                            {"m1": {"boot": 3, "power_loss": cut}, "m2": {"boot": 6}})
    assert two["effective"] is False and "m2" in two["why"]
    # a worker (boot before unknown to the nemesis): the report for the boot it came back with suffices
    assert power_loss_effect(down, {"w1": None}, {"w1": {"boot": 3, "power_loss": cut}})["effective"] is True
    # a boot that did not rise is not a reboot, whatever the report says
    assert power_loss_effect(down, {"m1": 3}, {"m1": {"boot": 3, "power_loss": cut}})["effective"] is False


def test_nemesis_power_loss_kills_restarts_and_records_the_cut(tmp_path):
    from chaos.nemesis import FaultLog, Nemesis, View

    class Eff:
        def __init__(self):
            self.calls, self.lock = [], threading.Lock()

        def view(self):
            st = {m: {"role": "leader" if m == "m1" else "follower", "term": 2, "leader": "m1", "boot": 1}
                  for m in ("m1", "m2", "m3")}
            return View(("m1", "m2", "m3"), ("w1",), st)

        def node_op(self, op, node):
            with self.lock:
                self.calls.append((op, node))
            if op == "restart":
                return {"op": op, "boot": 2, "power_loss": {"boot": 2, "files": {"raft/log.jsonl": {"dropped": 0}},
                                                            "dropped_bytes": 0}}
            return {"op": op}

        def mark_unavailable(self, node, unavailable):
            pass

        def answers(self, node):
            return None

        def heal_all(self):
            return {}

    eff = Eff()
    f = {"id": "pl", "kind": "power-loss", "start": {"at_s": 0.0}, "for_s": 0.2, "until": None, "max_s": None,
         "spec": {"fault": "power-loss", "target": "managers"}, "seed": 1, "origin": "t"}
    log = FaultLog(tmp_path / "faults.jsonl")
    nem = Nemesis([f], eff, log)
    nem.start(time.monotonic())
    assert nem.wait(10)
    assert sorted(c for c in eff.calls if c[0] == "power-loss") == [("power-loss", m) for m in ("m1", "m2", "m3")]
    assert sorted(c for c in eff.calls if c[0] == "restart") == [("restart", m) for m in ("m1", "m2", "m3")]
    rows = [json.loads(x) for x in (tmp_path / "faults.jsonl").read_text().splitlines()]
    stop = next(r for r in rows if r["action"] == "stop")
    assert stop["effect"]["effective"] is True
    assert set(stop["effect"]["evidence"]["cut"]) == {"m1", "m2", "m3"}


# -- schema and plan -------------------------------------------------------------------------------

def _exp(extra):
    from chaos.experiment.loader import load_text
    exp, problems = load_text("version: 1\nname: t\ncluster: {managers: 3, workers: 1}\n" + extra, "t.yaml")
    return exp, problems


def test_power_loss_validates_plans_and_is_drawn_by_random_blocks():
    from chaos.experiment import plan as P
    exp, problems = _exp("schedule:\n  - {name: cut, at: 5s, for: 2s, fault: power-loss, target: {role: managers, count: all}}\n"
               "  - random: {from: 10s, to: 30s, kinds: [power-loss], duration: [1s, 2s]}\n"
               "expect: [fault-effective: cut]\n")
    assert not problems, problems
    p = P.expand(exp, 7)
    assert p["faults"][0]["kind"] == "power-loss"
    assert any(f["origin"].endswith("random") and f["kind"] == "power-loss" for f in p["faults"])
    text = "\n".join(P.render(p))
    assert "power-loss {'role': 'managers'" not in text and "power-loss managers" in text
    assert P.canonical(p) == P.canonical(P.expand(exp, 7))


def test_power_loss_rejects_keys_of_other_kinds_and_target_lags():
    _, problems = _exp("schedule:\n  - {at: 1s, for: 1s, fault: power-loss, target: m1, ms: 5}\n")
    assert problems and any("ms" in p.message for p in problems), problems
    _, problems = _exp("schedule:\n  - {at: 1s, max: 5s, fault: power-loss, target: m1,"
                       " until: {condition: target-lags, entries: 3}}\n")
    assert any("target-lags" in p.message for p in problems), problems
