"""Planted bugs: test-only fault points of the agent, switched on by CHAOS_PLANT.

Owns PLANTS, the stable name -> one-line description of every planted bug, and `parse()`. Each bug
is a small branch marked `if "<name>" in ...plant:` at the place it breaks; with CHAOS_PLANT unset
(the default) none of them exists. They prove that the shipped experiments and their checks catch
real classes of defects (benchmarks/bugfinding.py, tests/docker/test_plant_docker.py).

The `raft` names are the Raft core's own switches (swarmnode.raft.config.BUGS, used by the
simulator) passed to RaftConfig.bugs. Never enable any of them outside tests.

Must not import asyncio, aiohttp or `chaos`.
"""

from __future__ import annotations

# name -> (layer, description). Names are stable: experiments, the harness and benchmarks use them.
PLANT_LAYERS: dict[str, tuple[str, str]] = {
    # Raft core (RaftConfig.bugs)
    "vote_not_persisted": ("raft", "a granted vote is kept in memory only; after a restart the node "
                                   "may vote again in the same term"),
    "commit_old_term": ("raft", "a leader commits an entry of an earlier term by counting replicas "
                                "(Raft Fig. 8)"),
    "vote_no_log_check": ("raft", "votes are granted without the 5.4.1 up-to-date log check"),
    "apply_past_commit": ("raft", "a follower applies its whole log, not only up to the commit index"),
    "stale_read": ("raft", "ReadIndex is answered without a heartbeat round confirming leadership"),
    "conf_two_in_flight": ("raft", "a configuration change is appended while an earlier one is still "
                                   "uncommitted (two changes in flight)"),
    "learner_votes": ("raft", "a learner's vote counts in an election before it is caught up and "
                              "promoted"),
    "conf_before_own_commit": ("raft", "a configuration change is appended before the new leader "
                                       "committed an entry of its own term"),
    "removed_leader_keeps_leading": ("raft", "a leader removed from the configuration keeps leading "
                                             "(and counting itself) once the removal commits"),
    # agent: Raft settings and the client path
    "deposed_leader_reads": ("agent", "CheckQuorum off and reads answered from the local store: a "
                                      "leader cut off from the majority keeps serving reads"),
    "no_prevote": ("agent", "PreVote off: a follower that was cut off rejoins with a higher term and "
                            "deposes a healthy leader"),
    "ack_before_commit": ("agent", "a write is acknowledged as soon as the leader appended it, before "
                                   "it commits"),
    "wall_clock_lease": ("agent", "after a confirmed ReadIndex round the leader serves reads locally "
                                  "for 0.9 x the minimum election timeout measured on the wall clock "
                                  "(time.time()): a clock jump back or a slow clock on the leader "
                                  "stretches the lease past a new leader's election (caught by `clock`)"),
    "ack_before_fsync": ("agent", "Raft log appends are fsynced in the background once a second: an "
                                  "append is acknowledged (leader and followers) when it reached the OS, "
                                  "before its fsync; a power loss drops acknowledged entries"),
    "enospc_corrupts_log": ("agent", "a Raft log write that fails with ENOSPC is neither undone nor "
                                     "reported: the torn record stays, the append is acknowledged, and "
                                     "after a restart the log ends at the torn record"),
    # cluster store
    "dedup_lost_in_snapshot": ("store", "client sessions (client_id/seq de-duplication) are left out "
                                        "of snapshots, so a node restored from one forgets them"),
    "task_state_backwards": ("store", "task states may move backwards: a worker's stale report "
                                      "(running) overwrites orphaned/shutdown"),
    # gossip
    "gossip_no_refute": ("gossip", "SWIM never refutes a suspicion about itself (no incarnation "
                                   "bump): a slow or cut-off member is declared dead for good"),
    "gossip_no_pushpull": ("gossip", "SWIM anti-entropy off (no periodic push-pull, no push-pull to "
                                     "members declared dead): the sides of a healed partition never "
                                     "reconcile"),
    # dispatcher / orchestrator
    "dispatcher_never_down": ("dispatcher", "the leader never marks a silent worker DOWN"),
    "stale_worker_identity": ("dispatcher", "a DOWN worker may only return with a higher boot counter: "
                                            "the leader drops its heartbeats from a boot already seen (a "
                                            "'stale incarnation'), so a worker back from a wiped disk (boot "
                                            "1 again) is never READY, never given tasks"),
    "orchestrator_no_replace": ("orchestrator", "tasks of a DOWN worker are neither orphaned nor "
                                                "replaced"),
}

PLANTS: dict[str, str] = {name: desc for name, (_layer, desc) in PLANT_LAYERS.items()}
# Membership bugs of the Raft core (issue 23): all four caught by the simulator (tests/raft/
# test_raft_membership_sim.py). Two are caught by shipped container experiments too (benchmarks/
# bugfinding.py, tests/docker/test_plant_docker.py): conf_two_in_flight (membership-grow-under-latency,
# raft-safety conf-change-rule) and removed_leader_keeps_leading (membership-shrink-remove-leader,
# raft-safety removed-leader). The other two stay simulator-only: the agent proposes a change only as
# a leader that applied an entry of its term (manager.py `_leader_ready`), which hides
# conf_before_own_commit; learner_votes needs an election while a learner is not caught up, which
# lasts well under a second in a container run and no shipped experiment makes one happen then.
SIM_ONLY_PLANTS = ("learner_votes", "conf_before_own_commit")   # of swarmnode.raft.config.MEMBERSHIP_BUGS
RAFT_PLANTS = tuple(n for n, (layer, _d) in PLANT_LAYERS.items() if layer == "raft")


class PlantError(ValueError):
    """CHAOS_PLANT names a bug that does not exist."""


def parse(raw: str | None) -> frozenset:
    """CHAOS_PLANT's value (comma-separated names; empty or unset: none) -> a frozenset of names."""
    names = [p.strip() for p in (raw or "").split(",") if p.strip()]
    unknown = sorted(set(names) - set(PLANTS))
    if unknown:
        raise PlantError(f"unknown planted bug(s) {','.join(unknown)}; known: {','.join(PLANTS)}")
    return frozenset(names)
