"""RaftNode.apply_durable (issue 25 section 3): while a Ready is outstanding (the driver's fsync of a
group under way), the entries that became committed and are already durable on the node are applied
and their results handed out at once; nothing of the outstanding Ready, and no entry appended since,
is applied early; the apply lines still come in the next Ready, after the commit line that allows
them; no snapshot is taken while the Ready is outstanding.

The simulator runs the same driver shape over many seeds (`fsync_ms`, tests/raft/test_raft_sim.py).
"""
import dataclasses

from swarmnode.raft import LEADER

from .harness import CFG, Cluster


def put(k, v):
    return {"op": "kv.put", "key": k, "value": v}


def _release(c, i, rd):
    """The rest of the Ready contract for an outstanding Ready whose state is to become durable."""
    st = c.storage[i]
    st.persist(rd.hard_state, rd.entries, rd.snapshot)
    st.sync()
    c.events[i].extend(rd.events)
    c.results[i].extend(rd.results)
    for m in rd.messages:
        c.inflight.append(m)
    c.nodes[i].advance(rd)


def _leader_with_group_outstanding(config=CFG):
    """A 3-node cluster whose leader replicated write a=1 (durable on all, acks on the way back)
    and then took the Ready of write b=2 without releasing it (its fsync under way)."""
    c = Cluster(3, config=config)
    ld = c.elect()
    node = c.nodes[ld]
    c.deliver()
    ia = node.propose(put("a", 1))
    c.pump(ld)                                   # a's Ready: durable, AppendEntries out
    c.deliver(lambda m: m.dst != ld)             # followers append and fsync a; acks in flight
    acks = [m for m in c.inflight if m.dst == ld]
    assert acks and node.commit_index < ia
    ib = node.propose(put("b", 2))
    rd = node.ready()                            # b's group: outstanding
    assert [e.index for e in rd.entries] == [ib]
    for m in acks:                               # the acks for a arrive during b's fsync
        c.inflight.remove(m)
        node.step(m)
    assert node.commit_index >= ia
    return c, ld, node, ia, ib, rd


def test_a_committed_durable_entry_is_answered_during_the_next_groups_fsync():
    c, ld, node, ia, ib, rd = _leader_with_group_outstanding()
    results = node.apply_durable()
    assert [r.index for r in results] == [ia]
    assert results[0].result.get("ok") is True and node.sm.kv["a"] == 1
    assert "b" not in node.sm.kv                 # b is in the outstanding Ready: not durable yet
    assert node.applied_index == ia
    assert node.apply_durable() == ()            # nothing twice
    _release(c, ld, rd)
    nxt = node.ready()
    assert nxt is not None and not any(r.index == ia for r in nxt.results)   # not released twice
    kinds = [(e["type"], e.get("index")) for e in nxt.events if e["type"] in ("commit", "apply")]
    assert kinds.index(("apply", ia)) > kinds.index(("commit", ia)), kinds   # journal: commit first
    assert nxt.hard_state is not None and nxt.hard_state.commit >= ia        # persisted with it


def test_an_entry_of_the_outstanding_ready_is_not_applied_even_when_committed():
    # a single voter commits its own entry at once (its log is the quorum): the outstanding Ready
    # holds it, so it is not durable, and apply_durable must leave it alone
    c = Cluster(1)
    ld = c.elect()
    node = c.nodes[ld]
    i = node.propose(put("x", 1))
    rd = node.ready()
    assert node.role == LEADER and node.commit_index >= i
    j = node.propose(put("y", 2))                # appended after the outstanding Ready: not durable
    assert node.commit_index >= j
    applied = node.applied_index
    assert node.apply_durable() == ()
    assert node.applied_index == applied and "y" not in node.sm.kv
    _release(c, ld, rd)


def test_no_snapshot_while_a_ready_is_outstanding_and_the_next_ready_takes_it():
    cfg = dataclasses.replace(CFG, snapshot_threshold=2)
    c, ld, node, ia, ib, rd = _leader_with_group_outstanding(cfg)
    assert node.log.snap_index < ia
    node.apply_durable()
    assert node.applied_index == ia
    assert node.log.snap_index < ia and rd.snapshot is None    # not compacted under the Ready
    _release(c, ld, rd)
    nxt = node.ready()
    assert nxt.snapshot is not None and nxt.snapshot.index == ia
    assert node.log.snap_index == ia
