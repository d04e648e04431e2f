"""Random membership changes for the Raft simulator (the `membership` fault kind, issue 23).

Owns: MembershipDriver -- operations an operator runs on a Swarm manager group, each a short
sequence of one-server changes proposed at the current leader and retried until committed:

  grow           a fresh node under a new id joins as a learner, is promoted once caught up
  shrink         a voter (not the leader) is removed; it keeps running (not told) for up to 2 s,
                 then is stopped for good (a removed server must not disrupt: thesis §4.2.3)
  replace        a voter is removed, stopped and wiped, and a fresh node under a new id is added
                 and promoted (Swarm: `docker node rm`, then a new manager joins)
  remove_leader  the leader removes itself; it steps down once the removal commits (§4.2.2)
  demote_promote a voter is demoted to learner, then promoted again
  grow_two       two fresh learners, then both promoted at once (the second proposal right after the
                 first, refused by a correct leader while the first is uncommitted) while the other
                 voters are cut off from the leader and the learners for 0.5-2.5 s
  partitioned    a random partition first, then one of the above while it lasts

Up to two operations run at once and each step is proposed as soon as the previous one committed,
so a leader is regularly asked for a second change while one is uncommitted, and (on_new_leader)
right after an election, before it committed an entry of its term: the correct core refuses both
(ConfChangeError) and the driver retries. Bounds: at most MAX_VOTERS voters, at least MIN_VOTERS
when shrinking; an operation that has not finished within OP_TIMEOUT_MS is abandoned.

Draws come from the driver's own Random (seeded from the run's seed), so enabling membership does
not change the draws of any other fault. Must not import asyncio, socket, time, module-level random
or `chaos`.
"""
from __future__ import annotations

import random

from swarmnode.raft import LEADER, Busy, NotLeader
from swarmnode.raft.membership import ConfChangeError
from swarmnode.sim.net import random_partition

OPS = ("grow", "shrink", "replace", "remove_leader", "demote_promote", "grow_two", "partitioned")
MAX_VOTERS = 7
MIN_VOTERS = 3
MAX_OPS = 2
POLL_MS = 40.0
OP_TIMEOUT_MS = 6_000.0
RETIRE_DELAY_MS_MAX = 2_000.0


class _Op:
    __slots__ = ("kind", "steps", "pending", "t0", "retire", "wipe", "together")

    def __init__(self, kind, steps, now, retire=None, wipe=False, together=False):
        self.together = together      # the last two steps are proposed at once, behind a split
        self.kind = kind
        self.steps = list(steps)      # [(action, node)] still to commit, first one next
        self.pending = None           # (leader, index, term) of the proposed first step
        self.t0 = now
        self.retire = retire          # node stopped for good once its removal committed
        self.wipe = wipe


class MembershipDriver:
    def __init__(self, sim):
        self.sim = sim
        self.rng = random.Random(sim.p.seed * 1_000_003 + 23)
        self.ops: list = []
        self.next_id = sim.n + 1
        self.stats = {"ops": 0, "committed_changes": 0, "refused": 0, "abandoned": 0, "retired": 0,
                      "added": 0}
        self.kinds: dict = {}
        self.poll_token = None        # the one poll event that counts (a newer one replaces it)

    # ---- what the cluster looks like now ------------------------------------------------------
    def leader(self):
        """The running leader of the highest term (or None)."""
        sim = self.sim
        best = None
        for i in sim.leaders():
            n = sim.nodes[i]
            if best is None or n.term > sim.nodes[best].term:
                best = i
        return best

    def start(self) -> None:
        """A `membership` fault fired: start one operation (if fewer than MAX_OPS run)."""
        sim, rng = self.sim, self.rng
        if len(self.ops) >= MAX_OPS:
            return
        ld = self.leader()
        if ld is None:
            return
        conf = sim.nodes[ld].membership
        if conf is None:
            return
        kind = rng.choice(OPS)
        if kind == "partitioned":
            kind = rng.choice(OPS[:-1])
            _shape, part = random_partition(rng, [i for i in sim.ids if i not in sim.retired])
            sim.net.set_partition(part)
            sim.stats["partitions"] += 1
            token = object()
            sim.fault_state["partition"] = token
            sim.sched.after(rng.uniform(300, 3000), "unpartition", token)
            sim.paths.hit("membership_partitioned")
        busy = {n for op in self.ops for _a, n in op.steps} | {op.retire for op in self.ops}
        voters = [v for v in conf.voters if v not in busy]
        others = [v for v in voters if v != ld]
        now = sim.sched.now_ms
        op = None
        if kind == "grow" and len(conf.voters) < MAX_VOTERS:
            x = self._new_node()
            op = _Op(kind, [("add_learner", x), ("promote", x)], now)
        elif kind == "shrink" and len(conf.voters) > MIN_VOTERS and others:
            v = rng.choice(others)
            op = _Op(kind, [("remove", v)], now, retire=v)
        elif kind == "replace" and voters:
            v = rng.choice(voters)
            x = self._new_node()
            op = _Op(kind, [("remove", v), ("add_learner", x), ("promote", x)], now, retire=v, wipe=True)
        elif kind == "remove_leader" and len(conf.voters) > MIN_VOTERS and ld not in busy:
            op = _Op(kind, [("remove", ld)], now, retire=ld)
        elif kind == "grow_two" and len(conf.voters) < MAX_VOTERS - 1:
            x, y = self._new_node(), self._new_node()
            op = _Op(kind, [("add_learner", x), ("add_learner", y), ("promote", x), ("promote", y)], now,
                     together=True)
        elif kind == "demote_promote" and others and len(conf.voters) > MIN_VOTERS - 1:
            v = rng.choice(others)
            op = _Op(kind, [("demote", v), ("promote", v)], now)
        if op is None:
            return
        self.ops.append(op)
        self.stats["ops"] += 1
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        sim.stats["faults"].append([round(now), "membership:" + kind] + [f"{a} {n}" for a, n in op.steps])
        self._poll_soon(0)

    def on_new_leader(self, i) -> None:
        """A node just won an election: half the time, ask it for the next change at once (before
        it can have committed its no-op), starting an operation if none runs."""
        if self.sim.healed or self.rng.random() < 0.5:
            return
        if not self.ops:
            self.start()
        self._poll_soon(0, force=True)

    def _new_node(self) -> str:
        x = f"m{self.next_id}"
        self.next_id += 1
        self.sim.add_node(x)
        self.stats["added"] += 1
        return x

    def _poll_soon(self, delay=POLL_MS, force=False) -> None:
        if self.poll_token is None or force:
            self.poll_token = token = object()
            self.sim.sched.after(delay, "member", token)

    # ---- the poll loop --------------------------------------------------------------------------
    def poll(self, token) -> None:
        if token is not self.poll_token:
            return
        self.poll_token = None
        sim = self.sim
        if sim.healed:
            self.ops = []
            return
        for op in list(self.ops):
            if sim.sched.now_ms - op.t0 > OP_TIMEOUT_MS:
                self.ops.remove(op)
                self.stats["abandoned"] += 1
                continue
            self._advance(op)
        if self.ops:
            self._poll_soon()

    def _committed(self, pending) -> bool | None:
        """True once the proposed entry is committed (some running node holds it, with its term,
        at or below its commit index); False when it is lost (the proposing leader's term is over
        and the entry is gone from it); None while undecided."""
        sim = self.sim
        ld, index, term = pending
        for n in sim.nodes.values():
            if n is not None and n.commit_index >= index and n.log.term(index) == term:
                return True
        n = sim.nodes.get(ld)
        if n is not None and n.role == LEADER and n.term == term:
            return None
        return False    # its leader is gone: the next proposal finds out whether it took effect

    def _advance(self, op) -> None:
        sim = self.sim
        if op.pending is not None:
            done = self._committed(op.pending)
            if done is None:
                return
            op.pending = None
            if done:
                self.stats["committed_changes"] += 1
                action, node = op.steps.pop(0)
                sim.disturbed_ms = sim.sched.now_ms
                if action == "remove" and node == op.retire:
                    self._retire_later(op)
            if not op.steps:
                self.ops.remove(op)
                return
        ld = self.leader()
        if ld is None:
            return
        action, node = op.steps[0]
        lead = sim.nodes[ld]
        conf = lead.membership
        if conf is not None and self._already(conf, action, node):
            if lead.log.last_conf_index > lead.commit_index:
                return                     # in force but not committed yet: wait
            op.steps.pop(0)                # an earlier proposal took effect and committed
            if action == "remove" and node == op.retire:
                self._retire_later(op)
            if not op.steps:
                self.ops.remove(op)
            return
        sim._catch_up(ld)
        lead = sim.nodes.get(ld)
        if lead is None or lead.role != LEADER:
            return
        sim._unsettle(ld)
        try:
            index = lead.propose_conf_change(action, node)
        except (ConfChangeError, NotLeader, Busy):
            self.stats["refused"] += 1
            return
        except Exception:
            sim._core_exception(ld)
            return
        op.pending = (ld, index, lead.term)
        sim.paths.hit("conf_change_" + action)
        if op.together and len(op.steps) == 2:
            self._split_and_second(op, ld, lead)
        sim._process(ld)
        sim._schedule_wake(ld)

    def _split_and_second(self, op, ld, lead) -> None:
        """grow_two: cut the other voters off from the leader and the two new nodes, and propose
        the second promotion at once (a correct leader refuses it while the first is uncommitted;
        the step is retried and, if it was appended anyway, found in force when the first commits)."""
        sim = self.sim
        side = {ld} | {n for _a, n in op.steps}
        rest = [j for j in sim.ids if j not in side and j not in sim.retired]
        deaf = {j: side for j in rest}
        deaf.update({j: set(rest) for j in side})
        sim.net.set_partition(deaf)
        sim.stats["partitions"] += 1
        token = object()
        sim.fault_state["partition"] = token
        sim.sched.after(self.rng.uniform(500, 2500), "unpartition", token)
        sim.paths.hit("membership_partitioned")
        sim._unsettle(ld)
        try:
            lead.propose_conf_change(*op.steps[1])
        except (ConfChangeError, NotLeader, Busy):
            self.stats["refused"] += 1
        except Exception:
            sim._core_exception(ld)

    @staticmethod
    def _already(conf, action, node) -> bool:
        if action == "add_learner":
            return node in conf.learners or node in conf.voters
        if action == "promote":
            return node in conf.voters
        if action == "demote":
            return node in conf.learners
        return node not in conf.members     # remove

    def _retire_later(self, op) -> None:
        sim = self.sim
        v = op.retire
        if op.wipe:
            sim.retire(v, wipe=True)
            self.stats["retired"] += 1
            return
        sim.removed_running.add(v)
        sim.sched.after(self.rng.uniform(0, RETIRE_DELAY_MS_MAX), "retire", v)
        self.stats["retired"] += 1

