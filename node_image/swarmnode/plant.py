"""Planted bugs: named fault points that make the agent deliberately wrong, so a chaos run can prove
that its experiments and checkers find real failures.

Owns: the registry `PLANTS` (name -> one-line description). The agent switches a bug on only when
started with `CHAOS_PLANT=name[,name...]`; nothing is planted by default. The harness validates
`cluster.plant` / `chaos run --plant` against this registry and marks every such run as planted in
its run directory, console and reports, so it can never be mistaken for a real result.
Pure data: no I/O.
"""

from __future__ import annotations

PLANTS: dict[str, str] = {
    "vote_not_persisted": "raft: a granted vote is kept in memory only; the reply leaves anyway",
    "commit_old_term": "raft: the leader commits an earlier-term entry by counting replicas (Figure 8)",
    "vote_no_log_check": "raft: votes are granted without the section 5.4.1 up-to-date check",
    "apply_past_commit": "raft: a follower applies its whole log, not only up to the commit index",
    "stale_read": "raft: ReadIndex answered without a heartbeat round confirming leadership",
}
