"""Wire format: frozen dataclasses validated on construction, JSON round trip, append-only type
numbers (STYLE item 5)."""
import json

import pytest

from swarmnode.raft import (MESSAGE_TYPES, AppendEntries, AppendResponse, Entry, InstallSnapshot,
                            MessageError, Snapshot, VoteRequest, VoteResponse, chain_hash,
                            message_from_dict)

SAMPLES = [
    VoteRequest(3, "m1", "m2", True, 10, 2),
    VoteResponse(3, "m2", "m1", False, True),
    AppendEntries(2, "m1", "m3", 4, 1, (Entry(5, 2, {"op": "noop"}), Entry(6, 2, {"op": "kv.put", "key": "a", "value": 1})), 4, 9),
    AppendEntries(2, "m1", "m3", 0, 0, (), 0, 0),
    AppendResponse(2, "m3", "m1", False, 0, 3, 1, 9),
    InstallSnapshot(4, "m1", "m2", Snapshot(7, 3, "abcd", {"kv": {"a": 1}}), 2),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: m.TYPE)
def test_messages_json_round_trip(msg):
    wire = json.loads(json.dumps(msg.to_dict()))
    assert message_from_dict(wire) == msg
    assert type(msg).from_dict(wire) == msg


def test_messages_type_numbers_are_append_only():
    # Pinned: a change here breaks mixed-version clusters. Append new types, never renumber.
    assert MESSAGE_TYPES == {"vote_req": 1, "vote_resp": 2, "append": 3, "append_resp": 4, "snapshot": 5}


@pytest.mark.parametrize("bad", [
    "not a dict", {"type": "nope"}, {"type": "vote_req", "term": 1, "src": "a", "dst": "b"},
    {"type": "vote_req", "term": -1, "src": "a", "dst": "b", "pre_vote": False, "last_log_index": 0, "last_log_term": 0},
    {"type": "vote_req", "term": 1, "src": "", "dst": "b", "pre_vote": False, "last_log_index": 0, "last_log_term": 0},
    {"type": "vote_resp", "term": 1, "src": "a", "dst": "b", "pre_vote": 0, "granted": True},
    {"type": "append", "term": 1, "src": "a", "dst": "b", "prev_log_index": 0, "prev_log_term": 0,
     "entries": [{"index": 2, "term": 1, "command": {"op": "noop"}}], "leader_commit": 0, "seq": 0},
    {"type": "append", "term": 1, "src": "a", "dst": "b", "prev_log_index": 0, "prev_log_term": 0,
     "entries": [{"index": 1, "term": 1, "command": "x"}], "leader_commit": 0, "seq": 0},
    {"type": "append", "term": 1, "src": "a", "dst": "b", "prev_log_index": 0, "prev_log_term": 0,
     "entries": "x", "leader_commit": 0, "seq": 0},
    {"type": "snapshot", "term": 1, "src": "a", "dst": "b", "seq": 0, "snapshot": {"index": 1}},
])
def test_messages_malformed_peer_input_raises_message_error(bad):
    with pytest.raises(MessageError):
        message_from_dict(bad)


def test_messages_construction_from_our_code_is_validated():
    with pytest.raises(MessageError):
        VoteRequest(1, "a", "b", "yes", 0, 0)
    with pytest.raises(MessageError):
        Entry(0, 1, {"op": "noop"})


def test_messages_chain_hash_is_pinned_and_chained():
    # contracts section 4: sha256 over prev hash + term + entry bytes, first 16 hex chars
    h1 = chain_hash("", 1, {"op": "noop"})
    assert len(h1) == 16 and h1 == chain_hash("", 1, {"op": "noop"})
    assert chain_hash(h1, 1, {"op": "noop"}) != h1
    assert chain_hash("", 2, {"op": "noop"}) != h1
    assert chain_hash("", 1, {"b": 1, "op": "x", "a": 2}) == chain_hash("", 1, {"a": 2, "op": "x", "b": 1})
