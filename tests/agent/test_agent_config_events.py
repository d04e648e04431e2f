"""The `config` journal events a Ready gets (manager._with_config_events): one per configuration
entry appended, right after its `append` event (before a commit of the same Ready), so two changes
appended together stay visible to raft-safety's conf-change-rule; a configuration in force that
this Ready did not append goes before a `role: leader`, else last."""

from __future__ import annotations

from types import SimpleNamespace

from swarmnode.agent.manager import _with_config_events
from swarmnode.raft.messages import Entry

C1 = {"op": "config", "voters": ["m1", "m2", "m3"], "learners": ["m4"]}
C2 = {"op": "config", "voters": ["m1", "m2", "m3", "m4"], "learners": []}


def _types(evs):
    return [(e["type"], e.get("index")) for e in evs]


def test_two_configurations_appended_together_each_follow_their_append():
    rd = SimpleNamespace(entries=(Entry(5, 2, C1), Entry(6, 2, {"op": "noop"}), Entry(7, 2, C2)),
                         events=({"type": "append", "index": 5}, {"type": "append", "index": 6},
                                 {"type": "append", "index": 7}, {"type": "commit", "index": 7}))
    out = _with_config_events(rd, (7, ("m1", "m2", "m3", "m4"), ()))
    assert _types(out) == [("append", 5), ("config", 5), ("append", 6), ("append", 7), ("config", 7),
                           ("commit", 7)]
    assert out[1]["learners"] == ["m4"] and out[4]["voters"] == ["m1", "m2", "m3", "m4"]


def test_configuration_not_appended_here_goes_before_the_leadership():
    rd = SimpleNamespace(entries=(), events=({"type": "role", "role": "candidate"},
                                             {"type": "role", "role": "leader"}))
    out = _with_config_events(rd, (3, ("m1", "m2"), ()))
    assert _types(out) == [("role", None), ("config", 3), ("role", None)]
    rd = SimpleNamespace(entries=(), events=({"type": "commit", "index": 4},))
    assert _types(_with_config_events(rd, (0, ("m1",), ()))) == [("commit", 4), ("config", 0)]
