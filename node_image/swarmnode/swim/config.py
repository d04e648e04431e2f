"""SWIM settings and the protocol's arithmetic as pure, table-tested functions.

Owns: `SwimConfig` (every setting with unit, default and trade-off), its presets, and the formulas
(suspicion timeouts, retransmit limit, push-pull scaling, local-health scaling).
Must not import: asyncio, socket, time, module-level random, `chaos`, or any other swarmnode package.

All durations are milliseconds of the driver's monotonic clock (the simulator's virtual clock);
the unit is the last part of each field name. Logarithms name their base.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


class ConfigError(ValueError):
    """A SwimConfig whose settings contradict each other or are out of range."""


@dataclass(frozen=True)
class SwimConfig:
    """Settings of one SWIM/Lifeguard node. Defaults suit a LAN; `local()` suits one host.

    probe_interval_ms (500): one failure-detection probe per interval. Lower detects crashes sooner
        and costs more messages (2 per member per interval, plus indirect probes on failure).
    probe_timeout_ms (200): wait for a direct ack before asking `indirect_checks` members to probe.
        Must exceed a round trip (about the 99th percentile RTT); lower risks needless indirect probes.
    indirect_checks (3): k members asked to ping-req a target that missed its direct ack (SWIM 4.1).
        Higher tolerates more lossy paths between us and the target; 0 disables indirect probing.
    suspicion_mult (3): minimum suspicion timeout = suspicion_mult * max(1, log10(n)) * probe interval
        (Lifeguard IV-B). Higher gives a slow member more time to refute; lower detects sooner.
    suspicion_max_mult (3): a suspicion starts at suspicion_max_mult * minimum and shrinks towards the
        minimum as independent confirmations arrive (Lifeguard "dynamic suspicion timeouts"). Higher
        protects against one node with a local problem accusing others; lower detects sooner.
    suspicion_confirmations_k (2): confirmations after which the suspicion is at its minimum; capped
        at n - 2. 0 disables the shrinking (timeout = minimum from the start).
    awareness_max (8): Lifeguard local health: missed acks / nacks raise a score in [0, awareness_max);
        probe intervals and probe timeouts are scaled by (score + 1). Higher slows an unhealthy node
        further (fewer false accusations) at the cost of its own detection speed.
    gossip_interval_ms (200) and gossip_fanout (3): every interval, pending rumours are pushed to
        gossip_fanout random members (besides riding on pings and acks). Lower interval / higher fanout
        spreads faster at more messages; rounds to reach n members grow with log(n) / log(fanout + 1).
    retransmit_mult (4): each rumour is sent at most retransmit_mult * ceil(log10(n + 1)) times.
        Higher makes rumours more likely to reach everyone under loss; lower saves bandwidth.
    max_piggyback (16): rumours per message at most (bounds frame size and per-message work).
    pushpull_interval_ms (10000): full state exchange with one random member (anti-entropy), scaled up
        for n > 32 by ceil(log2(n) - log2(32)) + 1 so total traffic grows slowly. Converges members that
        rumours missed under loss; lower converges sooner at O(n) bytes per exchange. 0 disables.
    reconnect_interval_ms (5000): a push-pull is also tried with one random dead (not left, not
        reaped) member, so two sides of a healed partition find each other. 0 disables.
    reap_dead_ms (300000): dead and left members (and their endpoints) are forgotten this long after
        the state change. Lower frees memory sooner; must exceed the time a partition may last if the
        sides are to find each other again through reconnect.
    tombstone_ttl_ms (60000): a deleted endpoint is kept as a tombstone this long so the deletion
        wins over stale copies; must exceed the time anti-entropy needs to reach everyone.
    join_retry_ms (1000), join_max_attempts (30): join retries seeds until one answers, at most this
        many times (hitting the bound is counted in `counters["join_gave_up"]`).
    max_relays (256): outstanding ping-req relays this node performs for others; more are refused
        and counted.
    max_queue (4096): rumours waiting for retransmission; the most-sent are dropped first, counted.
    """

    probe_interval_ms: int = 500
    probe_timeout_ms: int = 200
    indirect_checks: int = 3
    suspicion_mult: int = 3
    suspicion_max_mult: int = 3
    suspicion_confirmations_k: int = 2
    awareness_max: int = 8
    gossip_interval_ms: int = 200
    gossip_fanout: int = 3
    retransmit_mult: int = 4
    max_piggyback: int = 16
    pushpull_interval_ms: int = 10_000
    reconnect_interval_ms: int = 5_000
    reap_dead_ms: int = 300_000
    tombstone_ttl_ms: int = 60_000
    join_retry_ms: int = 1_000
    join_max_attempts: int = 30
    max_relays: int = 256
    max_queue: int = 4096

    @classmethod
    def local(cls) -> "SwimConfig":
        """Fast preset for containers on one host (RTT well under 10 ms)."""
        return dataclasses.replace(
            cls(),
            probe_interval_ms=300,
            probe_timeout_ms=100,
            gossip_interval_ms=100,
            pushpull_interval_ms=5_000,
            reconnect_interval_ms=2_000,
            reap_dead_ms=120_000,
            tombstone_ttl_ms=30_000,
            join_retry_ms=500,
        )

    def replace(self, **changes) -> "SwimConfig":
        """A copy with some fields changed, validated."""
        cfg = dataclasses.replace(self, **changes)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise ConfigError listing every contradiction found."""
        errs = []
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                errs.append(f"{f.name} must be a non-negative integer, got {v!r}")
        if errs:
            raise ConfigError("; ".join(errs))
        positive = ("probe_interval_ms", "probe_timeout_ms", "suspicion_mult", "suspicion_max_mult",
                    "awareness_max", "gossip_interval_ms", "retransmit_mult", "max_piggyback",
                    "join_retry_ms", "max_queue")
        errs += [f"{n} must be > 0" for n in positive if getattr(self, n) <= 0]
        if self.probe_timeout_ms >= self.probe_interval_ms:
            errs.append("probe_timeout_ms must be smaller than probe_interval_ms "
                        "(the indirect phase needs the rest of the interval)")
        if self.pushpull_interval_ms and self.pushpull_interval_ms < self.probe_interval_ms:
            errs.append("pushpull_interval_ms must be 0 (off) or at least probe_interval_ms")
        if self.tombstone_ttl_ms and self.pushpull_interval_ms and \
                self.tombstone_ttl_ms < 2 * self.pushpull_interval_ms:
            errs.append("tombstone_ttl_ms must be at least 2 * pushpull_interval_ms, or deletions "
                        "can be undone by a stale push-pull")
        if self.reap_dead_ms and self.reap_dead_ms < self.probe_interval_ms * 10:
            errs.append("reap_dead_ms must be at least 10 probe intervals")
        if errs:
            raise ConfigError("; ".join(errs))


# --- formulas -------------------------------------------------------------------------------------

def suspicion_min_ms(n: int, probe_interval_ms: int, suspicion_mult: int) -> int:
    """Minimum suspicion timeout: mult * max(1, log10(n)) * interval (memberlist util.go, Lifeguard)."""
    scale = max(1.0, math.log10(max(1, n)))
    return int(suspicion_mult * scale * probe_interval_ms)


def suspicion_k(confirmations_k: int, n: int) -> int:
    """Confirmations expected before the timeout reaches its minimum: k capped at n - 2 (>= 0)."""
    return max(0, min(confirmations_k, n - 2))


def suspicion_timeout_ms(confirmations: int, k: int, min_ms: int, max_ms: int) -> int:
    """Lifeguard's shrinking timeout: max - (max - min) * log(c + 1) / log(k + 1), floored at min.

    The log base cancels out. With k < 1 the timeout is min_ms from the start.
    """
    if k < 1:
        return min_ms
    frac = math.log(confirmations + 1.0) / math.log(k + 1.0)
    timeout = max_ms - frac * (max_ms - min_ms)
    return max(min_ms, int(math.floor(timeout)))


def retransmit_limit(retransmit_mult: int, n: int) -> int:
    """Times a rumour is sent: mult * ceil(log10(n + 1)) (memberlist util.go retransmitLimit)."""
    return retransmit_mult * int(math.ceil(math.log10(n + 1)))


def pushpull_scaled_ms(interval_ms: int, n: int) -> int:
    """Push-pull interval grown for large clusters: interval * (ceil(log2(n) - log2(32)) + 1) if n > 32."""
    if n <= 32:
        return interval_ms
    return interval_ms * (int(math.ceil(math.log2(n) - math.log2(32))) + 1)


def health_scaled_ms(duration_ms: int, health_score: int) -> int:
    """Lifeguard local health awareness: a duration scaled by (score + 1)."""
    return duration_ms * (health_score + 1)
