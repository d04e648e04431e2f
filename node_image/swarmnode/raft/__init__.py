"""Raft for the managers: a pure core, its storage, and the cluster store it replicates.

Owns: node_image/swarmnode/raft/ (config, messages, quorum, membership, log, core, storage, store).
Must not import asyncio, socket, time, module-level random, or `chaos` (docs/contracts.md s.1).

API for drivers (the agent's asyncio runtime and swarmnode.sim.raft_sim):

    cfg   = RaftConfig(election_timeout_min_ticks=15, election_timeout_max_ticks=30,
                       heartbeat_ticks=5).validate()      # or config_from_ms(tick_ms, ...)
    store = FileStorage(data_dir + "/raft")               # MemoryStorage() in the simulator
    node  = RaftNode("m1", ["m1", "m2", "m3"], store, cfg, random.Random(seed), Store())

    every tick_ms:        node.tick()
    on a peer frame:      node.step(message_from_dict(obj))   # MessageError -> count, drop frame
    client write:         index = node.propose({"op": "kv.put", "key": "k", "value": 1,
                                                "client_id": "c1", "seq": 7})
                          term = node.term                     # remember (index, term)
                          # NotLeader(leader_hint) / Busy are definite failures
    linearizable read:    node.read_index(ctx)                 # NotLeader / Busy
    after any of those:   while (rd := node.ready()) is not None:
                              store.persist(rd.hard_state, rd.entries, rd.snapshot); store.sync()
                              journal.write(rd.events); journal.flush()   # stamp node/seq/ts/boot
                              for m in rd.messages: send(m.dst, m.to_dict())
                              for r in rd.results: answer the client whose (index, term) matches
                                  r.index/r.term; a result at that index with another term means
                                  the proposal was lost (definite fail); r.result is the store's
                              for rs in rd.read_states: serve rs.ctx from node.sm (already applied)
                              for ctx in rd.dropped_reads: fail that read (definite: not-leader)
                              node.advance(rd)

The core applies committed entries to the state machine while building the Ready (Ready's
docstring has the full contract); their effects are released by the driver after persisting.
Properties: role ("follower", "precandidate", "candidate", "leader"), term, vote, leader_id,
commit_index, applied_index, last_log_index, last_log_term; node.sm is the Store (kv, nodes,
services, tasks; digest()). node.status() gives the Raft fields of GET /status.
Restart = build a new RaftNode on the same storage (it reloads snapshot, hard state and log).

Membership (membership.py, docs/contracts.md section 6): `voters` above is the bootstrap
configuration; a node joining a running cluster is built with voters=(). On the leader,
    index = node.propose_conf_change("add_learner" | "promote" | "demote" | "remove", node_id)
appends a one-server change (ConfChangeError: refused, nothing appended). node.voters,
node.learners and node.membership give the configuration in force (the latest in the log).
"""
from .config import BUGS, ConfigError, RaftConfig, config_from_ms
from .core import (CANDIDATE, FOLLOWER, LEADER, PRECANDIDATE, AppliedResult, Busy, NotLeader,
                   RaftNode, Ready, ReadState)
from .membership import ConfChangeError, Membership
from .messages import (MESSAGE_TYPES, AppendEntries, AppendResponse, Entry, InstallSnapshot, Message,
                       MessageError, Snapshot, VoteRequest, VoteResponse, canonical_json, chain_hash,
                       message_from_dict)
from .storage import FileStorage, HardState, MemoryStorage, Storage, StorageError
from .store import TASK_STATE_RANK, Store

__all__ = [
    "BUGS", "ConfChangeError", "Membership", "ConfigError", "RaftConfig", "config_from_ms", "CANDIDATE", "FOLLOWER", "LEADER",
    "PRECANDIDATE", "AppliedResult", "Busy", "NotLeader", "RaftNode", "Ready", "ReadState",
    "MESSAGE_TYPES", "AppendEntries", "AppendResponse", "Entry", "InstallSnapshot", "Message",
    "MessageError", "Snapshot", "VoteRequest", "VoteResponse", "canonical_json", "chain_hash",
    "message_from_dict", "FileStorage", "HardState", "MemoryStorage", "Storage", "StorageError",
    "TASK_STATE_RANK", "Store",
]
