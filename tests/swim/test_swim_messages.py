"""Wire format tests: round trips through JSON, malformed input rejected as WireError, type names
pinned (append-only).
Must not import: chaos or anything beyond swarmnode.swim.
"""

import json

import pytest

from swarmnode.swim import (Ack, EndpointUpdate, Gossip, MemberUpdate, Nack, Ping, PingReq, PushPull,
                            WireError, decode)
from swarmnode.swim.messages import MEMBER_STATES, MESSAGE_TYPES

UPS = (MemberUpdate("suspect", "w2", 3, "w1"), EndpointUpdate("w1/t1", "w1", 7, "10.0.0.1:80"),
       EndpointUpdate("w1/t0", "w1", 8, None, True))

SAMPLES = [
    Ping("w1", "w2", UPS, 5),
    Ack("w2", "w1", (), 5),
    PingReq("w1", "w3", UPS[:1], 6, "w2"),
    Nack("w3", "w1", (), 6),
    Gossip("w1", "w4", UPS),
    PushPull("w1", "w5", UPS, True, True),
]


def test_messages_type_names_are_append_only():
    # Never edit this list except by appending: peers of other versions rely on these names.
    assert MESSAGE_TYPES[:6] == ("ping", "ack", "ping_req", "nack", "gossip", "push_pull")
    assert MEMBER_STATES[:4] == ("alive", "suspect", "dead", "left")


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: m.TYPE)
def test_messages_roundtrip_through_json(msg):
    d = json.loads(json.dumps(msg.to_dict()))
    assert d["type"] == msg.TYPE
    assert decode(d) == msg
    assert type(msg).from_dict(d) == msg


@pytest.mark.parametrize("bad", [
    None, [], {"type": "nope", "src": "a", "dst": "b"},
    {"type": "ping", "dst": "b"},                                   # no src
    {"type": "ping", "src": "", "dst": "b"},                        # empty id
    {"type": "ping", "src": "a", "dst": "b", "seq": -1},
    {"type": "ping", "src": "a", "dst": "b", "seq": True},
    {"type": "gossip", "src": "a", "dst": "b", "updates": {}},
    {"type": "gossip", "src": "a", "dst": "b", "updates": [{"k": "x"}]},
    {"type": "gossip", "src": "a", "dst": "b",
     "updates": [{"k": "m", "state": "zombie", "member": "c", "incarnation": 0, "origin": "c"}]},
    {"type": "gossip", "src": "a", "dst": "b",
     "updates": [{"k": "m", "state": "alive", "member": "c", "origin": "c"}]},
    {"type": "gossip", "src": "a", "dst": "b",
     "updates": [{"k": "e", "key": "x", "owner": "c", "version": 1, "value": {"no": "dict"}}]},
    {"type": "push_pull", "src": "a", "dst": "b", "reply": "yes"},
])
def test_messages_malformed_input_is_a_wire_error(bad):
    with pytest.raises(WireError):
        decode(bad)


def test_messages_bad_construction_from_our_code_raises():
    with pytest.raises(WireError):
        Ping("w1", "w2", [MemberUpdate("alive", "w1", 0, "w1")], 1)     # list, not tuple
    with pytest.raises(WireError):
        MemberUpdate("alive", "w1", -1, "w1")


def test_messages_unknown_fields_are_ignored_for_forward_compatibility():
    assert decode({"type": "ping", "src": "a", "dst": "b", "seq": 1, "later": 1}) == \
        Ping("a", "b", (), 1)
