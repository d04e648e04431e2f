"""SWIM / Lifeguard gossip core for the worker network: pure, no I/O, no clock, injected randomness.

Owns: the membership protocol (`core.SwimNode`), its settings and formulas (`config`), its wire
format (`messages`) and the eventually consistent endpoint table carried over gossip.
Must not import: asyncio, socket, time, module-level random, `chaos`, other swarmnode packages.

API for drivers (the asyncio agent, the simulator)
--------------------------------------------------
    cfg = SwimConfig.local()            # or SwimConfig(); cfg.replace(field=...) validates
    node = SwimNode("w1", cfg, random.Random(seed), seeds=["m1", "m2"], now_ms=clock_ms())
    node.join()                         # push-pull to the seeds, retried until one answers
    loop:
        node.tick(clock_ms())           # at least every ~50 ms, or exactly at node.next_deadline_ms()
        node.step(msg, clock_ms())      # for each decoded message addressed to us
        out = node.poll()               # Output(messages, events)
        journal.append_all(out.events); journal.flush()     # FIRST: events are durable
        for m in out.messages: send(m.dst, m.to_dict())     # THEN: messages, in list order
    node.set_endpoint(key, value) / node.delete_endpoint(key)
    node.members()   -> {id: (state, incarnation)}     states: alive, suspect, dead, left
    node.endpoints() -> {key: EndpointUpdate(key, owner, version, value, deleted=False)}
    node.leave()     -> announce `left`; keep driving it ~1 s (a few gossip intervals), then stop.

Time: every duration in SwimConfig is in milliseconds (unit at the end of the field name);
`now_ms` is any monotonic millisecond clock (the simulator's virtual time). `tick` never
moves the clock back.

Messages (`messages.py`) are frozen, validated dataclasses: Ping, Ack, PingReq, Nack, Gossip,
PushPull. `msg.to_dict()` gives a JSON object with "type", "src", "dst"; `decode(d)` rebuilds it
and raises `WireError` (ValueError) on bad input -- count it and drop the frame. Type names are
append-only. Every message is addressed (`dst`) to one peer; answers (Ack, Nack, PushPull reply)
go back as new messages to `src`, so they travel on the link the answerer dials (contracts.md
section 2, link rule). The transport is TCP: reliable and ordered per connection, but a link may
be cut, delayed or reset; the core tolerates any message being lost, delayed or duplicated.

Journal events (`Output.events`): `{"type": "member", "member", "state", "incarnation"}` whenever
this node's view of a member (itself included) changes; reaping a long-dead member is not an event.
"""

from .config import (ConfigError, SwimConfig, health_scaled_ms, pushpull_scaled_ms,
                     retransmit_limit, suspicion_k, suspicion_min_ms, suspicion_timeout_ms)
from .core import ALIVE, DEAD, LEFT, SUSPECT, Output, SwimNode
from .messages import (Ack, EndpointUpdate, Gossip, MemberUpdate, Message, Nack, Ping, PingReq,
                       PushPull, WireError, decode)

__all__ = [
    "ALIVE", "DEAD", "LEFT", "SUSPECT", "Ack", "ConfigError", "EndpointUpdate", "Gossip",
    "MemberUpdate", "Message", "Nack", "Output", "Ping", "PingReq", "PushPull", "SwimConfig",
    "SwimNode", "WireError", "decode", "health_scaled_ms", "pushpull_scaled_ms",
    "retransmit_limit", "suspicion_k", "suspicion_min_ms", "suspicion_timeout_ms",
]
