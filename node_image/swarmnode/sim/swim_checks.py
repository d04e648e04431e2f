"""Consequence checks for the SWIM simulator, judged from what the nodes' views say against what
the simulator knows is true (who runs, who can reach whom), whatever the core's bug is.

Owns: SwimMonitor (attached to a SwimSim) and run_checked(seed, ...) -- a seeded chaos run
(partitions, crashes and restarts, pauses, lossy links, graceful leaves and rejoins, then a final
heal) that ends in a verdict.
Must not import asyncio, socket, time, module-level random or `chaos`.

Checked (kind names as reported):
  dead-while-reachable  an observer keeps a member that is running, unpaused and reachable both
                        ways (dead, left or forgotten) for longer than `dead_bound_ms`
  resurrected           an observer that had a member dead or left sees it alive or suspect again
                        at an incarnation not above the one it died at: stale state brought it
                        back (SWIM 4.2: only a newer incarnation refutes). A member reaped and
                        forgotten (reap_dead_ms) may come back at any incarnation.
  no-convergence        after the final heal, views do not converge within `converge_bound_ms`
                        (every running member sees exactly the running members alive)
  bound-exceeded        the simulator hit its event bound (a verdict, not an exception)

Per-node contract checks over what one node sent (pure functions, driven by
tests/swim/test_swim_lifecycle.py): `rumours_beyond_view` (a node gossips only about members it
knows, so a reaped member's rumour stops), `leaver_violations` (a leaver neither probes nor
accuses), `rumour_sends_over_limit` (the retransmit limit per state change).
"""
from __future__ import annotations

import random

from swarmnode.sim.swim_sim import SimBoundError, SwimSim
from swarmnode.swim import SwimConfig, SwimNode, pushpull_scaled_ms, suspicion_min_ms

_GONE = ("dead", "left")


def converge_bound_ms(cfg: SwimConfig, n: int) -> int:
    """Heal -> every view agrees: three push-pull rounds (anti-entropy reaches everyone), plus
    detection (a few probe periods, the longest suspicion) and 20 gossip rounds of spreading."""
    lo = suspicion_min_ms(n, cfg.probe_interval_ms, cfg.suspicion_mult)
    detect = 4 * cfg.probe_interval_ms + lo * cfg.suspicion_max_mult + 20 * cfg.gossip_interval_ms
    return 3 * pushpull_scaled_ms(cfg.pushpull_interval_ms, n) + max(cfg.reconnect_interval_ms, 0) + detect


class SwimMonitor:
    """Listens to every membership event of a SwimSim; call check() periodically (run() does)."""

    def __init__(self, sim: SwimSim, dead_bound_ms: int):
        self.sim = sim
        self.dead_bound_ms = dead_bound_ms
        self.violations: list = []
        self.view: dict = {}             # (observer, member) -> (state, incarnation, since_ms)
        self.node_obj: dict = {}         # observer -> id() of the process whose view we hold
        self.reach_since: dict = {}      # (observer, member) -> ms since which both can talk
        self.reported: set = set()
        self.proc_of: dict = {}          # node -> id() of the process check() last saw
        sim.listeners.append(self._on_event)

    def _v(self, kind, node, detail):
        self.violations.append({"kind": kind, "time_ms": self.sim.now, "node": node, "detail": detail})

    def _running(self, i) -> bool:
        s = self.sim
        return not s.crashed.get(i, True) and i not in s.left

    def _on_event(self, t, obs, ev):
        nid = id(self.sim.nodes[obs])
        if self.node_obj.get(obs) != nid:          # a restarted observer starts with a fresh view
            self.node_obj[obs] = nid
            for k in [k for k in self.view if k[0] == obs]:
                del self.view[k]
        m, state, inc = ev["member"], ev["state"], ev["incarnation"]
        key = (obs, m)
        prev = self.view.get(key)
        if prev is not None and prev[0] in _GONE and state in ("alive", "suspect") and m != obs:
            if inc <= prev[1] and t - prev[2] < self.sim.config.reap_dead_ms:
                run = "running" if self._running(m) else "not running"
                self._v("resurrected", obs, f"{m} back to {state}@{inc} after {prev[0]}@{prev[1]} "
                                            f"(not a newer incarnation; {m} is {run})")
        self.view[key] = (state, inc, t)

    def _reachable(self, a, b) -> bool:
        s = self.sim
        return (self._running(a) and self._running(b) and a not in s.paused and b not in s.paused
                and not s.cut.get((a, b)) and not s.cut.get((b, a)))

    def check(self) -> None:
        s, now = self.sim, self.sim.now
        ids = s.ids
        for i in ids:
            # a process replaced without a gap in which check() saw it stopped (a leaver restarted
            # at the final heal): reachability is counted afresh from its new life, both ways
            if self.proc_of.get(i) != id(s.nodes[i]):
                self.proc_of[i] = id(s.nodes[i])
                for k in [k for k in self.reach_since if i in k]:
                    del self.reach_since[k]
        for o in ids:
            for m in ids:
                if o == m:
                    continue
                key = (o, m)
                if not self._reachable(o, m):
                    self.reach_since.pop(key, None)
                    continue
                since = self.reach_since.setdefault(key, now)
                st = s.nodes[o].member_state(m)
                if st is not None and st[0] not in _GONE:
                    continue
                v = self.view.get(key)
                gone_since = v[2] if (v is not None and v[0] in _GONE) else since
                start = max(since, gone_since)
                if now - start > self.dead_bound_ms and (key, start) not in self.reported:
                    self.reported.add((key, start))
                    what = "forgotten" if st is None else f"{st[0]}@{st[1]}"
                    self._v("dead-while-reachable", o, f"{m} is running and reachable for "
                                                       f"{now - since} ms but seen {what} for {now - start} ms")


def run_checked(seed: int, node_factory=SwimNode, n: int = 10, config: SwimConfig | None = None,
                chaos_ms: int = 30_000, check_every_ms: int = 100, max_events: int = 20_000_000) -> dict:
    """A seeded chaos run of n members with every check above; returns the verdict as a dict:
    `violations`, `converged` (None when not reached), `bound_exceeded`, `replay`."""
    cfg = config or SwimConfig.local()
    rng = random.Random(f"swim-chaos:{seed}")
    sim = SwimSim(n=n, seed=seed, config=cfg, node_factory=node_factory, loss=rng.choice((0.0, 0.01, 0.05)),
                  delay_ms=(1, rng.choice((5, 20))), max_events=max_events)
    bound = converge_bound_ms(cfg, n)
    mon = SwimMonitor(sim, dead_bound_ms=bound)
    out = {"seed": seed, "n": n, "faults": [], "converged": None, "bound_exceeded": None,
           "replay": f"swarmnode.sim.swim_checks.run_checked({seed}, n={n})"
                     + (f"  # node_factory={node_factory.__name__}" if node_factory is not SwimNode else "")}

    gave_up: dict = {}

    def watch():
        mon.check()
        # as the agent's driver does (agent/node.py tick): when the core gave up joining after
        # join_max_attempts (seeds cut off for longer), start another bounded round
        for i in sim.live():
            nd = sim.nodes[i]
            c = nd.counters["join_gave_up"]
            if not nd.joined and c > gave_up.get(id(nd), 0) and i not in sim.paused:
                gave_up[id(nd)] = c
                sim.local(i, lambda x: x.join())

    def step(ms):
        sim.run_until(lambda: (watch(), False)[1], ms, check_every_ms=check_every_ms)

    try:
        down: dict = {}
        t_end = sim.now + chaos_ms
        step(2000)
        while sim.now < t_end:
            kind = rng.choice(("partition", "crash", "pause", "lossy", "one_way", "leave"))
            ids = sim.ids
            if kind == "partition":
                a = rng.sample(ids, rng.randint(1, n // 2))
                sim.partition(a, [i for i in ids if i not in a])
            elif kind == "one_way":
                sim.cut_link(rng.choice(ids), rng.choice(ids))
            elif kind == "crash":
                v = rng.choice([i for i in ids if not sim.crashed[i]])
                sim.crash(v)
                down[v] = sim.now + rng.randint(500, 6000)
            elif kind == "pause":
                v = rng.choice([i for i in ids if not sim.crashed[i]])
                sim.pause(v)
                down.setdefault("pause:" + v, sim.now + rng.randint(200, 3000))
            elif kind == "leave":
                # graceful leave: driven a while so the rumour spreads, stopped, later a fresh
                # process rejoins through the seeds (the seed itself never leaves)
                cands = [i for i in ids[1:] if i in sim.live() and i not in sim.paused
                         and sim.nodes[i].member_state(i)[0] != "left"]
                if cands:
                    v = rng.choice(cands)
                    sim.leave(v)
                    down["leave:" + v] = sim.now + rng.randint(300, 1500)
            else:
                for _ in range(n):
                    sim.set_link(rng.choice(ids), rng.choice(ids), loss=rng.uniform(0.1, 0.5))
            out["faults"].append([sim.now, kind])
            gap = rng.randint(1000, 5000)
            t_next = sim.now + gap
            while sim.now < t_next:
                due = sorted(k for k, t in down.items() if t <= sim.now)
                for k in due:
                    del down[k]
                    if k.startswith("pause:"):
                        if k[6:] in sim.paused:
                            sim.resume(k[6:])
                    elif k.startswith("leave:"):
                        v = k[6:]
                        if not sim.crashed[v]:
                            sim.stop_left(v)
                        down[v] = sim.now + rng.randint(1000, 8000)
                    elif sim.crashed[k]:
                        sim.restart(k)
                step(min(500, t_next - sim.now))
                if rng.random() < 0.1:
                    sim.heal()
                    sim.links.clear()
        # final heal: every link, every paused or crashed node
        sim.heal()
        sim.links.clear()
        for i in sim.ids:
            if i in sim.paused:
                sim.resume(i)
            if sim.crashed[i] or sim.nodes[i].member_state(i)[0] == "left":
                sim.restart(i)
        t0 = sim.now
        ok = sim.run_until(lambda: (watch(), sim.members_agree())[1], bound, check_every_ms=check_every_ms)
        out["converged"] = (sim.now - t0) if ok else None
        if not ok:
            mon._v("no-convergence", "-", f"views did not converge within {bound} ms of the final heal")
    except SimBoundError as e:
        out["bound_exceeded"] = str(e)
        mon._v("bound-exceeded", "-", str(e))
    out["violations"] = mon.violations[:20]
    out["violation_count"] = len(mon.violations)
    out["virtual_ms"] = sim.now
    return out


# --- per-node contract checks over what one node sent (pure; used by tests/swim/test_swim_lifecycle.py)

def rumours_beyond_view(sender: str, before: dict, after: dict, messages) -> list[str]:
    """Gossip hygiene (SWIM 4.1 piggybacking spreads what the sender holds): every member rumour
    a node sends is about itself or about a member in its view just before or just after the call
    that produced the message, at an incarnation not above the one that view holds. A member the
    node has forgotten (reaped) is no longer gossiped about, so a rumour's lifetime is bounded by
    the sender's memory of the member. `before` / `after` are `members()` dicts. Returns findings."""
    bad = []
    for msg in messages:
        for u in getattr(msg, "updates", ()):
            member = getattr(u, "member", None)
            if member is None or member == sender:
                continue
            known = [v for v in (before.get(member), after.get(member)) if v is not None]
            if not known:
                bad.append(f"{type(msg).__name__} to {msg.dst} carries {u.state} {member}@{u.incarnation}, "
                           f"a member {sender} does not know (forgotten or never seen)")
            elif u.incarnation > max(inc for _, inc in known):
                bad.append(f"{type(msg).__name__} to {msg.dst} carries {member}@{u.incarnation} above "
                           f"{sender}'s view {known}")
    return bad


def leaver_violations(sender: str, messages, events) -> list[str]:
    """After leave() a node announces `left` and no longer takes part in failure detection: it
    sends no probe of its own (Ping, PingReq) and accuses no one (no suspect or dead event about
    another member). Relaying a PingReq for someone else is not probing; callers that want to
    allow it must not send the leaver any PingReq. Returns findings."""
    from swarmnode.swim import Ping, PingReq
    bad = [f"{type(m).__name__} to {m.dst} after leaving" for m in messages if isinstance(m, (Ping, PingReq))]
    bad += [f"{e['state']} {e['member']}@{e['incarnation']} after leaving" for e in events
            if e["member"] != sender and e["state"] in ("suspect", "dead")]
    return bad


def rumour_sends_over_limit(messages, update, limit: int) -> int:
    """How many times more than `limit` (SwimConfig.retransmit_mult * ceil(log10(n + 1))) the
    rumour `update` was sent in `messages`; 0 when within the retransmit limit. Push-pull state
    exchanges are full-state anti-entropy, not rumour retransmissions, and are not counted."""
    from swarmnode.swim import PushPull
    sends = sum(1 for m in messages if not isinstance(m, PushPull) for u in m.updates if u == update)
    return max(0, sends - limit)
