"""The `stale_tail` fault of the Raft simulator (issue 26): builds, on purpose, the log states where
commit and snapshot bugs hide -- a follower holding entries of an older term *beyond* the point
where it agrees with the current leader, at the moment it learns a commit index or installs a
snapshot.

Owns: StaleTail (the fault's phases, driven by the simulator's scheduler as "stale" events).
Must not import asyncio, socket, time, module-level random or `chaos`.

Phases (0. steady: wait until the followers hold the leader's whole log, so that it streams new
entries to them; each then checks that its partition is still the current one and its nodes are up, else the
fault ends quietly; other faults wait while it runs):
  1. deaf      the leader L cannot hear anyone (one-way cut); it is fed k1 writes. Its appends reach
               the followers, their acks never reach L: the followers' logs (the point where they
               will agree with the next leader) grow while L's commit index stays behind.
  2. isolate   L is cut off both ways and fed n writes it can never commit: the stale tail.
  3. elect     the others elect a new leader L2, which is fed m writes (m below or above n: a
               shorter or longer history than the tail) and commits them; with a small
               snapshot_threshold L2 compacts past L's point of agreement.
  4. heal      when L2's commit passed L's point of agreement (or a bound ran out), the partition
               heals just after L2's heartbeat tick and L2 starts a ReadIndex (its heartbeat reaches
               L at once). L answers with its own commit index; the append L2 sends at once on
               that answer is lost (L2->L drops until just before L2's next tick), so the tick's
               retransmission starts from L's commit index: appends whose entries end before the
               stale tail while their commit index is far ahead of them, or an InstallSnapshot
               whose last entry is inside, before or beyond the tail.
"""
from __future__ import annotations

import dataclasses

from swarmnode.raft import LEADER, Busy, NotLeader
from swarmnode.sim.net import isolate, one_way

ELECT_WAIT_MS = 3_000      # how long phase 3 waits for a new leader
COMMIT_WAIT_MS = 2_000     # how long phase 4 waits for the new leader's commit
STEADY_WAIT_MS = 1_000     # how long phase 0 waits for the followers to hold the leader's log
DEAF_MS = 100              # the longest the leader stays deaf (below its CheckQuorum timeout)
POLL_MS = 25


class StaleTail:
    """One stale-tail fault at a time; `active` is True while it runs."""

    def __init__(self, sim):
        self.sim = sim
        self.st = None

    @property
    def active(self) -> bool:
        return self.st is not None

    def start(self, rng, leaders) -> bool:
        sim = self.sim
        if self.st is not None or not leaders:
            return False
        old = rng.choice(leaders)
        # the new leader's history: often only a few writes past the old leader's point of agreement
        # (with a small snapshot_threshold its snapshot then ends before that point), else many
        new_writes = rng.randint(1, 6) if rng.random() < 0.4 else rng.randint(8, 120)
        self.st = {"old": old, "token": None, "tail": rng.randint(8, 120), "new_writes": new_writes,
                   "deaf_writes": rng.randint(4, 200), "t0": sim.sched.now_ms, "new": None, "target": 0}
        sim.sched.after(0, "stale", "steady")
        sim.stats["faults"].append([round(sim.sched.now_ms), "stale_tail", old, self.st["deaf_writes"],
                                    self.st["tail"], new_writes])
        return True

    def _steady(self, st) -> None:
        """Wait (bounded) until every follower holds the leader's whole log in its term: the leader
        then streams new entries to them (a follower it is still probing gets one message a tick)."""
        sim = self.sim
        lead = sim.nodes.get(st["old"])
        if lead is None or lead.role != LEADER:
            self.st = None
            return
        if any(n is None or n.term != lead.term or n.last_log_index != lead.last_log_index
               for j, n in sim.nodes.items() if j != st["old"]):
            if sim.sched.now_ms - st["t0"] > STEADY_WAIT_MS:
                self.st = None
            else:
                sim.sched.after(POLL_MS, "stale", "steady")
            return
        others = [j for j in sim.ids if j != st["old"]]
        st["token"] = token = object()
        sim.fault_state["partition"] = token
        sim.net.set_partition(one_way([st["old"]], others))
        sim.stats["partitions"] += 1
        # clean FIFO links from the leader: one lost or overtaken append would make the followers
        # reject every later one (and the deaf leader never hears why)
        fifo = dataclasses.replace(sim.link, delay_ms_min=1.0, delay_ms_max=1.0, loss=0.0, dup=0.0, reorder=0.0)
        for j in others:
            sim.net.set_link(st["old"], j, fifo)
        sim.fault_state["lossy"] = st["token"]
        st["t0"] = sim.sched.now_ms
        st["sent"] = self.feed(st["old"], st["deaf_writes"])
        sim.sched.after(POLL_MS / 5, "stale", "deaf")

    def step(self, phase: str) -> None:
        st, sim = self.st, self.sim
        if st is None:
            return
        if sim.healed or (st["token"] is not None and sim.fault_state.get("partition") is not st["token"]):
            self.st = None     # another fault or the final heal took over
            return
        getattr(self, "_" + phase)(st)

    def _deaf(self, st) -> None:
        """Wait (bounded: the deaf leader steps down on CheckQuorum) until most followers hold the
        writes the deaf leader sent."""
        sim = self.sim
        held = sum(1 for j, n in sim.nodes.items() if n is not None and j != st["old"]
                   and n.last_log_index >= st["sent"])
        if held >= len(sim.ids) // 2 or sim.sched.now_ms - st["t0"] > DEAF_MS:
            return self._isolate(st)
        sim.sched.after(POLL_MS / 5, "stale", "deaf")

    def _isolate(self, st) -> None:
        sim = self.sim
        if sim.fault_state.get("lossy") is st["token"]:
            sim.net.links.clear()
        sim.net.set_partition(isolate(st["old"], sim.ids))
        self.feed(st["old"], st["tail"])
        sim.sched.after(POLL_MS, "stale", "elect")

    def _elect(self, st) -> None:
        sim = self.sim
        new = [j for j in sim.leaders() if j != st["old"]]
        if not new:
            if sim.sched.now_ms - st["t0"] > ELECT_WAIT_MS:
                return self._heal(st)
            sim.sched.after(POLL_MS, "stale", "elect")
            return
        st["new"] = new[0]
        st["target"] = self.feed(new[0], st["new_writes"])
        st["t1"] = sim.sched.now_ms
        sim.sched.after(POLL_MS, "stale", "committed")

    def _committed(self, st) -> None:
        sim = self.sim
        node = sim.nodes.get(st["new"])
        done = node is None or node.role != LEADER or node.commit_index >= st["target"]
        if done or sim.sched.now_ms - st["t1"] > COMMIT_WAIT_MS:
            # heal just after the new leader's next heartbeat tick: its probe of the old leader
            # (sent into the partition) is lost, and the ReadIndex heartbeat and its answer have a
            # whole heartbeat interval to arrive before the next probe
            t = sim.wake_at.get(st["new"]) if node is not None else None
            if t is None or t <= sim.sched.now_ms:
                return self._heal(st)
            sim.sched.at(t + 0.001, "stale", "heal")
            return
        sim.sched.after(POLL_MS, "stale", "committed")

    def _heal(self, st) -> None:
        sim = self.sim
        self.st = None
        sim.net.heal()
        sim.disturbed_ms = sim.sched.now_ms
        new = st["new"]
        node = sim.nodes.get(new) if new else None
        if node is None or node.role != LEADER:
            return
        sim._catch_up(new)
        node = sim.nodes.get(new)
        if node is None or node.role != LEADER:
            return
        sim._unsettle(new)
        try:
            node.read_index(("stale_tail", round(sim.sched.now_ms, 3)))   # no read_floor: not judged
        except (NotLeader, Busy):
            return
        except Exception:
            sim._core_exception(new)
            return
        sim._process(new)
        sim._schedule_wake(new)
        self._drop_next_append(new, st["old"])

    def _drop_next_append(self, new: str, old: str) -> None:
        """Until just before the new leader's next heartbeat tick, its link to the old leader drops
        everything: the append it sends at once when the ReadIndex answer (the old leader's commit
        index) arrives is lost, so the tick's retransmission starts from that commit index."""
        sim = self.sim
        t = sim.wake_at.get(new)
        if t is None or t - 0.001 <= sim.sched.now_ms:
            return
        sim.net.set_link(new, old, dataclasses.replace(sim.link, loss=1.0))
        token = object()
        sim.fault_state["lossy"] = token
        sim.sched.at(t - 0.001, "unlossy", token)

    def feed(self, i: str, count: int) -> int:
        """Propose up to `count` writes at node i (while it leads); the last index proposed, or 0."""
        sim = self.sim
        if sim.nodes.get(i) is None:
            return 0
        sim._catch_up(i)
        node = sim.nodes.get(i)
        if node is None:
            return 0
        last = 0
        sim._unsettle(i)
        for k in range(count):
            try:
                last = node.propose({"op": "kv.put", "key": f"s{k % 3}", "value": k})
            except (NotLeader, Busy):
                break
            except Exception:
                sim._core_exception(i)
                return last
        sim._process(i)
        sim._schedule_wake(i)
        return last
