"""Raft settings (RaftConfig) and the test-only bug switches used by the teeth tests.

Owns: the settings dataclass, its presets and validate(). Must not import asyncio, socket, time,
module-level random or `chaos`.

All durations are in ticks: the driver calls RaftNode.tick() every `tick_ms` of its own (the agent's
CHAOS_TICK_MS, the simulator's --tick-ms). A setting's unit is the last word of its name.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

# Deliberate protocol bugs, for proving that the simulator's checks have teeth. Never enable them
# outside tests. Names are stable (the simulator's --bug flag uses them).
BUGS = (
    "vote_not_persisted",   # a granted vote is kept in memory only; the reply leaves anyway
    "commit_old_term",      # leader commits an earlier-term entry by counting replicas (Fig. 8)
    "vote_no_log_check",    # votes granted without the §5.4.1 up-to-date check
    "apply_past_commit",    # a follower applies its whole log, not only up to the commit index
    "stale_read",           # ReadIndex answered without a heartbeat round confirming leadership
    # membership (membership.py, thesis §4)
    "conf_two_in_flight",   # a configuration change is appended while an earlier one is uncommitted
    "learner_votes",        # a learner's vote counts in an election before it is caught up and promoted
    "conf_before_own_commit",  # a change is appended before the leader committed an entry of its term
    "removed_leader_keeps_leading",  # a leader removed from the configuration keeps leading and
                                     # counting itself once the removal commits (§4.2.2)
)

# the membership bugs only act when configurations change (the simulator's `membership` fault kind)
MEMBERSHIP_BUGS = ("conf_two_in_flight", "learner_votes", "conf_before_own_commit",
                   "removed_leader_keeps_leading")


class ConfigError(ValueError):
    """A RaftConfig whose fields contradict each other."""


@dataclass(frozen=True)
class RaftConfig:
    """Settings of one Raft node.

    election_timeout_min_ticks (default 15; 150 ms at a 10 ms tick): a follower that hears nothing
        from a leader for a random time in [min, max) ticks starts an election. Also the lease: with
        check_quorum a node ignores vote requests for `min` ticks after hearing from a leader, and a
        leader steps down if a majority was not heard from within `min` ticks. Lower: faster
        failover, more spurious elections under latency spikes. Must exceed heartbeat_ticks.
    election_timeout_max_ticks (default 30): upper end (exclusive) of the random timeout. A wider
        range makes split votes rarer (Raft paper §9.3) at the cost of a slower worst case.
    heartbeat_ticks (default 5): a leader sends AppendEntries (heartbeat) to every follower this
        often. Lower: faster commit of retransmissions and reads, more messages.
    pre_vote (default True): run a PreVote round (thesis §9.6) before incrementing the term, so an
        isolated node that rejoins cannot depose a healthy leader. Costs one extra round trip per
        election.
    check_quorum (default True): a leader that has not heard from a majority within
        election_timeout_min_ticks steps down; followers honour a leader lease (thesis §6.2, §9.6).
    max_entries_per_message (default 64): entries in one AppendEntries. Lower: smaller frames, more
        round trips to catch up a lagging follower.
    snapshot_threshold (default 1000, entries): after this many entries applied since the last
        snapshot, the node snapshots its store and compacts the log. Lower: less memory and disk,
        more InstallSnapshot traffic to lagging followers.
    max_uncommitted_entries (default 4096): propose() raises Busy beyond this many uncommitted
        entries (bounds the leader's log growth while it cannot commit).
    max_pending_reads (default 1024): read_index() raises Busy beyond this many unconfirmed reads.
    max_inflight_messages (default 256): unacknowledged AppendEntries with entries a leader
        pipelines to one follower; beyond it the leader waits for answers or the next heartbeat
        (which retransmits from the follower's match index). Counted in inflight_bound_hits.
    snapshot_resend_ticks (default 20): a leader resends an unanswered InstallSnapshot this often.
    bugs (default empty): names from BUGS; test-only fault injection. validate() rejects unknown
        names.
    """

    election_timeout_min_ticks: int = 15
    election_timeout_max_ticks: int = 30
    heartbeat_ticks: int = 5
    pre_vote: bool = True
    check_quorum: bool = True
    max_entries_per_message: int = 64
    snapshot_threshold: int = 1000
    max_uncommitted_entries: int = 4096
    max_pending_reads: int = 1024
    max_inflight_messages: int = 256
    snapshot_resend_ticks: int = 20
    bugs: frozenset = field(default_factory=frozenset)

    def validate(self) -> "RaftConfig":
        """Raise ConfigError listing every contradiction; return self when valid."""
        errors = []
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name.endswith(("_ticks", "_message", "_threshold", "_entries", "_reads", "_messages")):
                if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                    errors.append(f"{f.name} must be a positive integer, got {v!r}")
        if not errors:
            if self.election_timeout_min_ticks <= self.heartbeat_ticks:
                errors.append("election_timeout_min_ticks must be larger than heartbeat_ticks")
            if self.election_timeout_max_ticks <= self.election_timeout_min_ticks:
                errors.append("election_timeout_max_ticks must be larger than election_timeout_min_ticks")
        for name in ("pre_vote", "check_quorum"):
            if not isinstance(getattr(self, name), bool):
                errors.append(f"{name} must be a bool")
        unknown = sorted(set(self.bugs) - set(BUGS))
        if unknown:
            errors.append(f"unknown bugs {unknown}; known: {list(BUGS)}")
        if errors:
            raise ConfigError("; ".join(errors))
        return self

    def with_bug(self, bug: str) -> "RaftConfig":
        """A copy with one test-only bug switched on ('none' gives a copy with no bugs)."""
        bugs = frozenset() if bug == "none" else frozenset({bug})
        return dataclasses.replace(self, bugs=bugs).validate()


def config_from_ms(tick_ms: int, heartbeat_ms: int, election_timeout_min_ms: int,
                   election_timeout_max_ms: int, **overrides) -> RaftConfig:
    """Build a config from millisecond settings (rounded up to whole ticks) and validate it."""
    def ticks(ms: int) -> int:
        return max(1, -(-ms // tick_ms))
    return RaftConfig(heartbeat_ticks=ticks(heartbeat_ms),
                      election_timeout_min_ticks=ticks(election_timeout_min_ms),
                      election_timeout_max_ticks=ticks(election_timeout_max_ms),
                      **overrides).validate()
