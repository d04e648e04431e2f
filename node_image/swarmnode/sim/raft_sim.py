"""Deterministic whole-cluster Raft simulator with a safety checker run after every step.

Owns: RaftSim (virtual time, seeded network, partitions of any shape, crash-restart with
MemoryStorage losing unsynced writes, a client workload with retries and linearizable reads),
SafetyChecker (Raft safety properties from the nodes' journal events), liveness after heal,
and the CLI that replays a seed:

    python -m swarmnode.sim.raft_sim --seed 1234 --bug none

Must not import asyncio, socket, time, module-level random or `chaos`.

One seed drives everything: cluster size, configuration draws, link behaviour, fault times and
shapes, node timers and the client workload. The driver loop per node follows Ready's contract:
persist + sync, record events (the checker reads them), send, release client effects, advance.
With `--fsync-ms F` (SimParams.fsync_ms) it drives as the agent's group commit does: a Ready's fsync
completes up to F virtual ms later, the node keeps stepping meanwhile, committed durable entries are
answered at once (RaftNode.apply_durable), the next Ready is taken after the fsync, and a crash in
between loses the unsynced writes. F = 0 (the default) keeps the reference driver and its traces.
Checked after every step (each step is one tick or one delivered message):
  election-safety       at most one leader per term
  vote-once             at most one granted vote per node per term, across restarts
  term-monotonic        a node's term never decreases (across restarts)
  commit-monotonic      a node's commit index never decreases (across restarts)
  log-matching          entries with the same index and term have the same chain hash
  leader-append-only    a leader never truncates its log
  committed-truncated   no node truncates at or below its commit index
  leader-completeness   a leader of term T holds every entry committed in a term < T
  state-machine-safety  every node applies the same entry (hash) and reaches the same store
                        digest at each index; committed prefixes agree
  apply-past-commit     no node applies beyond its commit index
  commit-rule           a leader's commit index only advances to an entry of its own term (§5.4.2)
  vote-lost             a vote in the journal is still the node's vote after a restart in that term
  stale-read            a linearizable read never reflects a state older than the newest write
                        acknowledged before the read was invoked
  core-exception        a node raised: its core (an internal assertion), its storage (a StorageError
                        for a Ready that leaves a gap), advance() -- reported with the trace
  sim-exception         anything else raised during the run (never an exception out of run_seed)
Liveness (separate verdict): after the final heal, a leader commits and every node applies a new
write within heal_window_ms.

commit-rule and vote-lost check two protocol rules directly (rule_checks=True, the default); the
other checks above only see their consequences, through the journal events.

Consequence checks (consequence_checks=True, the default; swarmnode/sim/raft_checks.py) read the
nodes' state, the messages they send and the state machine they apply to, never their events, so a
bug that also corrupts or skips its journal is still caught: committed-entry-lost,
committed-divergence, commit-without-majority, two-leaders, leader-missing-committed,
term-regressed, vote-forgotten, double-vote, log-regressed, applied-divergence,
applied-beyond-commit, commit-beyond-log, stale-read-state, stale-term-sent. A deliberately wrong
core for each one lives in tests/raft/test_raft_consequences.py or test_raft_contracts.py
(SimParams.node_factory takes a RaftNode subclass).

The driver contract is checked too (the simulator is a driver): `ready-contract` -- has_ready()
says whether ready() has something; `tick-promise` -- no tick before the one ticks_until_action()
named does anything (the simulator skips those ticks, as any driver may).

Every run ends in a verdict. Bounds: MAX_READY_ROUNDS per step and max_events per run; hitting one is
a reported failure (`ready-bound`, or `bound-exceeded` with result["bound_exceeded"] set and the
replay command), never an exception out of run().

Efficiency is a third verdict (efficiency_ok, result["efficiency"]): elections, term increases and
pre-vote campaigns that start while the network has been healthy with a stable leader for
settle_ms (spurious; bounded by spurious_elections_max / spurious_campaigns_max), elections per
injected fault (bounded by elections_per_fault_max), entries written to storage while it already
held them (repersisted_entries, bound 0) and local snapshots taken less than snapshot_threshold
entries after the previous one (early_compactions, bound 0). A core that is safe and live but
elects, writes or compacts more often than it should fails here.

Faults: partition shapes, crash and leader crash (with quick restarts), lossy links, leader
isolation, and HARD_FAULTS aimed at the protocol's hard paths: delay_storm (long delays and
reordering across terms: deposed leaders' messages arrive late), crash_mid_ready (a crash after
persist before sync, after sync before send, or half-way through the sends), restart_in_election (a
crash + restart of the campaigning node or a voter while an election runs), divergent_tail (an
isolated leader fed writes it cannot commit, later truncated or replaced by an InstallSnapshot),
slow_clock (a node, mostly the leader, whose ticks come 2-6 times slower: its lease and timers
outlive the others'; half the time the slow leader is also cut off in a minority, so a leader that
confirms reads without a real majority serves them while the majority has moved on).
Membership (the `membership` fault kind, MEMBERSHIP_PROFILE; swarmnode/sim/membership_driver.py):
random one-server configuration changes at the leader -- grow, shrink, replace (remove, stop and
wipe, a fresh node under a new id), remove the leader, demote/promote, grow by two behind a split,
any of them while partitioned. New nodes join with no configuration; removed ones keep running for
up to 2 s, then stop for good. The membership checks are in raft_checks.py's docstring; liveness
then covers the members of the leader's configuration, and `no-quorum-after-heal` is reported when
nothing commits after the heal although a majority of the latest configuration's voters is up.
result["membership"] has the driver's counts and the final configuration.
result["paths"] counts how often each hard path ran (raft_checks.PATHS), read from the messages
delivered, the events and node state around each step; the core is not instrumented.
"""
from __future__ import annotations

import argparse
import dataclasses
import heapq
import json
import random
import sys
import traceback
import zlib
from dataclasses import dataclass
from heapq import heappush

from swarmnode.raft import (BUGS, LEADER, Busy, MemoryStorage, NotLeader, RaftConfig, RaftNode, Store)
from swarmnode.sim.net import BoundExceeded, LinkSpec, Network, Scheduler, random_partition, isolate, split
from swarmnode.sim.membership_driver import MembershipDriver
from swarmnode.sim.raft_checks import MEMBERSHIP_PATHS, ConsequenceChecker, PathCounter, SimStore
from swarmnode.sim.stale_tail import StaleTail

MAX_READY_ROUNDS = 1000       # per step; a core that keeps producing Readies is a bug
MAX_EVENTS_PER_RUN = 5_000_000
# Fault kinds aimed at the protocol's hard paths (see _fault): long delays and reordering across
# terms, a crash at a point inside the Ready contract, a crash + restart while an election runs,
# and an isolated leader fed a burst of writes (a divergent tail to truncate or snapshot over).
HARD_FAULTS = ("delay_storm", "crash_mid_ready", "restart_in_election", "divergent_tail", "slow_clock")
CRASH_POINTS = ("before_sync", "before_send", "mid_send")
DEFAULT_FAULTS = ("partition", "crash", "crash_leader", "lossy", "isolate_leader") + HARD_FAULTS
# The hunting profile (tests, benchmarks/raft_sim_safety.py --profile hunt, benchmarks/mutation.py):
# short runs, a fault every 0.2-1.5 s.
# stale_tail (swarmnode/sim/stale_tail.py) is a hunting fault only: the default profile's draws (and
# every default seed's run) stay as they were. It is drawn 3 times as often as each other kind: the
# states it builds (a stale tail beyond an append whose commit index is ahead of its entries) need a
# large snapshot_threshold, a third of the seeds.
HUNT_PROFILE = dict(duration_ms=20_000, fault_gap_ms_min=200, fault_gap_ms_max=1_500, fault_len_ms_max=1_500,
                    faults=DEFAULT_FAULTS + ("stale_tail",) * 3)
# The membership profile (issue 23; swarmnode/sim/membership_driver.py): every default fault plus
# `membership` (grow, shrink, replace, remove the leader, demote/promote, a change while
# partitioned), drawn about as often as all the other kinds together. `membership` is a fault kind
# like any other: a run without it in `faults` makes exactly the draws it made before.
MEMBERSHIP_PROFILE = dict(duration_ms=20_000, fault_gap_ms_min=300, fault_gap_ms_max=2_000, fault_len_ms_max=2_000,
                          faults=DEFAULT_FAULTS + ("membership",) * 10)
KNOWN_FAULTS = DEFAULT_FAULTS + ("stale_tail", "membership")


def _trace() -> str:
    """The current exception and its innermost frames, on one line."""
    e = sys.exc_info()[1]
    text = (str(e).strip().splitlines() or [""])[0]
    lines = traceback.format_exc(limit=-4).strip().splitlines()
    frames = [ln.strip() for ln in lines if ln.strip().startswith("File ")]
    return f"{type(e).__name__}: {text} | " + " <- ".join(reversed(frames))


def replay_command(seed: int, bug: str = "none", extra: str = "") -> str:
    return f"python -m swarmnode.sim.raft_sim --seed {seed} --bug {bug}{extra}"


@dataclass(frozen=True)
class Violation:
    kind: str
    time_ms: float
    node: str
    detail: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class SimParams:
    """Run parameters. Fields left as None are drawn from the seed (and reported)."""
    seed: int
    bug: str = "none"
    n_nodes: int | None = None
    duration_ms: int = 60_000
    tick_ms: int = 10
    fault_gap_ms_min: int = 2_000
    fault_gap_ms_max: int = 10_000
    fault_len_ms_max: int = 6_000
    heal_window_ms: int = 10_000
    clients: int = 3
    client_gap_ms_mean: float = 150.0
    client_timeout_ms: int = 1_000
    stop_on_violation: bool = True
    trace_hash: bool = False
    rule_checks: bool = True
    config: RaftConfig | None = None
    link: LinkSpec | None = None
    faults: tuple = DEFAULT_FAULTS
    node_factory: object = None        # RaftNode or a (deliberately wrong) subclass, from tests
    max_events: int = MAX_EVENTS_PER_RUN
    consequence_checks: bool = True
    # efficiency bounds (a separate verdict, like liveness): spurious elections while the network
    # has been healthy with a stable leader, and elections per injected fault
    spurious_elections_max: int = 0
    spurious_campaigns_max: int = 2    # pre-vote rounds while healthy (a lost heartbeat run may start one)
    elections_per_fault_max: float = 3.0
    repersisted_entries_max: int = 0   # entries written to storage twice (write amplification)
    early_compactions_max: int = 0     # local snapshots taken before snapshot_threshold entries
    # group commit as the agent drives it (agent/manager.py): 0 -- each Ready is persisted, synced
    # and released within the step that made it (the reference driver); > 0 -- a Ready with durable
    # state is persisted and its fsync completes uniform(0.1, 1) x fsync_ms later, while the node
    # keeps stepping messages, ticks and proposals; meanwhile the driver asks apply_durable() and
    # acknowledges what it returns, and the next Ready is taken after the fsync (a crash in
    # between loses the unsynced writes). Its own random stream: the other draws do not move.
    fsync_ms: float = 0.0


class SafetyChecker:
    """Consumes each node's events (contracts section 4) and reports Violations."""

    def __init__(self, ids, rule_checks: bool = True):
        self.ids = list(ids)
        self.rule_checks = rule_checks     # commit-rule and vote-lost (direct checks of two rules)
        self.violations: list = []
        self.leaders: dict = {}            # term -> node
        self.votes: dict = {}              # (node, term) -> candidate
        self.max_term = {i: 0 for i in ids}
        self.max_commit = {i: 0 for i in ids}
        self.role = {i: "follower" for i in ids}
        self.term = {i: 0 for i in ids}
        self.base = {i: (0, "") for i in ids}      # (snapshot index, hash) of the mirrored log
        self.log = {i: [] for i in ids}            # (term, hash) for base+1, base+2, ...
        self.checked = {i: 0 for i in ids}         # committed prefix compared up to here
        self.index_term_hash: dict = {}            # (index, term) -> hash, Log Matching
        self.committed: dict = {}                  # index -> hash
        self.commit_term: dict = {}                # index -> term of the node that first committed it
        self.commit_top: dict = {}                 # term -> highest index in commit_term with that term
        self.applied: dict = {}                    # index -> (hash, digest)
        self.now_ms = 0.0

    def _v(self, kind: str, node: str, detail: str) -> None:
        self.violations.append(Violation(kind, round(self.now_ms, 3), node, detail))

    def add_node(self, node: str) -> None:
        """A node that joined during the run (membership)."""
        self.ids.append(node)
        self.max_term[node] = self.max_commit[node] = self.term[node] = self.checked[node] = 0
        self.role[node] = "follower"
        self.base[node] = (0, "")
        self.log[node] = []

    def _hash_at(self, node: str, index: int):
        b, bh = self.base[node]
        if index == b:
            return bh
        pos = index - b - 1
        lg = self.log[node]
        if pos < 0 or pos >= len(lg):
            return None
        return lg[pos][1]

    def on_restart(self, node: str, raft: RaftNode) -> None:
        """A restarted node's log is what its storage kept: mirror that."""
        lg = raft.log
        self.base[node] = (lg.snap_index, lg.snap_hash)
        self.log[node] = [(e.term, e.hash) for e in lg.entries]
        self.role[node] = raft.role
        self.term[node] = raft.term
        if raft.term < self.max_term[node]:
            self._v("term-monotonic", node, f"restarted with term {raft.term} < {self.max_term[node]}")
        if raft.commit_index < self.max_commit[node]:
            self._v("commit-monotonic", node, f"restarted with commit {raft.commit_index} < {self.max_commit[node]}")
        self.checked[node] = min(self.checked[node], raft.commit_index)
        # the journal only holds what was durable: a journaled vote must survive the crash
        journaled = self.votes.get((node, raft.term))
        if self.rule_checks and journaled is not None and raft.vote != journaled:
            self._v("vote-lost", node, f"journaled a vote for {journaled} in term {raft.term}, "
                                       f"restarted with vote {raft.vote}")

    def on_events(self, node: str, events) -> None:
        handlers = self._handlers
        for ev in events:
            handlers.get(ev["type"], SafetyChecker._ev_other)(self, node, ev)

    def _ev_other(self, node, ev):
        pass

    def _ev_term(self, node, ev):
        t = ev["term"]
        if t < self.max_term[node]:
            self._v("term-monotonic", node, f"term {t} after {self.max_term[node]}")
        self.max_term[node] = max(self.max_term[node], t)
        self.term[node] = t

    def _ev_vote(self, node, ev):
        key = (node, ev["term"])
        prev = self.votes.get(key)
        if prev is not None and prev != ev["candidate"]:
            self._v("vote-once", node, f"term {ev['term']}: voted {prev} then {ev['candidate']}")
        self.votes.setdefault(key, ev["candidate"])

    def _ev_role(self, node, ev):
        self.role[node] = ev["role"]
        t = ev["term"]
        self.term[node] = t
        if ev["role"] != LEADER:
            return
        other = self.leaders.get(t)
        if other is not None and other != node:
            self._v("election-safety", node, f"two leaders in term {t}: {other} and {node}")
        self.leaders.setdefault(t, node)
        # Leader Completeness (§5.4): every entry committed in an earlier term is in this log.
        # the highest index first committed in a term < t (commit_top: per term, not per index)
        best = max((idx for ct, idx in self.commit_top.items() if ct < t), default=-1)
        if best > 0:
            h = self._hash_at(node, best)
            b = self.base[node][0]
            if h is None and b > best:
                # compacted: the snapshot base must continue the committed chain
                h, best = self.base[node][1], b
                want = self.committed.get(b)
                if want is not None and want != h:
                    self._v("leader-completeness", node, f"term {t}: snapshot base {b} diverges from committed")
                return
            if h != self.committed[best]:
                self._v("leader-completeness", node,
                        f"leader of term {t} lacks committed index {best} (has {h}, committed {self.committed[best]})")

    def _ev_append(self, node, ev):
        i, t, h = ev["index"], ev["term"], ev["hash"]
        b = self.base[node][0]
        lg = self.log[node]
        pos = i - b - 1
        if ev.get("recovered") and pos < len(lg):
            # a restarted node journals the log it recovered: it must be the one it had journaled
            if pos >= 0 and lg[pos] != (t, h):
                self._v("log-matching", node, f"recovered entry {i} is {(t, h)}, journaled as {lg[pos]}")
            return
        if pos != len(lg):
            self._v("log-gap", node, f"append at {i} but mirrored last index is {b + len(lg)}")
            del lg[max(pos, 0):]
        lg.append((t, h))
        key = (i, t)
        prev = self.index_term_hash.get(key)
        if prev is None:
            self.index_term_hash[key] = h
        elif prev != h:
            self._v("log-matching", node, f"index {i} term {t}: hash {h} != {prev}")

    def _ev_truncate(self, node, ev):
        f = ev["from_index"]
        if self.role[node] == LEADER:
            self._v("leader-append-only", node, f"leader truncated its log from {f}")
        if f <= self.max_commit[node]:
            self._v("committed-truncated", node, f"truncate from {f} <= commit {self.max_commit[node]}")
        b = self.base[node][0]
        del self.log[node][max(0, f - b - 1):]

    def _ev_commit(self, node, ev):
        c = ev["index"]
        if c < self.max_commit[node]:
            self._v("commit-monotonic", node, f"commit {c} after {self.max_commit[node]}")
        self.max_commit[node] = max(self.max_commit[node], c)
        if self.rule_checks and self.role[node] == LEADER and c > self.checked[node]:
            pos = c - self.base[node][0] - 1
            lg = self.log[node]
            if 0 <= pos < len(lg) and lg[pos][0] != self.term[node]:
                self._v("commit-rule", node, f"leader of term {self.term[node]} committed index {c} "
                                             f"of term {lg[pos][0]} by counting replicas (§5.4.2)")
        start = max(self.checked[node] + 1, self.base[node][0])
        for i in range(start, c + 1):
            h = self._hash_at(node, i)
            if h is None:
                self._v("state-machine-safety", node, f"committed index {i} missing from the log")
                break
            want = self.committed.get(i)
            if want is None:
                self.committed[i] = h
                ct = self.commit_term[i] = self.term[node]
                if i > self.commit_top.get(ct, -1):
                    self.commit_top[ct] = i
            elif want != h:
                self._v("state-machine-safety", node, f"index {i} committed as {h}, elsewhere as {want}")
                break
        self.checked[node] = max(self.checked[node], c)

    def _ev_apply(self, node, ev):
        i = ev["index"]
        if i > self.max_commit[node]:
            self._v("apply-past-commit", node, f"applied {i} with commit {self.max_commit[node]}")
        got = (ev["hash"], ev["store_digest"])
        want = self.applied.get(i)
        if want is None:
            self.applied[i] = got
        elif want != got:
            self._v("state-machine-safety", node, f"index {i} applied as {got}, elsewhere as {want}")

    def _ev_snapshot(self, node, ev):
        i, h = ev["index"], ev["hash"]
        b, _ = self.base[node]
        lg = self.log[node]
        pos = i - b - 1
        if 0 <= pos < len(lg) and lg[pos][1] == h:
            del lg[:pos + 1]          # local compaction (or a snapshot our log already had)
        else:
            self.log[node] = []       # installed from the leader: log replaced
        self.base[node] = (i, h)
        want = self.committed.get(i)
        if want is not None and want != h:
            self._v("state-machine-safety", node, f"snapshot at {i} has hash {h}, committed {want}")
        got = self.applied.get(i)
        if got is not None and got[1] != ev["store_digest"]:
            self._v("state-machine-safety", node, f"snapshot digest at {i} differs from applied digest")


SafetyChecker._handlers = {name[4:]: fn for name, fn in vars(SafetyChecker).items() if name.startswith("_ev_")}


class _Client:
    __slots__ = ("cid", "seq", "pending", "retries", "reads")

    def __init__(self, cid: str):
        self.cid, self.seq, self.pending, self.retries, self.reads = cid, 0, None, 0, 0


class RaftSim:
    """A seeded cluster of RaftNodes over a simulated network."""

    def __init__(self, params: SimParams):
        self.p = params
        master = random.Random(params.seed)
        self.n = params.n_nodes or master.choice((3, 5))
        self.ids = [f"m{i + 1}" for i in range(self.n)]
        base = params.config or RaftConfig(
            max_entries_per_message=master.choice((1, 4, 64)),
            snapshot_threshold=master.choice((8, 32, 1000)))
        self.config = base.with_bug(params.bug) if params.bug != "none" else base.validate()
        self.link = params.link or LinkSpec(
            delay_ms_min=1.0, delay_ms_max=master.choice((5.0, 20.0)),
            loss=master.choice((0.0, 0.01, 0.05)), dup=master.choice((0.0, 0.02)),
            reorder=master.choice((0.0, 0.05)))
        self.sched = Scheduler()
        self.net = Network(random.Random(master.getrandbits(64)), self.ids, self.link)
        self.fault_rng = random.Random(master.getrandbits(64))
        self.client_rng = random.Random(master.getrandbits(64))
        self.node_seed = {i: master.getrandbits(64) for i in self.ids}
        self.storage = {i: MemoryStorage() for i in self.ids}
        self.boot = {i: 1 for i in self.ids}
        self.nodes: dict = {}
        self.checker = SafetyChecker(self.ids, params.rule_checks)
        self.cons = ConsequenceChecker(self.ids, self._report) if params.consequence_checks else None
        if self.cons is not None:
            self.cons.rule_checks = params.rule_checks
            self.cons.nodes_fn = lambda: self.nodes.items()
            self.cons.holds = self._holds
        self.membership_on = "membership" in params.faults
        self.paths = PathCounter(MEMBERSHIP_PATHS if self.membership_on else ())
        if self.cons is not None:
            self.paths.committed = self.cons.committed
        self.stale = StaleTail(self)
        self.factory = params.node_factory or RaftNode
        self.bootstrap_ids = tuple(self.ids)
        self.conf_index: dict = {}           # node -> index of its latest configuration entry
        self.retired: set = set()            # removed from the configuration and stopped for good
        self.removed_running: set = set()    # removed (committed) but still running for a while
        self.bound_exceeded = None
        self.crash_arm: dict = {}            # node -> crash point inside its next Ready
        self.election_arm = False            # restart_in_election: waiting for a campaign
        self.last_role = {i: (None, 0) for i in self.ids}
        self.eff = {"elections": 0, "term_increases": 0, "spurious_elections": 0,
                    "spurious_term_increases": 0, "spurious_campaigns": 0, "faults": 0,
                    "repersisted_entries": 0, "early_compactions": 0}
        self.top_term = 0
        self.disturbed_ms = 0.0              # last fault start/end, crash or restart
        self.stable_since = None             # one leader at the top term since (virtual ms)
        self.settle_ms = 3 * (base.election_timeout_max_ticks if params.config is None
                              else params.config.election_timeout_max_ticks) * params.tick_ms
        self.trace_crc = 0
        self.stats = {"events": 0, "messages": 0, "crashes": 0, "partitions": 0,
                      "writes_acked": 0, "write_retries": 0, "reads_served": 0, "reads_dropped": 0,
                      "faults": []}
        self.acked_index = 0
        self.read_floor: dict = {}
        self.healed = False
        self.live = None      # liveness write: [client_id, node, index, term, acked_index]
        self.fault_state: dict = {}
        self.phase = {i: master.uniform(0, params.tick_ms) for i in self.ids}
        self.k0 = {i: 0 for i in self.ids}             # tick index that happens at phase[i]
        self.period = {i: float(params.tick_ms) for i in self.ids}   # ms per tick (slow_clock stretches it)
        self.tick_k = {i: 0 for i in self.ids}     # index of the next tick boundary to run
        self.wake_at = {i: None for i in self.ids}
        # node -> its RaftNode while it is settled: its last _process ended in a Ready-less round
        # that reported nothing, and nothing has been asked of it since (see _catch_up, _unsettle)
        self.settled: dict = {}
        # driver-contract checks: the tick index before which ticks_until_action() promised that
        # no tick does anything (None: no promise since the last input), and what each node's
        # storage already holds (index -> hash since its last snapshot / restart), to count
        # entries written twice
        self.promise = {i: None for i in self.ids}
        self.persisted = {i: {} for i in self.ids}
        self.snap_base = {i: 0 for i in self.ids}
        self.members = MembershipDriver(self) if self.membership_on else None
        # fsync_ms > 0: node -> (its outstanding Ready, what its durable state was, its term then)
        self.inflight: dict = {}
        self.fsync_rng = random.Random(params.seed * 7919 + 17) if params.fsync_ms > 0 else None
        for i in self.ids:
            self._start(i)
        self.clients = [_Client(f"c{k}") for k in range(params.clients)]
        self.client_by_id = {c.cid: c for c in self.clients}
        for c in self.clients:
            self.sched.at(self.client_rng.expovariate(1 / params.client_gap_ms_mean), "client", c)
        self.sched.at(self.fault_rng.uniform(params.fault_gap_ms_min, params.fault_gap_ms_max), "fault", None)
        self.sched.at(params.duration_ms, "heal", None)

    # ---- node lifecycle ------------------------------------------------------------------------
    def _holds(self, j: str, index: int, h: str) -> bool:
        """Whether node j holds the entry (index, chain hash h): its log if running, else what its
        storage made durable. An index inside its snapshot counts (the snapshot's own checks judge
        whether the snapshot is on the committed chain)."""
        node = self.nodes.get(j)
        if node is not None:
            lg = node.log
            return index <= lg.snap_index or lg.hash(index) == h
        st = self.storage[j]
        snap, log = st._snap, st._log
        if index <= snap.index:
            return True
        pos = index - snap.index - 1
        return pos < len(log) and log[pos].hash == h

    def _report(self, kind: str, node: str, detail: str) -> None:
        self.checker.now_ms = self.sched.now_ms
        self.checker._v(kind, node, detail)

    def add_node(self, i: str) -> None:
        """A fresh node under a new id (membership: it joins with no configuration and waits for
        the leader to replicate the one that lists it as a learner)."""
        rng = self.members.rng
        self.ids.append(i)
        self.node_seed[i] = rng.getrandbits(64)
        self.storage[i] = MemoryStorage()
        self.boot[i] = 1
        self.last_role[i] = (None, 0)
        self.phase[i] = rng.uniform(0, self.p.tick_ms)
        self.k0[i] = 0
        self.period[i] = float(self.p.tick_ms)
        self.tick_k[i] = 0
        self.wake_at[i] = None
        self.promise[i] = None
        self.persisted[i] = {}
        self.snap_base[i] = 0
        self.checker.add_node(i)
        if self.cons is not None:
            self.cons.add_node(i)
        self._start(i)

    def retire(self, i: str, wipe: bool = False) -> None:
        """Stop a removed node for good (and, for a replacement, wipe its disk)."""
        if i in self.retired:
            return
        self.crash(i)
        self.retired.add(i)
        self.removed_running.discard(i)
        if wipe:
            self.storage[i] = MemoryStorage()

    def _start(self, i: str) -> None:
        rng = random.Random(self.node_seed[i] + self.boot[i])
        sm = SimStore(self.cons.observer(i)) if self.cons is not None else Store()
        voters = self.bootstrap_ids if i in self.bootstrap_ids else ()
        try:
            node = self.factory(i, voters, self.storage[i], self.config, rng, sm)
        except Exception:
            self._core_exception(i)
            return
        self.nodes[i] = node
        self.promise[i] = None
        self.persisted[i] = {}
        self.snap_base[i] = node.log.snap_index
        self.disturbed_ms = self.sched.now_ms
        self.checker.on_restart(i, node)
        if self.cons is not None:
            self.cons.on_restart(i, node)
        self.last_role[i] = (node.role, node.term)
        now = self.sched.now_ms
        ph, k0 = self.phase[i], self.k0[i]
        self.tick_k[i] = k0 + int((now - ph) // self.period[i]) + 1 if now > ph else k0
        self.wake_at[i] = None
        self._process(i)
        self._schedule_wake(i)

    def crash(self, i: str) -> None:
        if self.nodes.get(i) is None:
            return
        self.storage[i].crash()
        self.inflight.pop(i, None)
        self.nodes[i] = None
        self.crash_arm.pop(i, None)
        self.disturbed_ms = self.sched.now_ms
        self.stats["crashes"] += 1
        self.checker.role[i] = "down"

    def restart(self, i: str) -> None:
        if self.nodes.get(i) is not None or i in self.retired:
            return
        self.boot[i] += 1
        self._start(i)

    def leaders(self) -> list:
        return [i for i in self.ids if self.nodes.get(i) is not None and self.nodes[i].role == LEADER]

    # ---- the driver loop (Ready contract) ---------------------------------------------------------
    def _unsettle(self, i: str) -> None:
        """Node i is about to be asked something (a tick, a message, a proposal, a read): its next
        _catch_up must _process it again."""
        self.settled.pop(i, None)

    def _process(self, i: str) -> None:
        node = self.nodes[i]
        self.promise[i] = None       # an input may have changed every timer
        self.settled.pop(i, None)
        if self.inflight and i in self.inflight:
            return self._process_inflight(i, node)
        checker, cons, sched = self.checker, self.cons, self.sched
        violations = checker.violations
        st = self.storage[i]
        if self.fsync_rng is not None:
            # (the agent's driver, too: answer what is committed and durable before taking a
            # Ready whose fsync would otherwise delay it)
            self._process_inflight(i, node, judge=False)
            if self.nodes.get(i) is not node:
                return
        for _ in range(MAX_READY_ROUNDS):
            try:
                pending = node.has_ready()
                rd = node.ready()
            except Exception:
                self._core_exception(i)
                return
            if (rd is not None) != pending:
                # the driver contract: has_ready() says whether ready() has something
                checker.now_ms = sched.now_ms
                checker._v("ready-contract", i, f"has_ready() is {pending} but ready() returned "
                                                f"{'a Ready' if rd is not None else 'None'}")
            if rd is None:
                seen = len(violations)
                quiet = self._after_step(i, node)    # (the consequence checks: settled_ok holds)
                if not pending and len(violations) == seen and self.nodes.get(i) is node \
                        and (cons is None or quiet):
                    self.settled[i] = node
                return
            snap, entries = rd.snapshot, rd.entries
            if entries or snap is not None:     # (_count_writes has nothing to count otherwise)
                self._count_writes(i, rd)
                if snap is not None and snap.config is not None and self.membership_on:
                    self.paths.hit("snapshot_with_config")
            point = self.crash_arm.get(i)
            try:
                st.persist(rd.hard_state, entries, snap)
                if self.fsync_rng is not None and point is None and (
                        entries or snap is not None or rd.hard_state is not None):
                    return self._defer_sync(i, node, rd)
                if point != "before_sync":
                    st.sync()       # a StorageError here is the node's (its Ready asked for a gap)
            except Exception:
                self._core_exception(i)
                return
            if point == "before_sync":
                return self._crash_in_ready(i, point)
            now = sched.now_ms
            events = rd.events
            if events:
                checker.now_ms = now
                checker.on_events(i, events)
                self.paths.on_events(events)
                if self.p.trace_hash:
                    self.trace_crc = zlib.crc32(repr((i, round(now, 6), events)).encode(), self.trace_crc)
            msgs = rd.messages
            if cons is not None:
                cons.on_durable(i, node, msgs)
            if point is not None:
                if point == "before_send" or (point == "mid_send" and len(msgs) < 2):
                    return self._crash_in_ready(i, "before_send")
                if point == "mid_send":
                    cut = len(msgs) // 2
                    for m in msgs[:cut]:
                        self._send(now, i, m)
                    return self._crash_in_ready(i, point)
            if msgs:
                stats, send, boot = self.stats, self.net.send, self.boot
                heap = sched._heap
                for m in msgs:
                    stats["messages"] += 1
                    ts = send(now, i, m.dst)
                    if ts:
                        payload = (boot[m.dst], m)
                        for t in ts:
                            # sched.at(t, "msg", payload), inline
                            if len(heap) >= sched.max_queue:
                                raise BoundExceeded(f"event queue exceeded {sched.max_queue} events")
                            sched._seq += 1
                            heappush(heap, (now if now > t else t, sched._seq, "msg", payload))   # max(t, now)
            if rd.results:
                self._on_results(i, rd.results)
            for rs in rd.read_states:
                self._serve_read(i, rs)
            for ctx in rd.dropped_reads:
                self.read_floor.pop(ctx, None)
                self.stats["reads_dropped"] += 1
                self.paths.hit("reads_dropped")
            try:
                node.advance(rd)
            except Exception:
                self._core_exception(i)
                return
        checker._v("ready-bound", i, f"more than {MAX_READY_ROUNDS} Readies in one step")

    # ---- group commit (fsync_ms > 0) --------------------------------------------------------------
    def _defer_sync(self, i: str, node, rd) -> None:
        """Ready rd is persisted; its fsync completes later ("synced"). What the consequence checks
        take from the node at release (its durable log, its term before the step) is read now:
        by the fsync's end the node may have appended, truncated or changed term meanwhile."""
        lg = node.log
        ents = lg.entries
        dur = (lg.snap_index + len(ents), ents[-1].hash if ents else lg.snap_hash, lg.snap_index, lg.snap_hash)
        low = self.cons.max_term[i] if self.cons is not None else 0
        self.inflight[i] = (rd, dur, low)
        self.stats["deferred_syncs"] = self.stats.get("deferred_syncs", 0) + 1
        self.sched.after(self.fsync_rng.uniform(0.1, 1.0) * self.p.fsync_ms, "synced", (i, self.boot[i], rd))

    def _process_inflight(self, i: str, node, judge: bool = True) -> None:
        """An input reached node i while its Ready's fsync is under way: acknowledge what is
        committed and durable (apply_durable), and judge the node's state; the rest waits."""
        try:
            results = node.apply_durable()
        except Exception:
            self._core_exception(i)
            return
        if results:
            stats = self.stats
            acked = stats["writes_acked"]
            self._on_results(i, results)
            # client writes acknowledged before a later group's fsync (apply_durable's purpose)
            stats["early_acks"] = stats.get("early_acks", 0) + stats["writes_acked"] - acked
        if judge:
            self._after_step(i, node)

    def _synced(self, i: str, boot: int, rd) -> None:
        """The fsync of node i's outstanding Ready completed: the rest of the Ready contract. (The
        same steps as the end of _process's loop, which keeps them inline: that loop is the
        simulator's hot path, issue 25 section 6, and this one runs only with fsync_ms.)"""
        node = self.nodes.get(i)
        held = self.inflight.get(i)
        if node is None or boot != self.boot[i] or held is None or held[0] is not rd:
            return      # the node crashed meanwhile (its unsynced writes are gone)
        del self.inflight[i]
        _, dur, low = held
        try:
            self.storage[i].sync()
        except Exception:
            self._core_exception(i)
            return
        now = self.sched.now_ms
        if rd.events:
            self.checker.now_ms = now
            self.checker.on_events(i, rd.events)
            self.paths.on_events(rd.events)
            if self.p.trace_hash:
                self.trace_crc = zlib.crc32(repr((i, round(now, 6), rd.events)).encode(), self.trace_crc)
        if self.cons is not None:
            self.cons.on_durable(i, node, rd.messages, durable=dur, low=low)
        for m in rd.messages:
            self._send(now, i, m)
        if rd.results:
            self._on_results(i, rd.results)
        for rs in rd.read_states:
            self._serve_read(i, rs)
        for ctx in rd.dropped_reads:
            self.read_floor.pop(ctx, None)
            self.stats["reads_dropped"] += 1
            self.paths.hit("reads_dropped")
        try:
            node.advance(rd)
        except Exception:
            self._core_exception(i)
            return
        self._catch_up(i)
        self._schedule_wake(i)

    def _send(self, now: float, i: str, m) -> None:
        self.stats["messages"] += 1
        send = self.net.send(now, i, m.dst)
        if send:
            at, payload = self.sched.at, (self.boot[m.dst], m)
            for t in send:
                at(t, "msg", payload)

    def _count_writes(self, i: str, rd) -> None:
        """Efficiency of the writes a Ready asks for: an entry the node's storage already holds
        (same index and chain hash, no snapshot or restart since) written again, and a local
        compaction that moved the snapshot base by less than snapshot_threshold entries."""
        held = self.persisted[i]
        snap = rd.snapshot
        if snap is not None:
            if rd.committed_entries and snap.index == rd.committed_entries[-1].index \
                    and snap.index - self.snap_base[i] < self.config.snapshot_threshold:
                self.eff["early_compactions"] += 1     # taken locally right after applying
            self.snap_base[i] = snap.index
            held.clear()                               # storage replaces its log: the tail is re-sent
        for e in rd.entries:
            h = held.get(e.index)
            if h == e.hash:
                self.eff["repersisted_entries"] += 1
            elif h is not None:                        # a conflicting entry replaces a stored tail
                for k in [k for k in held if k >= e.index]:
                    del held[k]
            held[e.index] = e.hash

    def _crash_in_ready(self, i: str, point: str) -> None:
        """An armed crash inside the Ready contract: after persist (unsynced writes are lost),
        after sync before any message leaves, or after some of the messages left."""
        self.paths.hit("crash_" + point)
        self.crash(i)
        self.sched.after(self.fault_rng.uniform(1, 300), "restart", i)

    def _after_step(self, i: str, node) -> bool:
        """Consequence checks, path counters and efficiency bookkeeping after node i settled.
        Returns whether the consequence checks' settled_ok holds for the node now (True without
        them): what ConsequenceChecker.after_step returned, unless a role change ran more code."""
        cons = self.cons
        quiet = cons.after_step(i, node) if cons is not None else True
        old_role, old_term = self.last_role[i]
        role, term = node.role, node.term
        if role == old_role and term == old_term:
            return quiet
        self._role_changed(i, node, old_role, old_term, role, term)
        # (a new leader's membership step may have driven the node again: ask afresh)
        return cons is None or cons.settled_ok(i, node)

    def _role_changed(self, i: str, node, old_role, old_term, role, term) -> None:
        self.last_role[i] = (role, term)
        self.paths.on_role(old_role, old_term, node)
        if self.membership_on:
            ci = node.log.last_conf_index
            if ci < self.conf_index.get(i, 0) and node.log.snap_index < self.conf_index.get(i, 0):
                self.paths.hit("conf_rolled_back")
            self.conf_index[i] = ci
            if old_role == LEADER and node.membership is not None and i not in node.membership.voters:
                self.paths.hit("leader_removed_stepped_down")
            if i in self.removed_running:
                self.paths.hit("removed_node_running")
                return     # a removed node that was not told campaigns: not the group's efficiency
            if role == LEADER and old_role != LEADER:
                self.members.on_new_leader(i)
        now = self.sched.now_ms
        stable = (self.stable_since is not None and now - self.stable_since >= self.settle_ms
                  and now - self.disturbed_ms >= self.settle_ms and self._net_healthy())
        eff = self.eff
        if term > self.top_term:
            self.top_term = term
            eff["term_increases"] += 1
            if stable:
                eff["spurious_term_increases"] += 1
            self.stable_since = None
        if role == "precandidate" and stable:
            eff["spurious_campaigns"] += 1
        if role == LEADER and old_role != LEADER:
            eff["elections"] += 1
            if stable:
                eff["spurious_elections"] += 1
            self.stable_since = now if term == self.top_term else self.stable_since
        elif old_role == LEADER:
            self.stable_since = None
        if self.election_arm and role in ("precandidate", "candidate"):
            self.election_arm = False
            self._restart_in_election(i)

    def _net_healthy(self) -> bool:
        return (not self.net.deaf and not self.net.links
                and all(n is not None for i, n in self.nodes.items() if i not in self.retired)
                and all(p == self.p.tick_ms for p in self.period.values()))

    def _core_exception(self, i: str) -> None:
        """An exception inside node i (its core, its storage, an assertion) is a verdict with the
        trace; the node is crashed (and restarted like any crashed node)."""
        self.checker.now_ms = self.sched.now_ms
        self.checker._v("core-exception", i, _trace())
        self.crash(i)

    # ---- virtual time for the nodes' tick() ------------------------------------------------------
    # Node i ticks at phase[i] + (k - k0[i]) * period[i] for k = k0, k0 + 1, ... (period is
    # tick_ms except while a slow_clock fault stretches it). Idle ticks are not scheduled one by
    # one: before any input reaches a node, every tick boundary up to now is run (_catch_up), and one
    # wake-up event is scheduled at the boundary where the core says a timer can fire.
    def _catch_up(self, i: str) -> None:
        node = self.nodes[i]
        tick_ms, k0, phase = self.period[i], self.k0[i], self.phase[i]
        k = self.tick_k[i]
        now = self.sched.now_ms
        if phase + (k - k0) * tick_ms > now and self.settled.get(i) is node:
            # no tick is due and nothing was asked of the node since a _process that found no
            # Ready and reported nothing: _process would find the same (the checks it runs on a
            # settled node are idempotent, ConsequenceChecker.settled_ok), so skip it
            self.promise[i] = None
            return
        self.settled.pop(i, None)
        promise = self.promise[i]
        tick_k, tick, has_ready = self.tick_k, node.tick, node.has_ready
        try:
            while phase + (k - k0) * tick_ms <= now:   # the same expression as _schedule_wake's
                k += 1
                tick_k[i] = k
                tick()
                if promise is not None and k - 1 < promise and has_ready():
                    # ticks_until_action() promised that no tick before `promise` does anything
                    # (drivers skip those ticks): a broken promise delays timers in every driver
                    self.checker.now_ms = self.sched.now_ms
                    self.checker._v("tick-promise", i, f"tick {k - 1} acted before the promised tick {promise}")
                    promise = self.promise[i] = None
        except Exception:
            self._core_exception(i)
            return
        self._process(i)

    def _set_clock(self, i: str, period: float) -> None:
        """From the next tick on, node i ticks every `period` ms (a clock running slow when
        period > tick_ms: its timers, the leader lease among them, expire late)."""
        if self.nodes.get(i) is None:
            return
        self._catch_up(i)
        if self.nodes.get(i) is None:
            return
        k = self.tick_k[i]
        self.phase[i] = self.phase[i] + (k - self.k0[i]) * self.period[i]
        self.k0[i], self.period[i] = k, float(period)
        self._schedule_wake(i)

    def _schedule_wake(self, i: str) -> None:
        node = self.nodes.get(i)
        if node is None:
            return
        k = self.tick_k[i] + node.ticks_until_action() - 1
        # (while a Ready is outstanding its effects are pending: no promise that ticks do nothing)
        self.promise[i] = None if self.inflight and i in self.inflight else k
        t = self.phase[i] + (k - self.k0[i]) * self.period[i]
        if t != self.wake_at[i]:
            self.wake_at[i] = t
            sched = self.sched                     # sched.at(t, "wake", ...), inline
            heap = sched._heap
            if len(heap) >= sched.max_queue:
                raise BoundExceeded(f"event queue exceeded {sched.max_queue} events")
            sched._seq += 1
            now = sched.now_ms
            heappush(heap, (now if now > t else t, sched._seq, "wake", (i, self.boot[i], t)))   # max(t, now)

    def _step(self, i: str, m, node=None) -> None:
        """Deliver message m to node i (after running its due ticks), then drive its Readies.
        `node`: the caller ran them already and node i is that running, settled node."""
        if node is None:
            self._catch_up(i)
            node = self.nodes.get(i)
            if node is None:
                return
        self.settled.pop(i, None)
        try:
            node.step(m)
        except (NotLeader, Busy):
            self._schedule_wake(i)
            raise
        except Exception:
            self._core_exception(i)
            return
        self._process(i)
        self._schedule_wake(i)

    # ---- clients ------------------------------------------------------------------------------
    def _on_results(self, i: str, results) -> None:
        for r in results:
            cid = r.command.get("client_id")
            if cid is None:
                continue
            if cid == "live" and self.live is not None:
                if self.live[1] == i and self.live[2] == r.index and self.live[3] == r.term:
                    self.live[4] = r.index
                continue
            c = self.client_by_id[cid]
            pend = c.pending
            if pend and pend[0] == i and pend[1] == r.index and pend[2] == r.term:
                c.pending = None
                self.stats["writes_acked"] += 1
                if r.index > self.acked_index:
                    self.acked_index = r.index

    def _serve_read(self, i: str, rs) -> None:
        floor = self.read_floor.pop(rs.ctx, None)
        if floor is None:
            return
        node = self.nodes[i]
        self.stats["reads_served"] += 1
        if any(n is not None and n.term > node.term for n in self.nodes.values()):
            self.paths.hit("read_while_newer_term")
        if self.cons is not None:
            self.cons.on_read(i, node, floor, rs.ctx)
        if node.applied_index < floor:
            self.checker.now_ms = self.sched.now_ms
            self.checker._v("stale-read", i, f"read served at applied index {node.applied_index} after a write "
                                             f"at index {floor} was acknowledged")

    def _pick_target(self) -> str | None:
        ls = self.leaders()
        if ls:
            return ls[0] if len(ls) == 1 else self.client_rng.choice(ls)
        alive = [i for i in self.ids if self.nodes.get(i) is not None]
        return self.client_rng.choice(alive) if alive else None

    def _client_op(self, c: _Client) -> None:
        rng = self.client_rng
        self.sched.after(rng.expovariate(1 / self.p.client_gap_ms_mean), "client", c)
        if self.healed:
            return
        target = self._pick_target()
        if target is None:
            return
        self._catch_up(target)
        node = self.nodes.get(target)
        if node is None:
            return
        if c.pending is None and rng.random() < 0.7:
            c.seq += 1
            key = f"k{rng.randrange(4)}"
            if rng.random() < 0.85:
                cmd = {"op": "kv.put", "key": key, "value": rng.randrange(1_000_000)}
            else:
                cmd = {"op": "kv.cas", "key": key, "expected": rng.randrange(3), "value": rng.randrange(3)}
            cmd.update(client_id=c.cid, seq=c.seq)
            self._propose(c, target, cmd)
        else:
            c.reads += 1
            ctx = (c.cid, c.reads)
            self._unsettle(target)
            try:
                node.read_index(ctx)
            except (NotLeader, Busy):
                return
            except Exception:
                self._core_exception(target)
                return
            self.read_floor[ctx] = self.acked_index
            if self.cons is not None:
                self.cons.read_began(ctx)
            self._process(target)
            self._schedule_wake(target)

    def _propose(self, c: _Client, target: str, cmd: dict) -> None:
        self._catch_up(target)
        node = self.nodes.get(target)
        if node is None:
            return
        self._unsettle(target)
        try:
            index = node.propose(cmd)
        except (NotLeader, Busy):
            c.pending = (None, 0, 0, cmd, 0)
            self.sched.after(self.p.client_timeout_ms / 4, "client_retry", (c, cmd))
            return
        except Exception:
            self._core_exception(target)
            return
        c.pending = (target, index, node.term, cmd, 0)
        self.sched.after(self.p.client_timeout_ms, "client_retry", (c, cmd))
        self._process(target)
        self._schedule_wake(target)

    def _client_retry(self, c: _Client, cmd: dict) -> None:
        pend = c.pending
        if pend is None or pend[3] is not cmd or self.healed:
            return
        c.retries += 1
        self.stats["write_retries"] += 1
        if c.retries > 1000:
            return
        target = self._pick_target()
        if target is None or self.nodes[target] is None:
            self.sched.after(self.p.client_timeout_ms, "client_retry", (c, cmd))
            return
        self._propose(c, target, cmd)     # same client_id + seq: applies at most once

    # ---- faults -------------------------------------------------------------------------------
    def _fault(self) -> None:
        p, rng = self.p, self.fault_rng
        self.sched.after(rng.uniform(p.fault_gap_ms_min, p.fault_gap_ms_max), "fault", None)
        if self.healed:
            return
        kind = rng.choice(p.faults)
        dur = rng.uniform(100, p.fault_len_ms_max)
        if self.stale.active:
            return      # a stale-tail fault runs its phases undisturbed
        self.eff["faults"] += 1
        self.disturbed_ms = self.sched.now_ms
        if kind == "membership":
            self.members.start()
            return
        alive = [i for i in self.ids if self.nodes.get(i) is not None]
        ls = self.leaders()
        if kind in ("crash", "crash_leader"):
            victims = ls if (kind == "crash_leader" and ls) else alive
            if not victims:
                return
            v = rng.choice(victims)
            if rng.random() < 0.3:
                dur = rng.uniform(1, 30)   # a quick process restart (kill -9 and start again)
            self.crash(v)
            self.sched.after(dur, "restart", v)
            self.stats["faults"].append([round(self.sched.now_ms), kind, v, round(dur)])
        elif kind in ("partition", "isolate_leader"):
            if kind == "isolate_leader" and ls:
                shape, part = "isolate_leader", isolate(rng.choice(ls), self.ids)
            else:
                shape, part = random_partition(rng, self.ids)
            self.net.set_partition(part)
            self.stats["partitions"] += 1
            token = object()
            self.fault_state["partition"] = token
            self.sched.after(dur, "unpartition", token)
            self.stats["faults"].append([round(self.sched.now_ms), shape, round(dur)])
        elif kind == "lossy":
            # a random subset of directed links turns lossy, slow and reordering, each its own way
            for a in self.ids:
                for b in self.ids:
                    if a != b and rng.random() < 0.5:
                        self.net.set_link(a, b, dataclasses.replace(
                            self.link, loss=rng.uniform(0.1, 0.5), reorder=0.2,
                            delay_ms_max=self.link.delay_ms_max + rng.uniform(0, 50)))
            token = object()
            self.fault_state["lossy"] = token
            self.sched.after(dur, "unlossy", token)
            self.stats["faults"].append([round(self.sched.now_ms), kind, round(dur)])
        elif kind == "delay_storm":
            # messages of deposed leaders and old candidates arrive late, after newer terms began:
            # some links get delays of up to a few election timeouts and heavy reordering
            for a in self.ids:
                for b in self.ids:
                    if a != b and rng.random() < 0.5:
                        self.net.set_link(a, b, dataclasses.replace(
                            self.link, reorder=0.5, delay_ms_max=self.link.delay_ms_max + rng.uniform(50, 400),
                            reorder_extra_ms_max=rng.uniform(200, 1500)))
            token = object()
            self.fault_state["lossy"] = token
            self.sched.after(dur, "unlossy", token)
            self.stats["faults"].append([round(self.sched.now_ms), kind, round(dur)])
        elif kind == "crash_mid_ready":
            victims = ls if (ls and rng.random() < 0.6) else alive
            if victims:
                v = rng.choice(victims)
                self.crash_arm[v] = rng.choice(CRASH_POINTS)
                self.stats["faults"].append([round(self.sched.now_ms), kind, v, self.crash_arm[v]])
        elif kind == "slow_clock":
            # a node (the leader, mostly) whose clock runs 2-6 times slow: it keeps acting on a
            # lease and timers that expired long ago elsewhere, while the others elect anew
            victims = ls if (ls and rng.random() < 0.7) else alive
            if victims:
                v = rng.choice(victims)
                self.paths.hit("slow_clock")
                self._set_clock(v, p.tick_ms * rng.uniform(2, 6))
                self.sched.after(dur, "clock_ok", v)
                if v in ls and rng.random() < 0.5:
                    # ... and cut off in a minority: its lease outlives the majority's election
                    others = [j for j in self.ids if j != v]
                    side = [v] + rng.sample(others, (self.n - 1) // 2 - 1)
                    self.net.set_partition(split([side], self.ids))
                    self.stats["partitions"] += 1
                    token = object()
                    self.fault_state["partition"] = token
                    self.sched.after(dur, "unpartition", token)
                self.stats["faults"].append([round(self.sched.now_ms), kind, v, round(dur)])
        elif kind == "stale_tail":
            self.stale.start(rng, ls)
        elif kind == "restart_in_election":
            self.election_arm = True
            self.stats["faults"].append([round(self.sched.now_ms), kind])
        elif kind == "divergent_tail" and ls:
            # the leader is cut off and fed writes it can never commit; the majority moves on
            # (and may compact past the tail); after the heal the tail must be truncated or
            # replaced by an InstallSnapshot
            v = rng.choice(ls)
            self.net.set_partition(isolate(v, self.ids))
            self.stats["partitions"] += 1
            token = object()
            self.fault_state["partition"] = token
            self.sched.after(max(dur, 1000), "unpartition", token)
            node = self.nodes[v]
            self._unsettle(v)
            for k in range(rng.randint(5, 40)):
                try:
                    node.propose({"op": "kv.put", "key": f"t{k % 3}", "value": k})
                except (NotLeader, Busy):
                    break
                except Exception:
                    self._core_exception(v)
                    return
            self._process(v)
            self._schedule_wake(v)
            self.stats["faults"].append([round(self.sched.now_ms), kind, v, round(max(dur, 1000))])

    def _restart_in_election(self, candidate: str) -> None:
        """Crash the campaigning node or a voter, and restart it within a few ticks."""
        rng = self.fault_rng
        alive = [i for i in self.ids if self.nodes.get(i) is not None]
        v = candidate if rng.random() < 0.5 or len(alive) < 2 else rng.choice(alive)
        self.paths.hit("restart_during_election")
        self.crash(v)
        self.sched.after(rng.uniform(1, 50), "restart", v)

    def _heal(self) -> None:
        for i in sorted(self.removed_running):
            self.retire(i)          # removed nodes leave before the end
        self.healed = True
        self.crash_arm.clear()
        self.election_arm = False
        self.net.heal()
        self.net.links.clear()
        self.fault_state.clear()
        for i in self.ids:
            self.restart(i)
            if self.period[i] != self.p.tick_ms:
                self._set_clock(i, self.p.tick_ms)
        self.live = ["live", None, 0, 0, 0]
        self.sched.after(0, "live", None)

    def _live_probe(self) -> None:
        lv = self.live
        if lv[4]:
            return
        self.sched.after(200, "live", None)
        ls = self.leaders()
        if not ls:
            return
        target = ls[0]
        if lv[1] == target and self.nodes[target].term == lv[3]:
            return  # still waiting on this leader
        self._catch_up(target)
        if self.nodes.get(target) is None or self.nodes[target].role != LEADER:
            return
        self._unsettle(target)
        try:
            idx = self.nodes[target].propose({"op": "kv.put", "key": "__live", "value": 1,
                                              "client_id": "live", "seq": 1})
        except (NotLeader, Busy):
            return
        lv[1], lv[2], lv[3] = target, idx, self.nodes[target].term
        self._process(target)
        self._schedule_wake(target)

    # ---- main loop ----------------------------------------------------------------------------
    def _dispatch(self, kind: str, payload) -> None:
        if kind == "wake":
            i, boot, t = payload
            if self.nodes.get(i) is None or boot != self.boot[i] or t != self.wake_at[i]:
                return
            self.wake_at[i] = None
            self._catch_up(i)
            self._schedule_wake(i)
        elif kind == "msg":
            boot, m = payload
            i = m.dst
            node = self.nodes.get(i)
            if node is None or boot != self.boot[i]:
                return
            deaf = self.net.deaf.get(i)               # net.can_hear(i, m.src), inline
            if deaf is not None and m.src in deaf:
                return
            self._catch_up(i)
            node = self.nodes.get(i)
            if node is None:
                return
            before = self.paths.before_message(node, m, self.nodes.get(m.src))
            if self.settled.get(i) is node:
                # _step's _catch_up would return at once (its ticks ran just now, the node is
                # settled): what it does then, inline
                self.promise[i] = None
                self._step(i, m, node)
            else:
                self._step(i, m)
            if before is not None:      # (after_message has nothing to do otherwise)
                node = self.nodes.get(i)
                if node is not None:
                    self.paths.after_message(node, m, before)
        elif kind == "client":
            self._client_op(payload)
        elif kind == "client_retry":
            self._client_retry(*payload)
        elif kind == "fault":
            self._fault()
        elif kind == "restart":
            if not self.healed:
                self.restart(payload)
        elif kind == "unpartition":
            if self.fault_state.get("partition") is payload:
                self.net.heal()
                self.disturbed_ms = self.sched.now_ms
        elif kind == "unlossy":
            if self.fault_state.get("lossy") is payload:
                self.net.links.clear()
                self.disturbed_ms = self.sched.now_ms
        elif kind == "clock_ok":
            if self.nodes.get(payload) is None:
                self.period[payload] = float(self.p.tick_ms)
            else:
                self._set_clock(payload, self.p.tick_ms)
            self.disturbed_ms = self.sched.now_ms
        elif kind == "synced":
            self._synced(*payload)
        elif kind == "stale":
            self.stale.step(payload)
        elif kind == "heal":
            self._heal()
        elif kind == "live":
            self._live_probe()
        elif kind == "member":
            self.members.poll(payload)
        elif kind == "retire":
            if not self.healed:
                self.retire(payload)

    def run_until(self, cond, max_ms: float) -> bool:
        """Process events until cond() holds (True; cond None: never) or virtual time passes
        max_ms (False)."""
        stop = self.p.stop_on_violation
        stats, max_events, dispatch = self.stats, self.p.max_events, self._dispatch
        sched = self.sched
        heap, heappop = sched._heap, heapq.heappop     # (Scheduler.pop_until, inline)
        violations = self.checker.violations
        while True:
            if cond is not None and cond():
                return True
            if stop and violations:
                return False
            if not heap or heap[0][0] > max_ms:
                return False
            t, _, kind, payload = heappop(heap)
            sched.now_ms = t
            stats["events"] += 1
            if stats["events"] > max_events:
                raise BoundExceeded(f"more than {max_events} events")
            dispatch(kind, payload)

    def live_done(self) -> bool:
        lv = self.live
        if lv is None or not lv[4]:
            return False
        ids = self.ids
        if self.membership_on:
            lead = self.nodes.get(lv[1])
            conf = lead.membership if lead is not None else None
            ids = [i for i in (conf.members if conf is not None else self.ids) if i not in self.retired]
        for i in ids:
            node = self.nodes.get(i)
            if node is None or node.applied_index < lv[4]:
                return False
        return True

    def run(self) -> dict:
        """Always ends in a verdict: a hit bound is a reported failure (`bound_exceeded`, and a
        `bound-exceeded` violation with the replay command), never an exception out of here."""
        p = self.p
        liveness = None
        try:
            self.run_until(None, p.duration_ms)
            if not (self.checker.violations and p.stop_on_violation):
                if not self.healed:
                    self._heal()
                ok = self.run_until(self.live_done, p.duration_ms + p.heal_window_ms)
                liveness = bool(ok) if not (self.checker.violations and p.stop_on_violation) else None
                if self.membership_on and not ok and not self.live[4]:
                    self._no_quorum_after_heal()
        except BoundExceeded as e:
            self.bound_exceeded = str(e)
            self._report("bound-exceeded", "-", f"{e} at virtual {self.sched.now_ms:.0f} ms")
        except Exception:     # the simulator's own failure (or one it did not attribute): still a verdict
            self._report("sim-exception", "-", f"at virtual {self.sched.now_ms:.0f} ms: {_trace()}")
        return self.result(liveness)

    def _no_quorum_after_heal(self) -> None:
        """Membership liveness: after the final heal no write committed within heal_window_ms.
        Reported when a majority of the latest configuration's voters (from the most up-to-date
        running log) is up -- then some quorum of it was reachable and the group should commit."""
        running = [(n.last_log_term, n.last_log_index, i) for i, n in self.nodes.items() if n is not None]
        if not running:
            return
        best = self.nodes[max(running)[2]]
        conf = best.membership
        voters = conf.voters if conf is not None else self.bootstrap_ids
        up = [v for v in voters if self.nodes.get(v) is not None]
        if len(up) >= len(voters) // 2 + 1:
            self._report("no-quorum-after-heal", "-",
                         f"no write committed within {self.p.heal_window_ms} ms of the final heal; latest "
                         f"configuration voters {list(voters)}, up {up}")

    def efficiency(self) -> dict:
        e = dict(self.eff)
        e["elections_per_fault"] = round(e["elections"] / max(1, e["faults"]), 3)
        e["term_increases_per_fault"] = round(e["term_increases"] / max(1, e["faults"]), 3)
        problems = []
        if e["spurious_elections"] + e["spurious_term_increases"] > self.p.spurious_elections_max:
            problems.append(f"{e['spurious_elections']} elections and {e['spurious_term_increases']} term "
                            f"increases while healthy with a stable leader (max {self.p.spurious_elections_max})")
        if e["spurious_campaigns"] > self.p.spurious_campaigns_max:
            problems.append(f"{e['spurious_campaigns']} pre-vote campaigns while healthy with a stable leader "
                            f"(max {self.p.spurious_campaigns_max})")
        if e["repersisted_entries"] > self.p.repersisted_entries_max:
            problems.append(f"repersisted_entries: {e['repersisted_entries']} entries written to storage again while it held them "
                            f"(max {self.p.repersisted_entries_max})")
        if e["early_compactions"] > self.p.early_compactions_max:
            problems.append(f"early_compactions: {e['early_compactions']} local snapshots taken less than snapshot_threshold "
                            f"entries after the previous one (max {self.p.early_compactions_max})")
        if e["faults"] >= 3 and e["elections_per_fault"] > self.p.elections_per_fault_max:
            problems.append(f"{e['elections_per_fault']} elections per fault (max {self.p.elections_per_fault_max})")
        e["problems"] = problems
        return e

    def _replay_extra(self) -> str:
        """CLI flags for the parameters that differ from the defaults (config/link overrides and
        rule_checks have no flags: such runs come from code, which the test names)."""
        p, d = self.p, SimParams(seed=0)
        extra = ""
        if p.duration_ms != d.duration_ms:
            extra += f" --seconds {p.duration_ms / 1000:g}"
        if (p.fault_gap_ms_min, p.fault_gap_ms_max) != (d.fault_gap_ms_min, d.fault_gap_ms_max):
            extra += f" --fault-gap-ms {p.fault_gap_ms_min}:{p.fault_gap_ms_max}"
        if p.fault_len_ms_max != d.fault_len_ms_max:
            extra += f" --fault-len-ms {p.fault_len_ms_max}"
        if p.max_events != d.max_events:
            extra += f" --max-events {p.max_events}"
        if tuple(p.faults) != DEFAULT_FAULTS:
            extra += " --faults " + ",".join(p.faults)   # order and repeats matter (the draws)
        if p.fsync_ms:
            extra += f" --fsync-ms {p.fsync_ms:g}"
        if p.node_factory is not None:
            extra += f"  # node_factory={getattr(p.node_factory, '__name__', p.node_factory)} (set from code)"
        return extra

    def result(self, liveness) -> dict:
        v = self.checker.violations
        out = {
            "seed": self.p.seed, "bug": self.p.bug, "nodes": self.n,
            "config": {"max_entries_per_message": self.config.max_entries_per_message,
                       "snapshot_threshold": self.config.snapshot_threshold},
            "link": dataclasses.asdict(self.link),
            "virtual_ms": round(self.sched.now_ms, 3),
            "violations": [x.to_dict() for x in v[:5]], "violation_count": len(v),
            "violation_kinds": sorted({x.kind for x in v}),
            "liveness_ok": liveness,
            "bound_exceeded": self.bound_exceeded,
            "efficiency": (eff := self.efficiency()),
            "efficiency_ok": not eff["problems"],
            "paths": dict(self.paths.counts),
            "path_tails": {k: v for k, v in self.paths.tails.items() if v},
            "stats": {k: val for k, val in self.stats.items() if k != "faults"},
            "faults": self.stats["faults"][:50],
            "leaders_elected": len(self.checker.leaders),
            "max_term": max(self.checker.max_term.values()),
            "max_commit": max(self.checker.max_commit.values()),
            "replay": replay_command(self.p.seed, self.p.bug, self._replay_extra()),
        }
        if self.p.trace_hash:
            out["trace_crc"] = self.trace_crc
        if self.members is not None:
            final = None
            for i, n in self.nodes.items():
                if n is not None and n.role == LEADER and n.membership is not None:
                    final = n.membership.to_dict()
            out["membership"] = dict(self.members.stats, kinds=dict(self.members.kinds), retired=sorted(self.retired),
                                     final_config=final, ids=len(self.ids))
        return out


def run_seed(seed: int, bug: str = "none", **kw) -> dict:
    """Run one seed; the dict has `violations`, `liveness_ok` and the `replay` command."""
    return RaftSim(SimParams(seed=seed, bug=bug, **kw)).run()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m swarmnode.sim.raft_sim", description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--bug", default="none", choices=("none",) + BUGS)
    ap.add_argument("--seconds", type=float, default=60.0, help="virtual seconds before the final heal")
    ap.add_argument("--fault-gap-ms", default="2000:10000", help="min:max virtual ms between faults")
    ap.add_argument("--fault-len-ms", type=int, default=6000, help="longest fault, virtual ms")
    ap.add_argument("--max-events", type=int, default=MAX_EVENTS_PER_RUN, help="event bound of the run")
    ap.add_argument("--faults", default=",".join(DEFAULT_FAULTS),
                    help="comma-separated fault kinds (the hunting profile adds stale_tail, the "
                         "membership profile membership)")
    ap.add_argument("--fsync-ms", type=float, default=0.0,
                    help="group commit: a Ready's fsync completes up to this many virtual ms later "
                         "while the node keeps stepping (0: within the step, the reference driver)")
    a = ap.parse_args(argv)
    faults = tuple(f for f in a.faults.split(",") if f)
    known = KNOWN_FAULTS
    if not faults or set(faults) - set(known):   # repeats weigh a kind (the hunting profile's stale_tail)
        ap.error(f"--faults: unknown or empty {sorted(set(faults) - set(known))}; known: {','.join(known)}")
    lo, hi = (int(x) for x in a.fault_gap_ms.split(":"))
    res = run_seed(a.seed, a.bug, duration_ms=int(a.seconds * 1000), fault_gap_ms_min=lo, fault_gap_ms_max=hi,
                   fault_len_ms_max=a.fault_len_ms, max_events=a.max_events, faults=faults,
                   fsync_ms=a.fsync_ms)
    print(json.dumps(res, indent=1, sort_keys=True))
    bad = res["violation_count"] > 0 or res["liveness_ok"] is False or not res["efficiency_ok"]
    if bad:
        print("FAILED; replay: " + res["replay"], file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
