"""A hand-driven Raft cluster for paper-section tests: no randomness in the network, explicit
delivery, drops and crashes. Imports only swarmnode.raft (pure)."""
from __future__ import annotations

import random

from swarmnode.raft import LEADER, MemoryStorage, RaftConfig, RaftNode, Store

CFG = RaftConfig(election_timeout_min_ticks=10, election_timeout_max_ticks=20, heartbeat_ticks=2)


class Cluster:
    def __init__(self, n=3, config=CFG, seed=0, configs=None):
        self.ids = [f"m{i + 1}" for i in range(n)]
        self.config = config
        self.configs = configs or {}
        self.seed = seed
        self.storage = {i: MemoryStorage() for i in self.ids}
        self.nodes = {}
        self.inflight = []          # messages sent and not yet delivered
        self.readies = {i: [] for i in self.ids}
        self.events = {i: [] for i in self.ids}
        self.results = {i: [] for i in self.ids}
        self.read_states = {i: [] for i in self.ids}
        self.cut = set()            # (src, dst) pairs that drop
        self.timeline = []          # (node, event) in the order the events were produced
        for k, i in enumerate(self.ids):
            self.start(i, k)

    def start(self, i, salt=0):
        self.nodes[i] = RaftNode(i, self.ids, self.storage[i], self.configs.get(i, self.config),
                                 random.Random(self.seed * 100 + salt + len(self.events[i])), Store())
        self.pump(i)

    def crash(self, i):
        self.storage[i].crash()
        self.nodes[i] = None
        self.inflight = [m for m in self.inflight if m.dst != i]

    def pump(self, i):
        node = self.nodes[i]
        while (rd := node.ready()) is not None:
            st = self.storage[i]
            st.persist(rd.hard_state, rd.entries, rd.snapshot)
            st.sync()
            self.readies[i].append(rd)
            self.events[i].extend(rd.events)
            self.timeline.extend((i, e) for e in rd.events)
            self.results[i].extend(rd.results)
            self.read_states[i].extend(rd.read_states)
            for m in rd.messages:
                if (m.src, m.dst) not in self.cut:
                    self.inflight.append(m)
            node.advance(rd)

    def deliver(self, pred=lambda m: True, max_rounds=1000):
        """Deliver in-flight messages matching pred (and everything they cause) until quiet."""
        for _ in range(max_rounds):
            batch = [m for m in self.inflight if pred(m)]
            if not batch:
                return
            self.inflight = [m for m in self.inflight if not pred(m)]
            for m in batch:
                node = self.nodes.get(m.dst)
                if node is not None and (m.src, m.dst) not in self.cut:
                    node.step(m)
                    self.pump(m.dst)
        raise AssertionError("deliver did not quiesce")

    def deliver_until(self, stop, max_messages=10_000):
        """Deliver in-flight messages one at a time (FIFO) until stop(message) is true for one."""
        for _ in range(max_messages):
            if not self.inflight:
                return False
            m = self.inflight.pop(0)
            node = self.nodes.get(m.dst)
            if node is not None and (m.src, m.dst) not in self.cut:
                node.step(m)
                self.pump(m.dst)
                if stop(m):
                    return True
        raise AssertionError("deliver_until: message bound hit")

    def tick(self, n=1, only=None):
        for _ in range(n):
            for i in (only or self.ids):
                if self.nodes.get(i) is not None:
                    self.nodes[i].tick()
                    self.pump(i)
            self.deliver()

    def isolate(self, i):
        for j in self.ids:
            if j != i:
                self.cut.add((i, j))
                self.cut.add((j, i))

    def heal(self):
        self.cut.clear()

    def leaders(self):
        return [i for i in self.ids if self.nodes.get(i) is not None and self.nodes[i].role == LEADER]

    def elect(self, max_ticks=200):
        for _ in range(max_ticks):
            ls = self.leaders()
            if len(ls) == 1 and all(self.nodes[i] is None or self.nodes[i].leader_id == ls[0]
                                    for i in self.ids if (i, ls[0]) not in self.cut):
                return ls[0]
            self.tick()
        raise AssertionError(f"no leader within {max_ticks} ticks (seed {self.seed})")

    def campaign(self, i, max_ticks=200):
        """Let node i time out first (others only tick when i's election is under way)."""
        node = self.nodes[i]
        for _ in range(max_ticks):
            node.tick()
            self.pump(i)
            self.deliver()
            if node.role == LEADER:
                return
        raise AssertionError(f"{i} did not win within {max_ticks} ticks")
