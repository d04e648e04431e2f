"""Membership in the Raft core (issue 23; swarmnode/raft/membership.py): one-server configuration
changes as log entries, hand-driven (tests/raft/harness.py). Each rule has a test that fails if the
rule is dropped, and the planted switches (RaftConfig.bugs) break exactly the rule they name."""
import dataclasses
import random

import pytest

from swarmnode.raft import (LEADER, AppendEntries, AppendResponse, FileStorage, MemoryStorage, RaftNode, Store,
                            VoteRequest, VoteResponse)
from swarmnode.raft.membership import ConfChangeError, Membership, change

from .harness import CFG, Cluster


class MCluster(Cluster):
    """The harness cluster plus nodes that join later (no bootstrap configuration)."""

    def add(self, i, config=None):
        self.ids.append(i)
        self.storage[i] = MemoryStorage()
        self.readies[i], self.events[i], self.results[i], self.read_states[i] = [], [], [], []
        self.nodes[i] = RaftNode(i, (), self.storage[i], config or self.config, random.Random(len(self.ids)), Store())
        self.pump(i)

    def restart(self, i, config=None):
        self.nodes[i] = RaftNode(i, self.ids[:3] if i in ("m1", "m2", "m3") else (), self.storage[i],
                                 config or self.config, random.Random(7), Store())
        self.pump(i)

    def change(self, leader, action, node, rounds=3):
        idx = self.nodes[leader].propose_conf_change(action, node)
        self.pump(leader)
        self.deliver()
        self.tick(rounds)
        return idx


def put(k, v=1):
    return {"op": "kv.put", "key": k, "value": v}


def bugged(bug):
    return dataclasses.replace(CFG, bugs=frozenset({bug}))


def elected_without_commit(c, i="m1"):
    """Node i wins an election whose votes were delivered but none of its appends: its no-op of
    the new term is not committed."""
    node = c.nodes[i]
    for _ in range(200):
        node.tick()
        c.pump(i)
        c.deliver(lambda m: type(m) in (VoteRequest, VoteResponse))
        if node.role == LEADER:
            return node
    raise AssertionError("no leader")


# ---- the configuration value -------------------------------------------------------------------

def test_change_is_one_server_and_validated():
    m = Membership(("m1", "m2", "m3"))
    assert change(m, "add_learner", "m4") == Membership(("m1", "m2", "m3"), ("m4",))
    assert change(change(m, "add_learner", "m4"), "promote", "m4").voters == ("m1", "m2", "m3", "m4")
    assert change(m, "demote", "m2") == Membership(("m1", "m3"), ("m2",))
    assert change(m, "remove", "m2").voters == ("m1", "m3")
    for action, node in (("add_learner", "m1"), ("promote", "m1"), ("demote", "m9"), ("remove", "m9"),
                         ("frobnicate", "m1")):
        with pytest.raises(ConfChangeError):
            change(m, action, node)
    with pytest.raises(ConfChangeError):
        change(Membership(("m1",)), "remove", "m1")      # never zero voters


# ---- leader rules --------------------------------------------------------------------------------

def test_change_refused_before_the_leader_commits_an_entry_of_its_term():
    c = MCluster()
    node = elected_without_commit(c)
    assert node.commit_index < node.last_log_index
    with pytest.raises(ConfChangeError, match="own|its term"):
        node.propose_conf_change("add_learner", "m4")
    c.deliver()
    c.tick(3)
    assert node.commit_index == node.last_log_index
    node.propose_conf_change("add_learner", "m4")      # now accepted


def test_planted_conf_before_own_commit_appends_at_once():
    c = MCluster(configs={"m1": bugged("conf_before_own_commit")})
    node = elected_without_commit(c)
    node.propose_conf_change("add_learner", "m4")
    assert node.learners == ("m4",)


def test_one_change_at_a_time_and_the_planted_two_in_flight():
    for bug, refused in ((None, True), ("conf_two_in_flight", False)):
        c = MCluster(configs={"m1": bugged(bug)} if bug else None)
        c.campaign("m1")
        c.tick(3)
        node = c.nodes["m1"]
        c.cut |= {("m1", "m2"), ("m1", "m3")}        # nothing commits from here
        node.propose_conf_change("add_learner", "m4")
        if refused:
            with pytest.raises(ConfChangeError, match="uncommitted"):
                node.propose_conf_change("remove", "m3")
            assert node.voters == ("m1", "m2", "m3")
        else:
            node.propose_conf_change("remove", "m3")
            assert node.voters == ("m1", "m2")


def test_client_cannot_propose_a_configuration_entry():
    c = MCluster()
    c.elect()
    ld = c.nodes[c.leaders()[0]]
    with pytest.raises(ValueError):
        ld.propose({"op": "config", "voters": ["m1"], "learners": []})


# ---- learners ----------------------------------------------------------------------------------

def test_learner_catches_up_is_promoted_and_only_then_counts():
    c = MCluster()
    c.campaign("m1")
    ld = c.nodes["m1"]
    for k in range(5):
        ld.propose(put(f"k{k}"))
    c.pump("m1")
    c.deliver()
    c.add("m4")
    c.cut |= {("m1", "m4")}                             # the learner hears nothing yet
    c.change("m1", "add_learner", "m4")
    assert ld.learners == ("m4",) and ld.voters == ("m1", "m2", "m3")
    with pytest.raises(ConfChangeError, match="caught up"):
        ld.propose_conf_change("promote", "m4")          # §4.2.1: not before it caught up
    c.heal()
    c.tick(6)
    m4 = c.nodes["m4"]
    assert m4.last_log_index == ld.last_log_index and m4.learners == ("m4",)
    assert m4.role != LEADER
    for _ in range(100):                                 # a learner never campaigns
        m4.tick()
        c.pump("m4")
    assert not [m for m in c.inflight if type(m) is VoteRequest and m.src == "m4"]
    c.change("m1", "promote", "m4")
    assert ld.voters == ("m1", "m2", "m3", "m4") and c.nodes["m4"].voters == ld.voters


def test_learner_vote_does_not_count_unless_planted():
    for bug, wins in ((None, False), ("learner_votes", True)):
        c = MCluster(configs={"m2": bugged(bug)} if bug else None)
        c.campaign("m1")
        c.add("m4")
        c.change("m1", "add_learner", "m4")
        c.crash("m1")
        c.cut |= {("m2", "m3"), ("m3", "m2")}            # m2 hears only the learner
        m2 = c.nodes["m2"]
        for _ in range(300):
            c.tick(only=["m2", "m4"])                    # the learner's lease on m1 runs out too
            if m2.role == LEADER:
                break
        assert (m2.role == LEADER) is wins, bug


# ---- the configuration is used as soon as it is in the log ---------------------------------------

def test_configuration_in_force_when_appended_and_rolled_back_on_truncation():
    c = MCluster(n=5)
    c.campaign("m1")
    c.tick(3)
    c.nodes["m1"].propose_conf_change("add_learner", "m6")
    c.pump("m1")
    c.deliver(lambda m: m.dst == "m2" and type(m) is AppendEntries)   # only m2 gets it, uncommitted
    m2 = c.nodes["m2"]
    assert m2.learners == ("m6",) and m2.commit_index < m2.last_log_index    # in force, uncommitted
    c.inflight = []
    c.crash("m1")
    for _ in range(300):         # m3, m4, m5 never saw it: the new leader's entries replace it on m2
        c.tick(only=["m3", "m4", "m5"])
        if c.leaders():
            break
    c.tick(3)
    assert c.leaders() and c.leaders()[0] in ("m3", "m4", "m5")
    assert m2.learners == () and m2.voters == ("m1", "m2", "m3", "m4", "m5")


def test_configuration_survives_restart_and_snapshot():
    cfg = dataclasses.replace(CFG, snapshot_threshold=4)
    c = MCluster(config=cfg)
    c.campaign("m1")
    c.add("m4")
    c.change("m1", "add_learner", "m4")
    c.change("m1", "promote", "m4")
    for k in range(10):
        c.nodes["m1"].propose(put(f"k{k}"))
    c.pump("m1")
    c.deliver()
    c.tick(4)
    for i in ("m2", "m4"):
        st = c.storage[i]
        assert st._snap.index > c.nodes["m1"].log.last_conf_index      # the change is compacted
        assert st._snap.config == {"voters": ["m1", "m2", "m3", "m4"], "learners": []}
        c.crash(i)
        c.restart(i)
        assert c.nodes[i].voters == ("m1", "m2", "m3", "m4"), i
        assert c.nodes[i].log.confs == []                  # it came from the snapshot


def test_file_storage_keeps_the_snapshot_configuration(tmp_path):
    from swarmnode.raft import HardState, Snapshot
    st = FileStorage(str(tmp_path))
    snap = Snapshot(5, 2, "abc", {}, {"voters": ["m1", "m4"], "learners": ["m5"]})
    st.persist(HardState(2, None, 5), [], snap)
    st.sync()
    node = RaftNode("m4", (), FileStorage(str(tmp_path)), CFG)
    assert node.voters == ("m1", "m4") and node.learners == ("m5",)


# ---- removing the leader, removed nodes ------------------------------------------------------------

def test_removed_leader_steps_down_once_the_removal_commits():
    c = MCluster(n=5)
    c.campaign("m1")
    c.tick(3)
    ld = c.nodes["m1"]
    c.cut |= {("m2", "m1"), ("m3", "m1"), ("m4", "m1"), ("m5", "m1")}
    ld.propose_conf_change("remove", "m1")
    c.pump("m1")
    c.deliver()
    assert ld.role == LEADER and ld.voters == ("m2", "m3", "m4", "m5")   # manages, not yet committed
    c.cut.clear()
    c.tick(4)
    assert ld.role != LEADER                    # §4.2.2
    for _ in range(300):
        c.tick()
        if c.leaders():
            break
    assert c.leaders() and c.leaders()[0] != "m1"
    new = c.nodes[c.leaders()[0]]
    assert new.voters == ("m2", "m3", "m4", "m5")


def test_planted_removed_leader_keeps_leading():
    c = MCluster(n=5, configs={"m1": bugged("removed_leader_keeps_leading")})
    c.campaign("m1")
    c.tick(3)
    c.change("m1", "remove", "m1", rounds=6)
    assert c.nodes["m1"].role == LEADER and "m1" not in c.nodes["m1"].voters


def test_leader_of_a_config_without_itself_counts_only_the_others():
    c = MCluster(n=3)
    c.campaign("m1")
    c.tick(3)
    ld = c.nodes["m1"]
    c.cut |= {("m2", "m1"), ("m1", "m2")}
    ld.propose_conf_change("remove", "m1")
    c.pump("m1")
    c.deliver()
    c.tick(2)
    # {m2, m3} needs both; m3 alone plus the leader itself is not a majority of it
    assert ld.commit_index < ld.log.last_conf_index and ld.role == LEADER


def test_non_member_messages_heard_and_their_acks_ignored():
    c = MCluster()
    c.campaign("m1")
    c.tick(3)
    ld = c.nodes["m1"]
    before = ld.commit_index
    ld.step(AppendResponse(ld.term, "m9", "m1", True, ld.last_log_index + 5, 0, 0, 0))
    assert ld.commit_index == before and "m9" not in ld._progress
    # a joiner hears a leader it has no configuration for
    c.add("m4")
    c.change("m1", "add_learner", "m4")
    assert c.nodes["m4"].leader_id == "m1" and c.nodes["m4"].last_log_index == ld.last_log_index


def test_removed_node_that_was_not_told_does_not_disrupt():
    """§4.2.3: m3 is removed while cut off, so it never learns it; back on the network it times out
    and campaigns, and the leader keeps its term (PreVote + the leader lease)."""
    c = MCluster()
    c.campaign("m1")
    c.tick(3)
    ld = c.nodes["m1"]
    c.isolate("m3")
    c.change("m1", "remove", "m3")
    assert ld.voters == ("m1", "m2") and ld.commit_index >= ld.log.last_conf_index
    term = ld.term
    c.heal()
    m3 = c.nodes["m3"]
    assert m3.voters == ("m1", "m2", "m3")              # it does not know
    c.tick(200)
    assert any(e["type"] == "role" and e["role"] == "precandidate" for e in c.events["m3"])   # it tried
    assert ld.role == LEADER and ld.term == term and c.nodes["m2"].term == term
    assert c.nodes["m2"].leader_id == "m1"


def test_leader_removing_itself_still_campaigns_until_the_removal_commits():
    """§4.2.2: m1 removes itself from {m1, m2}, loses leadership (CheckQuorum) before m2 got the
    entry. m2 (still {m1, m2}) cannot win: m1's log is longer. m1 is not in its latest
    configuration, but that one is uncommitted and the previous one lists it: it campaigns without
    counting itself, wins m2's vote, commits the removal, steps down, and m2 leads alone."""
    c = MCluster(n=2)
    c.campaign("m1")
    c.tick(3)
    m1 = c.nodes["m1"]
    c.isolate("m1")
    m1.propose_conf_change("remove", "m1")
    c.pump("m1")
    c.tick(40, only=["m1"])
    assert m1.role != LEADER and m1.voters == ("m2",) and m1.commit_index < m1.log.last_conf_index
    c.heal()
    for _ in range(400):
        c.tick()
        if c.leaders() == ["m2"] and c.nodes["m2"].voters == ("m2",):
            break
    assert c.leaders() == ["m2"] and c.nodes["m2"].voters == ("m2",)
    assert any(e["type"] == "role" and e["role"] == "leader" and e["term"] > 1 for e in c.events["m1"])


def test_status_match_shows_how_far_a_learner_caught_up_on_the_leader_only():
    """status()["match"] (benchmarks/membership.py's caught-up test): on the leader, each member's
    replicated index -- 0 for a learner cut off, the leader's last index once it caught up; absent
    on followers (they know no progress)."""
    c = MCluster()
    c.campaign("m1")
    ld = c.nodes["m1"]
    for k in range(5):
        ld.propose(put(f"k{k}"))
    c.pump("m1")
    c.deliver()
    c.add("m4")
    c.cut |= {("m1", "m4")}
    c.change("m1", "add_learner", "m4")
    st = ld.status()
    assert st["match"]["m4"] == 0 and st["match"]["m2"] == st["commit_index"] > 0
    assert set(st["match"]) == {"m2", "m3", "m4"}
    c.heal()
    c.tick(6)
    assert ld.status()["match"]["m4"] == ld.last_log_index
    assert "match" not in c.nodes["m2"].status()
