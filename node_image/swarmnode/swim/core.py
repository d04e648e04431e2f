"""The SWIM/Lifeguard membership core: a pure state machine (see the package docstring for the API).

Owns: `SwimNode` (probing, indirect probing, suspicion and refutation, Lifeguard local health and
shrinking suspicion timeouts, piggybacked dissemination, push-pull anti-entropy, join, leave,
reaping) and the eventually consistent endpoint table it carries; `Output`.
Must not import: asyncio, socket, time, module-level random, `chaos`. Time arrives as `now_ms`
arguments, randomness from the injected `random.Random`.

Paper references: SWIM = Das, Gupta, Motivala 2002; Lifeguard = Dadgar, Phillips, Currey 2018.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .config import (SwimConfig, health_scaled_ms, pushpull_scaled_ms, retransmit_limit,
                     suspicion_k, suspicion_min_ms, suspicion_timeout_ms)
from .messages import (Ack, EndpointUpdate, Gossip, MemberUpdate, Message, Nack, Ping, PingReq,
                       PushPull)

# Planted bugs (test only; swarmnode.plant describes them). Off unless the driver passes them.
SWIM_BUGS = ("gossip_no_refute",)

ALIVE, SUSPECT, DEAD, LEFT = "alive", "suspect", "dead", "left"
_GONE = (DEAD, LEFT)


@dataclass(frozen=True)
class Output:
    """Effects produced since the last `poll()`.

    Ordering contract (one driver loop per environment applies it):
      1. append every event of `events` to the journal, in order, and flush it;
      2. then send `messages`, in list order (messages to the same destination must leave in
         this order on that destination's connection).
    An event may explain a message in the same Output (a `member ... dead` event precedes the dead
    rumour), so a message must never leave before the events of its Output are durable.
    Events are journal records without the stamping fields: `{"type": "member", "member", "state",
    "incarnation"}` (docs/contracts.md section 4); the driver adds node, seq, ts, boot.
    """

    messages: tuple = ()
    events: tuple = ()


@dataclass
class Member:
    id: str
    state: str
    incarnation: int
    since_ms: int


@dataclass
class _Suspicion:
    incarnation: int
    start_ms: int
    min_ms: int
    max_ms: int
    k: int
    accusers: dict          # origin -> None (insertion-ordered; the first is the original accuser)
    deadline_ms: int


@dataclass
class _Probe:
    target: str
    seq: int
    start_ms: int
    direct_deadline_ms: int
    end_ms: int
    indirect_sent: bool = False
    nacks_expected: int = 0
    nacks: int = 0


@dataclass
class _Relay:
    requester: str
    seq: int
    target: str
    deadline_ms: int


class _BroadcastQueue:
    """Rumours waiting for retransmission, bucketed by times sent (least-sent first, oldest
    first within a bucket), at most one per key: a newer rumour about the same member or
    endpoint replaces the older one (memberlist's invalidation). O(taken) per message."""

    def __init__(self) -> None:
        self._buckets: list[dict] = [{}]       # transmits -> {key: update}, insertion-ordered
        self._where: dict = {}                 # key -> transmits

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, key) -> bool:
        return key in self._where

    def put(self, key, update) -> None:
        self.pop(key)
        self._buckets[0][key] = update
        self._where[key] = 0

    def pop(self, key) -> None:
        t = self._where.pop(key, None)
        if t is not None:
            del self._buckets[t][key]

    def drop_most_sent(self) -> None:
        for bucket in reversed(self._buckets):
            if bucket:
                self.pop(next(iter(bucket)))
                return

    def take(self, cap: int, limit: int) -> tuple:
        """Up to `cap` rumours, each counted as sent once more; dropped at `limit` sends."""
        picked = []
        for t, bucket in enumerate(self._buckets):
            for key in bucket:
                picked.append((t, key))
                if len(picked) == cap:
                    break
            if len(picked) == cap:
                break
        out = []
        buckets = self._buckets
        for t, key in picked:
            update = buckets[t].pop(key)
            out.append(update)
            if t + 1 >= limit:
                del self._where[key]
                continue
            if t + 1 == len(buckets):
                buckets.append({})
            buckets[t + 1][key] = update
            self._where[key] = t + 1
        return tuple(out)


class SwimNode:
    """One member of the gossip group. See the package docstring for how a driver uses it."""

    def __init__(self, node_id: str, config: SwimConfig, rng: random.Random,
                 seeds: list[str] | tuple = (), now_ms: int = 0, bugs: frozenset = frozenset()):
        config.validate()
        unknown = sorted(set(bugs) - set(SWIM_BUGS))
        if unknown:
            raise ValueError(f"unknown SWIM bugs {unknown}; known: {list(SWIM_BUGS)}")
        self._bugs = frozenset(bugs)   # planted bugs, test only (swarmnode.plant); empty normally
        if not isinstance(rng, random.Random):
            raise TypeError("rng must be an injected random.Random")
        MemberUpdate(ALIVE, node_id, 0, node_id)        # validates the id
        self.id = node_id
        self.config = config
        self._rng = rng
        self._seeds = list(dict.fromkeys(s for s in seeds if s != node_id))
        self._now = now_ms
        self._incarnation = 0
        self._members: dict[str, Member] = {}
        self._live: list[str] = []            # alive or suspect, not self; swap-removal list
        self._live_pos: dict[str, int] = {}
        self._probe_order: list[str] = []
        self._probe_idx = 0
        self._probe: _Probe | None = None
        self._seq = 0
        self._relays: dict[int, _Relay] = {}
        self._suspicions: dict[str, _Suspicion] = {}
        self._queue = _BroadcastQueue()
        self._endpoints: dict[str, EndpointUpdate] = {}
        self._tomb_since: dict[str, int] = {}
        self._lamport = 0
        self._health = 0
        self._leaving = False
        self._joined = not self._seeds
        self._join_attempts = 0
        self._next_join_ms: int | None = None
        c = config
        self._next_probe_ms = now_ms + rng.randrange(c.probe_interval_ms)
        self._next_gossip_ms = now_ms + rng.randrange(c.gossip_interval_ms)
        self._next_pushpull_ms = now_ms + (rng.randrange(c.pushpull_interval_ms)
                                           if c.pushpull_interval_ms else 0)
        self._next_reconnect_ms = now_ms + c.reconnect_interval_ms
        self._reap_every_ms = max(1000, min(x for x in (c.reap_dead_ms, c.tombstone_ttl_ms, 10**9)
                                            if x) // 8)
        self._next_reap_ms = now_ms + self._reap_every_ms
        self._msgs: list[Message] = []
        self._events: list[dict] = []
        self.counters = {"misaddressed": 0, "relays_refused": 0, "queue_dropped": 0,
                         "join_gave_up": 0, "refutations": 0, "suspicions_started": 0,
                         "probes_failed": 0,
                         "declared_dead": 0}
        self._members[node_id] = Member(node_id, ALIVE, 0, now_ms)
        self._event(node_id, ALIVE, 0)

    # --- local requests -----------------------------------------------------------------------

    def join(self) -> None:
        """Contact the seeds with a push-pull (join) until one answers; retried every
        join_retry_ms, at most join_max_attempts times. Broadcasts our alive rumour."""
        self._enqueue_member(MemberUpdate(ALIVE, self.id, self._incarnation, self.id))
        if not self._seeds:
            self._joined = True
            return
        self._joined = False
        self._join_attempts = 0
        self._next_join_ms = self._now

    def leave(self) -> None:
        """Graceful leave: announce `left` at our incarnation and stop probing. Keep driving the
        node (tick/step/poll) for a few gossip intervals so the rumour spreads, then stop it."""
        if self._leaving:
            return
        self._leaving = True
        self._probe = None
        me = self._members[self.id]
        self._transition(me, LEFT, self._incarnation)
        self._enqueue_member(MemberUpdate(LEFT, self.id, self._incarnation, self.id))

    def set_endpoint(self, key: str, value) -> EndpointUpdate:
        """Publish `key` -> `value` (a JSON scalar; encode structures as a JSON string).
        Keys should be unique per publisher (e.g. prefixed with the node id)."""
        cur = self._endpoints.get(key)
        version = max(self._lamport, cur.version if cur else 0) + 1
        e = EndpointUpdate(key, self.id, version, value, False)
        self._lamport = version
        self._store_endpoint(e)
        return e

    def delete_endpoint(self, key: str) -> bool:
        """Delete `key` with a tombstone; False if it is absent or already deleted."""
        cur = self._endpoints.get(key)
        if cur is None or cur.deleted:
            return False
        version = max(self._lamport, cur.version) + 1
        self._lamport = version
        self._store_endpoint(EndpointUpdate(key, self.id, version, None, True))
        return True

    def assume_members(self, ids) -> None:
        """Static bootstrap for simulators: treat `ids` as alive at incarnation 0, no messages."""
        for i in ids:
            if i != self.id and i not in self._members:
                self._add_member(i, ALIVE, 0)
        pp = self.config.pushpull_interval_ms
        if pp:
            self._next_pushpull_ms = self._now + self._rng.randrange(
                pushpull_scaled_ms(pp, len(self._live) + 1))

    # --- views ----------------------------------------------------------------------------------

    def members(self) -> dict[str, tuple[str, int]]:
        """{member id: (state, incarnation)} for every member known (self included)."""
        return {m.id: (m.state, m.incarnation) for m in self._members.values()}

    def member_state(self, member_id: str) -> tuple[str, int] | None:
        """(state, incarnation) of one member, or None if unknown or reaped. O(1)."""
        m = self._members.get(member_id)
        return None if m is None else (m.state, m.incarnation)

    def has_endpoint(self, key: str) -> bool:
        """Whether `key` is in the live table. O(1)."""
        e = self._endpoints.get(key)
        return e is not None and not e.deleted

    def endpoints(self) -> dict[str, EndpointUpdate]:
        """The live endpoint table {key: EndpointUpdate(key, owner, version, value)}; no tombstones."""
        return {k: e for k, e in self._endpoints.items() if not e.deleted}

    def endpoint_entries(self) -> dict[str, EndpointUpdate]:
        """The table including tombstones (for anti-entropy checks)."""
        return dict(self._endpoints)

    @property
    def incarnation(self) -> int:
        return self._incarnation

    @property
    def health(self) -> int:
        """Lifeguard local health score, 0 (healthy) .. awareness_max - 1."""
        return self._health

    @property
    def joined(self) -> bool:
        return self._joined

    @property
    def now_ms(self) -> int:
        return self._now

    def queue_len(self) -> int:
        return len(self._queue)

    # --- inputs ---------------------------------------------------------------------------------

    def poll(self) -> Output:
        """Take the effects produced so far (see `Output` for the ordering contract)."""
        out = Output(tuple(self._msgs), tuple(self._events))
        self._msgs = []
        self._events = []
        return out

    def next_deadline_ms(self) -> int:
        """Earliest time at which `tick` has work; a driver may sleep until then (or tick often)."""
        c = self.config
        ds = [self._next_reap_ms]
        if self._probe is not None:
            ds.append(self._probe.end_ms)
            if not self._probe.indirect_sent:
                ds.append(self._probe.direct_deadline_ms)
        elif not self._leaving:
            ds.append(self._next_probe_ms)
        if self._queue and self._live:   # rumours, and someone to tell them to
            ds.append(self._next_gossip_ms)
        if c.pushpull_interval_ms and not self._leaving:
            ds.append(self._next_pushpull_ms)
        if c.reconnect_interval_ms and not self._leaving:
            ds.append(self._next_reconnect_ms)
        if self._next_join_ms is not None:
            ds.append(self._next_join_ms)
        ds.extend(r.deadline_ms for r in self._relays.values())
        ds.extend(s.deadline_ms for s in self._suspicions.values())
        return max(self._now, min(ds))

    def tick(self, now_ms: int) -> None:
        """Advance the clock to `now_ms` (monotonic; never goes back) and fire due timers."""
        if now_ms > self._now:
            self._now = now_ms
        now, c = self._now, self.config
        if self._next_join_ms is not None and now >= self._next_join_ms:
            self._send_join()
        p = self._probe
        if p is not None and not p.indirect_sent and now >= p.direct_deadline_ms:
            self._send_indirect(p)
        if p is not None and now >= p.end_ms:
            self._probe_failed(p)
        if self._probe is None and not self._leaving and now >= self._next_probe_ms:
            self._start_probe()
        if self._relays:
            for seq in [s for s, r in self._relays.items() if now >= r.deadline_ms]:
                r = self._relays.pop(seq)
                self._send(Nack(self.id, r.requester, (), r.seq))
        if self._suspicions:
            for mid in [m for m, s in self._suspicions.items() if now >= s.deadline_ms]:
                self._suspicion_expired(mid)
        if now >= self._next_gossip_ms:
            # a fixed-phase ticker (like memberlist's): one gossip round per interval at most, so
            # a rumour advances at most one gossip hop per round
            missed = (now - self._next_gossip_ms) // c.gossip_interval_ms + 1
            self._next_gossip_ms += missed * c.gossip_interval_ms
            if self._queue:
                self._gossip()
        if c.pushpull_interval_ms and not self._leaving and now >= self._next_pushpull_ms:
            n = len(self._live) + 1
            self._next_pushpull_ms = now + pushpull_scaled_ms(c.pushpull_interval_ms, n)
            t = self._random_live(1)
            if t:
                self._send(PushPull(self.id, t[0], self._state_updates(), True, False))
        if c.reconnect_interval_ms and not self._leaving and now >= self._next_reconnect_ms:
            self._next_reconnect_ms = now + c.reconnect_interval_ms
            self._reconnect()
        if now >= self._next_reap_ms:
            self._next_reap_ms = now + self._reap_every_ms
            self._reap()

    def step(self, msg: Message, now_ms: int | None = None) -> None:
        """Handle one message from a peer. `now_ms`, if given, advances the clock first (timers
        fire only in `tick`)."""
        if now_ms is not None and now_ms > self._now:
            self._now = now_ms
        if msg.dst != self.id:
            self.counters["misaddressed"] += 1
            return
        if isinstance(msg, PushPull):
            self._on_push_pull(msg)
            return
        for u in msg.updates:
            self._apply(u)
        fix = self._corrections(msg.updates) if msg.updates else ()
        if isinstance(msg, Ping):
            self._send(Ack(self.id, msg.src, self._verdict_on(msg.src) + fix + self._take_updates(), msg.seq))
            return
        if fix:
            self._send(Gossip(self.id, msg.src, fix))
        if isinstance(msg, Ack):
            self._on_ack(msg)
        elif isinstance(msg, PingReq):
            self._on_ping_req(msg)
        elif isinstance(msg, Nack):
            p = self._probe
            if p is not None and p.seq == msg.seq:
                p.nacks += 1

    def _verdict_on(self, src: str) -> tuple:
        """A member we hold dead or left that probes us is running: our verdict rides on the ack,
        so it refutes (SWIM 4.2), or, if it already has, its newer incarnation comes back to us.
        Without this a member that left and rejoined at the same incarnation through a seed that
        had forgotten it stays invisible (nobody probes, gossips to or reconnects to a left
        member) until its own push-pull happens to reach someone. Only acks carry it, and acks
        are never answered, so two members that hold each other gone cannot loop."""
        m = self._members.get(src)
        if m is None or m.state not in _GONE:
            return ()
        return (MemberUpdate(m.state, src, m.incarnation, src if m.state == LEFT else self.id),)

    def _corrections(self, updates: tuple) -> tuple:
        """Our newer knowledge of members the sender spread stale rumours about (for example a
        suspicion we saw refuted): answered on the ack, or in a Gossip straight back, so the
        sender's suspicion ends early instead of timing out on a rumour it missed. Bounded by
        the sender's own retransmissions of the stale rumour."""
        fix = []
        for u in updates:
            if isinstance(u, MemberUpdate) and u.state != ALIVE:
                m = self._members.get(u.member)
                if m is not None and m.state == ALIVE and m.incarnation > u.incarnation:
                    fix.append(MemberUpdate(ALIVE, m.id, m.incarnation, m.id))
        return tuple(fix[:self.config.max_piggyback])

    # --- probing (SWIM 4.1, Lifeguard IV-A) -------------------------------------------------------

    def _start_probe(self) -> None:
        c = self.config
        interval = health_scaled_ms(c.probe_interval_ms, self._health)
        self._next_probe_ms = self._now + interval
        target = self._next_probe_target()
        if target is None:
            return
        self._seq += 1
        # Lifeguard IV-A scales the probe timeout too, not only the interval: a node that misses
        # acks because it is slow itself waits longer before asking others (indirect probes are
        # k more round trips through a machine that is already behind)
        timeout = min(health_scaled_ms(c.probe_timeout_ms, self._health), interval - 1)
        self._probe = _Probe(target, self._seq, self._now, self._now + timeout, self._now + interval)
        self._send(Ping(self.id, target, self._buddy(target) + self._take_updates(), self._seq))

    def _buddy(self, target: str) -> tuple:
        """Lifeguard's buddy system: a suspect learns of its suspicion from our ping first."""
        m = self._members.get(target)
        if m is not None and m.state == SUSPECT:
            return (MemberUpdate(SUSPECT, target, m.incarnation, self.id),)
        return ()

    def _next_probe_target(self) -> str | None:
        for _ in range(2):
            while self._probe_idx < len(self._probe_order):
                mid = self._probe_order[self._probe_idx]
                self._probe_idx += 1
                m = self._members.get(mid)
                if m is not None and m.state in (ALIVE, SUSPECT) and mid != self.id:
                    return mid
            self._probe_order = list(self._live)
            self._rng.shuffle(self._probe_order)
            self._probe_idx = 0
        return None

    def _send_indirect(self, p: _Probe) -> None:
        p.indirect_sent = True
        # if we ran late (a pause, a slow loop), the relays still get the full indirect window
        window = p.end_ms - p.direct_deadline_ms
        if self._now + window > p.end_ms:
            p.end_ms = self._now + window
            self._next_probe_ms = max(self._next_probe_ms, p.end_ms)
        k = self.config.indirect_checks
        if k <= 0:
            return
        relays = self._random_live(k, exclude=p.target)
        p.nacks_expected = len(relays)
        for r in relays:
            self._send(PingReq(self.id, r, self._take_updates(), p.seq, p.target))

    def _on_ack(self, msg: Ack) -> None:
        p = self._probe
        if p is not None and p.seq == msg.seq:
            self._probe = None
            self._health_delta(-1)
            return
        r = self._relays.pop(msg.seq, None)
        if r is not None:
            self._send(Ack(self.id, r.requester, self._take_updates(), r.seq))

    def _on_ping_req(self, msg: PingReq) -> None:
        if len(self._relays) >= self.config.max_relays:
            self.counters["relays_refused"] += 1
            return
        self._seq += 1
        self._relays[self._seq] = _Relay(msg.src, msg.seq, msg.target,
                                         self._now + self.config.probe_timeout_ms)
        self._send(Ping(self.id, msg.target, self._buddy(msg.target) + self._take_updates(), self._seq))

    def _probe_failed(self, p: _Probe) -> None:
        self._probe = None
        self.counters["probes_failed"] += 1
        if p.nacks_expected > 0:
            self._health_delta(max(0, p.nacks_expected - p.nacks))
        else:
            self._health_delta(1)
        m = self._members.get(p.target)
        if m is not None and m.state in (ALIVE, SUSPECT):
            self._apply(MemberUpdate(SUSPECT, p.target, m.incarnation, self.id))

    def _health_delta(self, d: int) -> None:
        self._health = min(self.config.awareness_max - 1, max(0, self._health + d))

    # --- membership rules (SWIM 4.2, Lifeguard IV-B) -----------------------------------------------

    def _apply(self, u) -> None:
        if isinstance(u, EndpointUpdate):
            self._apply_endpoint(u)
        else:
            self._apply_member(u)

    def _apply_member(self, u: MemberUpdate) -> None:
        if u.member == self.id:
            self._about_self(u)
            return
        m = self._members.get(u.member)
        if u.state == ALIVE:
            if m is None:
                self._add_member(u.member, ALIVE, u.incarnation)
                self._enqueue_member(u)
            elif u.incarnation > m.incarnation:
                self._transition(m, ALIVE, u.incarnation)
                self._enqueue_member(u)
            return
        if m is None or u.incarnation < m.incarnation:
            return          # nothing known to accuse, or an old rumour
        if u.state == SUSPECT:
            if m.state == ALIVE:
                self._start_suspicion(m, u.incarnation, u.origin)
                self._enqueue_member(u)
            elif m.state == SUSPECT:
                if u.incarnation > m.incarnation:
                    self._start_suspicion(m, u.incarnation, u.origin)
                    self._enqueue_member(u)
                elif self._confirm(m.id, u.origin):
                    self._enqueue_member(u)
            return
        state = LEFT if (u.state == LEFT and u.origin == u.member) else DEAD
        if m.state in _GONE and u.incarnation == m.incarnation and \
                not (m.state == DEAD and state == LEFT):
            return
        self._transition(m, state, u.incarnation)
        self._enqueue_member(MemberUpdate(state, u.member, u.incarnation, u.origin))

    def _about_self(self, u: MemberUpdate) -> None:
        if self._leaving:
            return
        if u.state == ALIVE:
            if u.incarnation > self._incarnation:      # a newer life of ours is remembered
                self._refute(u.incarnation, reassert=False)
        elif u.incarnation >= self._incarnation:       # SWIM 4.2: refute by a higher incarnation
            self._refute(u.incarnation, reassert=(u.state != SUSPECT))
        elif ("m", self.id) not in self._queue:
            # a stale accusation: its sender missed our refutation, so send it again (it rides
            # on the very ack or message we answer with)
            self._enqueue_member(MemberUpdate(ALIVE, self.id, self._incarnation, self.id))

    def _refute(self, incarnation: int, reassert: bool) -> None:
        if "gossip_no_refute" in self._bugs:   # planted: accusations about us are never refuted
            return
        self.counters["refutations"] += 1
        self._incarnation = incarnation + 1
        self._transition(self._members[self.id], ALIVE, self._incarnation)
        self._enqueue_member(MemberUpdate(ALIVE, self.id, self._incarnation, self.id))
        self._health_delta(1)        # Lifeguard: being suspected hints at our own slowness
        if reassert:
            self._reassert_endpoints()

    def _start_suspicion(self, m: Member, incarnation: int, origin: str) -> None:
        c = self.config
        n = len(self._live) + 1
        lo = suspicion_min_ms(n, c.probe_interval_ms, c.suspicion_mult)
        hi = lo * c.suspicion_max_mult
        k = suspicion_k(c.suspicion_confirmations_k, n)
        self._transition(m, SUSPECT, incarnation)
        self.counters["suspicions_started"] += 1
        self._suspicions[m.id] = _Suspicion(incarnation, self._now, lo, hi, k, {origin: None},
                                            self._now + suspicion_timeout_ms(0, k, lo, hi))

    def _confirm(self, mid: str, origin: str) -> bool:
        s = self._suspicions.get(mid)
        if s is None or origin in s.accusers or len(s.accusers) - 1 >= s.k:
            return False
        s.accusers[origin] = None
        s.deadline_ms = s.start_ms + suspicion_timeout_ms(len(s.accusers) - 1, s.k, s.min_ms, s.max_ms)
        return True

    def _suspicion_expired(self, mid: str) -> None:
        s = self._suspicions.pop(mid)
        m = self._members.get(mid)
        if m is not None and m.state == SUSPECT and m.incarnation == s.incarnation:
            self.counters["declared_dead"] += 1
            self._transition(m, DEAD, m.incarnation)
            self._enqueue_member(MemberUpdate(DEAD, mid, m.incarnation, self.id))

    def _add_member(self, mid: str, state: str, incarnation: int) -> None:
        m = Member(mid, state, incarnation, self._now)
        self._members[mid] = m
        self._event(mid, state, incarnation)
        if state in (ALIVE, SUSPECT):
            self._live_add(mid)

    def _transition(self, m: Member, state: str, incarnation: int) -> None:
        """The only place a known member's state or incarnation changes."""
        assert incarnation >= m.incarnation, (m, state, incarnation)
        if (m.state, m.incarnation) == (state, incarnation):
            return
        was_live = m.state in (ALIVE, SUSPECT)
        m.state, m.incarnation, m.since_ms = state, incarnation, self._now
        self._event(m.id, state, incarnation)
        if state != SUSPECT:
            self._suspicions.pop(m.id, None)
        if m.id == self.id:
            return
        live = state in (ALIVE, SUSPECT)
        if live and not was_live:
            self._live_add(m.id)
        elif was_live and not live:
            self._live_remove(m.id)
            self._tombstone_owned(m.id)

    def _live_add(self, mid: str) -> None:
        self._live_pos[mid] = len(self._live)
        self._live.append(mid)
        # SWIM 4.3: a new member goes to a random place in the round-robin probe order
        pos = self._rng.randint(self._probe_idx, len(self._probe_order))
        self._probe_order.insert(pos, mid)

    def _live_remove(self, mid: str) -> None:
        i = self._live_pos.pop(mid)
        last = self._live.pop()
        if last != mid:
            self._live[i] = last
            self._live_pos[last] = i

    def _random_live(self, k: int, exclude: str | None = None) -> list[str]:
        live = self._live
        if len(live) <= 2 * k + 1:
            cands = [x for x in live if x != exclude]
            return cands if len(cands) <= k else self._rng.sample(cands, k)
        picks: list[str] = []
        for _ in range(8 * k + 8):          # bounded rejection sampling
            x = live[self._rng.randrange(len(live))]
            if x != exclude and x not in picks:
                picks.append(x)
                if len(picks) == k:
                    break
        return picks

    # --- dissemination (SWIM 4.1 piggybacking, memberlist-style retransmit limit) -----------------

    def _enqueue_member(self, u: MemberUpdate) -> None:
        self._enqueue(("m", u.member), u)

    def _enqueue(self, key: tuple, u) -> None:
        if self._next_gossip_ms <= self._now:
            # the ticker kept its phase while idle: the next gossip round is the next phase
            # point after now, never "immediately" (else rumours would hop faster than rounds)
            iv = self.config.gossip_interval_ms
            self._next_gossip_ms += ((self._now - self._next_gossip_ms) // iv + 1) * iv
        self._queue.put(key, u)
        if len(self._queue) > self.config.max_queue:
            self._queue.drop_most_sent()
            self.counters["queue_dropped"] += 1

    def _take_updates(self) -> tuple:
        if not self._queue:
            return ()
        limit = retransmit_limit(self.config.retransmit_mult, len(self._live) + 1)
        return self._queue.take(self.config.max_piggyback, limit)

    def _gossip(self) -> None:
        for t in self._random_live(self.config.gossip_fanout):
            ups = self._take_updates()
            if not ups:
                break
            self._send(Gossip(self.id, t, ups))

    # --- anti-entropy, join, reconnect, reaping ----------------------------------------------------

    def _state_updates(self) -> tuple:
        ups = []
        for m in self._members.values():
            origin = m.id if m.state in (ALIVE, LEFT) else self.id
            ups.append(MemberUpdate(m.state, m.id, m.incarnation, origin))
        ups.extend(self._endpoints.values())
        return tuple(ups)

    def _on_push_pull(self, msg: PushPull) -> None:
        for u in msg.updates:
            if isinstance(u, MemberUpdate) and u.state == DEAD and u.member != self.id:
                # memberlist mergeState: a remote "dead" is only a suspicion here, so a member
                # that is in fact alive gets the chance to refute it.
                u = MemberUpdate(SUSPECT, u.member, u.incarnation, msg.src)
            self._apply(u)
        if msg.reply:
            self._send(PushPull(self.id, msg.src, self._state_updates(), False, False))
        elif not self._joined:
            self._joined = True
            self._next_join_ms = None

    def _send_join(self) -> None:
        if self._joined:
            self._next_join_ms = None
            return
        if self._join_attempts >= self.config.join_max_attempts:
            self.counters["join_gave_up"] += 1
            self._next_join_ms = None
            return
        self._join_attempts += 1
        self._next_join_ms = self._now + self.config.join_retry_ms
        state = self._state_updates()
        for s in self._seeds:
            self._send(PushPull(self.id, s, state, True, True))

    def _reconnect(self) -> None:
        dead = [m.id for m in self._members.values() if m.state == DEAD]
        if dead:
            t = dead[self._rng.randrange(len(dead))]
            self._send(PushPull(self.id, t, self._state_updates(), True, False))

    def _reap(self) -> None:
        c, now = self.config, self._now
        if c.reap_dead_ms:
            for m in [m for m in self._members.values()
                      if m.state in _GONE and m.id != self.id and now - m.since_ms >= c.reap_dead_ms]:
                del self._members[m.id]
                self._queue.pop(("m", m.id))
                for k in [k for k, e in self._endpoints.items() if e.owner == m.id]:
                    del self._endpoints[k]
                    self._tomb_since.pop(k, None)
        if c.tombstone_ttl_ms:
            for k in [k for k, t in self._tomb_since.items() if now - t >= c.tombstone_ttl_ms]:
                del self._tomb_since[k]
                self._endpoints.pop(k, None)
                self._queue.pop(("e", k))

    # --- endpoint table (versioned entries with tombstones, like Docker's networkdb) ---------------

    def _store_endpoint(self, e: EndpointUpdate, gossip: bool = True) -> None:
        self._endpoints[e.key] = e
        if e.deleted:
            self._tomb_since[e.key] = self._now
        else:
            self._tomb_since.pop(e.key, None)
        if gossip:
            self._enqueue(("e", e.key), e)

    def _apply_endpoint(self, u: EndpointUpdate) -> None:
        if u.version > self._lamport:
            self._lamport = u.version
        cur = self._endpoints.get(u.key)
        if cur is not None and u.order() <= cur.order():
            return
        if cur is not None and cur.owner == self.id == u.owner and not cur.deleted and \
                not self._leaving:
            # someone tombstoned our entry because they thought us dead: the owner is the
            # authority on its own entries, so re-assert above their version.
            self._lamport = u.version + 1
            self._store_endpoint(EndpointUpdate(u.key, self.id, u.version + 1, cur.value, False))
            return
        owner = self._members.get(u.owner)
        if not u.deleted and owner is not None and owner.state in _GONE and u.owner != self.id:
            return          # a departed member's entry: keep our tombstone
        self._store_endpoint(u)

    def _tombstone_owned(self, owner: str) -> None:
        """A dead or departed member's endpoints are deleted; every member derives the same
        tombstone (version + 1), so these need no gossip."""
        for k, e in list(self._endpoints.items()):
            if e.owner == owner and not e.deleted:
                self._store_endpoint(EndpointUpdate(k, owner, e.version + 1, None, True),
                                     gossip=False)

    def _reassert_endpoints(self) -> None:
        for k, e in list(self._endpoints.items()):
            if e.owner == self.id and not e.deleted:
                v = max(self._lamport, e.version) + 2
                self._lamport = v
                self._store_endpoint(EndpointUpdate(k, self.id, v, e.value, False))

    # --- effects --------------------------------------------------------------------------------

    def _send(self, msg: Message) -> None:
        self._msgs.append(msg)

    def _event(self, member: str, state: str, incarnation: int) -> None:
        self._events.append({"type": "member", "member": member, "state": state,
                             "incarnation": incarnation})
