"""The `wipe` fault without Docker: what the helper removes (and keeps), the evidence it took
effect, the validation that refuses managers (with why), and the nemesis's own refusal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from swarmnode import durability


def test_wipe_empties_the_data_dir_but_the_journal(tmp_path):
    (tmp_path / "raft").mkdir()
    (tmp_path / "raft" / "log.jsonl").write_bytes(b"x" * 100)
    (tmp_path / "raft" / "log.jsonl.synced").write_bytes(b"0" * 21)
    (tmp_path / "boot").write_text("4")
    (tmp_path / "journal.jsonl").write_text('{"seq": 1}\n')
    got = durability.wipe(str(tmp_path))
    assert got == {"removed_files": 3, "removed_bytes": 122, "kept": ["journal.jsonl"]}
    assert sorted(os.listdir(tmp_path)) == ["journal.jsonl"]
    assert durability.wipe(str(tmp_path))["removed_files"] == 0   # an empty disk stays empty


def test_wipe_command_prints_one_json_line(tmp_path):
    (tmp_path / "boot").write_text("2")
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(durability.__file__))}
    out = subprocess.run([sys.executable, "-m", "swarmnode.durability", "wipe", str(tmp_path)],
                         capture_output=True, text=True, env=env, check=True).stdout
    assert json.loads(out.splitlines()[-1])["removed_files"] == 1


def test_wipe_effect_needs_silence_an_emptied_disk_and_a_fresh_boot():
    from chaos.fault_effect import wipe_effect
    down = {"effective": True, "why": "w1 stopped answering"}
    wiped = {"w1": {"detail": {"wiped": {"removed_files": 1, "removed_bytes": 1, "kept": ["journal.jsonl"]}}}}
    assert wipe_effect(down, wiped, {"w1": {"boot": 1}})["effective"] is True
    # came back with its old disk (boot 4): the wipe did not happen
    stale = wipe_effect(down, wiped, {"w1": {"boot": 4}})
    assert stale["effective"] is False and "w1" in stale["why"]
    # the helper removed nothing (not this fault's wipe, or an empty disk): not shown
    assert wipe_effect(down, {"w1": {"shared": True}}, {"w1": {"boot": 1}})["effective"] is False
    # never went silent
    assert wipe_effect({"effective": False, "why": "w1 still answered"}, wiped, {"w1": {"boot": 1}})[
        "effective"] is False
    # did not come back at all
    assert wipe_effect(down, wiped, {"w1": {"answering_ts": None}})["effective"] is False


def _problems(schedule: str):
    from chaos.experiment.loader import load_text
    _, problems = load_text("version: 1\nname: t\ncluster: {managers: 3, workers: 2}\nschedule:\n" + schedule)
    return problems


def test_wipe_of_a_manager_is_a_validation_error_that_says_why():
    for target in ("leader", "m2", "managers", "{role: followers, count: 1}", "{nodes: [w1, m1]}", "all"):
        problems = _problems(f"  - {{at: 1s, for: 1s, fault: wipe, target: {target}}}\n")
        assert problems and all(p.severity == "error" for p in problems), target
        assert "wipe cannot target" in problems[0].message and "membership" in (problems[0].hint or ""), problems
    problems = _problems("  - random: {from: 1s, to: 9s, kinds: [wipe], duration: [1s, 2s]}\n")
    assert any("this block draws `wipe`" in p.message for p in problems)
    for ok in ("w1", "workers", "{role: workers, count: 1}", "{nodes: [w1, w2], count: 1}"):
        assert not _problems(f"  - {{at: 1s, for: 1s, fault: wipe, target: {ok}}}\n"), ok
    assert not _problems("  - random: {from: 1s, to: 9s, kinds: [wipe, kill], targets: [workers], "
                         "duration: [1s, 2s]}\n")


def test_nemesis_refuses_to_wipe_a_manager_at_run_time(tmp_path):
    from chaos.nemesis import FaultLog, Nemesis, View
    from chaos.errors import FaultError

    class Eff:
        calls: list = []

        def view(self):
            st = {m: {"role": "leader" if m == "m1" else "follower", "term": 2, "leader": "m1"} for m in ("m1", "m2", "m3")}
            return View(("m1", "m2", "m3"), ("w1",), st)

        def node_op(self, op, node):
            self.calls.append((op, node))
            return {}

        def mark_unavailable(self, node, unavailable):
            pass

        def heal_all(self):
            return {}

    eff = Eff()
    f = {"id": "w", "kind": "wipe", "start": {"at_s": 0.0}, "for_s": 0.1, "until": None, "max_s": None,
         "spec": {"fault": "wipe", "target": {"nodes": ["m2"]}}, "seed": 1, "origin": "t"}
    nem = Nemesis([f], eff, FaultLog(tmp_path / "faults.jsonl"))
    nem.start(time.monotonic())
    try:
        nem.wait(5)
        raised = None
    except FaultError as exc:
        raised = exc
    assert raised is not None and "workers only" in raised.message
    assert eff.calls == []
