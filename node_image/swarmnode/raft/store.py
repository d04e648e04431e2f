"""The cluster store: the deterministic state machine replicated by Raft.

Owns: the command set, its validation and results, client de-duplication (client_id + seq), the
store digest, snapshot/restore, and the journal events (`worker`, `task`) that applying a command
produces. Must not import asyncio, socket, time, module-level random or `chaos`.

Commands are dicts with an "op":
  {"op": "noop"}                                      leader's no-op at election (§8)
  {"op": "config", "voters": [...], "learners": [...]}  a configuration entry (raft/membership.py);
                                                      the core acts on it, the store treats it as a noop
  {"op": "kv.put", "key": K, "value": V}              -> {"ok": true}
  {"op": "kv.cas", "key": K, "expected": V, "value": V2}
                                                      -> {"ok": true} | {"ok": false, "error": "cas-mismatch", "value": cur}
  {"op": "kv.delete", "key": K}                       -> {"ok": true, "existed": bool}
  {"op": "kv.get", "key": K}                          -> {"ok": true, "value": V|None} (a read through the log)
  {"op": "node.upsert", "node": N, "fields": {...}}   worker registration / state; fields merged;
                                                      a "state" field ("ready"/"down") emits a `worker` event
  {"op": "cluster.init", "join_token": T}            set once: the cluster's join token, kept in
                                                      nodes["@cluster"] (not a node id: ids match
                                                      [a-z][a-z0-9]*); a later one leaves the first
                                                      -> {"ok": true, "join_token": the token in force}
  {"op": "service.create", "name": S, "replicas": n}  error "exists" if present
  {"op": "service.scale", "name": S, "replicas": n}   error "not-found" if absent
  {"op": "service.remove", "name": S}                 error "not-found" if absent
  {"op": "task.create", "task": T, "service": S, "slot": n, "worker": W|None, "state"?: s}
                                                      state defaults to "assigned" with a worker, else "new"
  {"op": "task.update", "task": T, "state": s}        forward only (TASK_STATE_RANK); a backward or
                                                      sideways move is rejected: {"ok": false, "error": "backward"}
Any command may carry "client_id" (str) and "seq" (int >= 1). The store keeps the last seq and its
result per client: a command with the same seq is not applied again and the cached result is returned
(with "duplicate": true); an older seq gets {"ok": false, "error": "stale-seq"}. At most
MAX_SESSIONS clients are remembered; beyond that the least recently used session is evicted
(deterministically, by last applied index) and `sessions_evicted` counts it.
A malformed command never raises: it yields {"ok": false, "error": "bad-command", "message": ...}.
"""
from __future__ import annotations

import copy
import hashlib

from .messages import _canonical_str, canonical_json

TASK_STATE_RANK = {"new": 0, "assigned": 1, "running": 2,
                   "complete": 3, "failed": 3, "shutdown": 3, "orphaned": 3}
WORKER_STATES = ("ready", "down")
MAX_SESSIONS = 10_000
CLUSTER_KEY = "@cluster"   # nodes[CLUSTER_KEY]: cluster-wide settings (the join token); never a node


KV_HASH_MOD = 1 << 128


def kv_pair_hash(key, value) -> int:
    """128 bits of sha256 over one kv pair's canonical JSON (`"key":value`). The store digest sums
    these (mod 2^128), so a digest costs O(1) per changed key instead of O(store) (see digest)."""
    frag = f"{_canonical_str(key)}:{_canonical_str(value)}".encode()    # canonical_json(key) b":" ...(value)
    return int.from_bytes(hashlib.sha256(frag).digest()[:16], "big")


class _SumHash:
    """The sum (mod KV_HASH_MOD) of `kv_pair_hash` over one dict's pairs, kept up to date by writes
    that go through set/delete. A dict replaced behind its back (restore, a test) or changed in
    size without it is re-summed on the next use."""

    __slots__ = ("of", "h", "acc")

    def __init__(self, d: dict) -> None:
        self.of = d
        self.h = {k: kv_pair_hash(k, v) for k, v in d.items()}
        self.acc = sum(self.h.values()) % KV_HASH_MOD

    def current(self, d: dict) -> int:
        if d is not self.of or len(self.h) != len(d):
            self.__init__(d)
        return self.acc

    def set(self, d: dict, key, value) -> None:
        if d is not self.of:
            self.__init__(d)
        h = kv_pair_hash(key, value)
        self.acc = (self.acc - self.h.get(key, 0) + h) % KV_HASH_MOD
        self.h[key] = h
        d[key] = value

    def delete(self, d: dict, key) -> None:
        if d is not self.of:
            self.__init__(d)
        if key in d:
            del d[key]
            self.acc = (self.acc - self.h.pop(key)) % KV_HASH_MOD


class BadCommand(ValueError):
    pass


def _need(cmd: dict, key: str, kind):
    v = cmd.get(key)
    ok = isinstance(v, kind) and not (kind is int and isinstance(v, bool))
    if not ok or (kind is str and not v):
        raise BadCommand(f"{cmd.get('op')}: field {key!r} must be {getattr(kind, '__name__', kind)}")
    return v


def _scalar(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


# Planted bugs of the store (test only; swarmnode.plant describes them). Off unless the agent sets
# Store.bugs from CHAOS_PLANT.
STORE_BUGS = ("dedup_lost_in_snapshot", "task_state_backwards")


class Store:
    """Deterministic state machine. apply() -> (result, events)."""

    bugs: frozenset = frozenset()   # names from STORE_BUGS; empty in every real run

    def __init__(self):
        self.kv: dict = {}
        self.nodes: dict = {}
        self.services: dict = {}
        self.tasks: dict = {}
        self.sessions: dict = {}  # client_id -> {"seq", "result", "index"}
        self.applied_index = 0
        self.sessions_evicted = 0
        self._kv_sum = _SumHash(self.kv)              # see digest
        self._sessions_sum = _SumHash(self.sessions)

    # -- state ---------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"kv": self.kv, "nodes": self.nodes, "services": self.services, "tasks": self.tasks,
                "sessions": self.sessions, "applied_index": self.applied_index}

    def digest(self) -> str:
        """First 16 hex chars of sha256 over: for the kv and sessions maps, the sum (mod 2^128) of
        `kv_pair_hash` over their pairs; then the canonical JSON of the other sections with
        applied_index. Equal states give equal digests whatever order they were built in. The two
        maps that grow with the workload (keys, client ids) are sums kept up to date on every
        write, not re-encoded, because the digest is journaled after every applied entry on every
        manager: re-encoding 1,000 keys each time cost ~0.2 ms per write per node."""
        return self._digest_with(self._kv_sum.current(self.kv), self._sessions_sum.current(self.sessions))

    def digest_recomputed(self) -> str:
        """digest() computed from scratch (O(store)): the reference the incremental sums are
        checked against (agent.fast_store, tests)."""
        return self._digest_with(_SumHash(self.kv).acc, _SumHash(self.sessions).acc)

    def _kv_set(self, key, value) -> None:
        self._kv_sum.set(self.kv, key, value)

    def _kv_del(self, key) -> None:
        self._kv_sum.delete(self.kv, key)

    def _digest_with(self, kv_acc: int, sessions_acc: int) -> str:
        if type(self.applied_index) is int and not (self.nodes or self.services or self.tasks):
            # the canonical JSON below with the three sections empty (a kv-only store), written out
            rest = b'{"applied_index":%d,"nodes":{},"services":{},"tasks":{}}' % self.applied_index
        else:
            rest = canonical_json({"applied_index": self.applied_index, "nodes": self.nodes,
                                   "services": self.services, "tasks": self.tasks})
        return hashlib.sha256(b"%032x%032x" % (kv_acc, sessions_acc) + rest).hexdigest()[:16]

    def snapshot(self) -> dict:
        if "dedup_lost_in_snapshot" in self.bugs:   # planted: sessions left out of the snapshot
            return copy.deepcopy(dict(self.state(), sessions={}))
        return copy.deepcopy(self.state())

    def restore(self, data: dict) -> None:
        data = copy.deepcopy(data) if data else {}
        self.kv = data.get("kv", {})
        self.nodes = data.get("nodes", {})
        self.services = data.get("services", {})
        self.tasks = data.get("tasks", {})
        self.sessions = data.get("sessions", {})
        self.applied_index = data.get("applied_index", 0)
        self._kv_sum = _SumHash(self.kv)
        self._sessions_sum = _SumHash(self.sessions)

    # -- apply ---------------------------------------------------------------------------------
    def apply(self, index: int, command: dict):
        """Apply the committed command at `index`. Returns (result dict, list of journal events)."""
        self.applied_index = index
        client, seq = command.get("client_id"), command.get("seq")
        if client is not None:
            if not isinstance(client, str) or not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
                return {"ok": False, "error": "bad-command", "message": "client_id needs an int seq >= 1"}, []
            sess = self.sessions.get(client)
            if sess is not None:
                if seq == sess["seq"]:
                    self._sessions_sum.set(self.sessions, client, dict(sess, index=index))
                    return dict(sess["result"], duplicate=True), []
                if seq < sess["seq"]:
                    return {"ok": False, "error": "stale-seq"}, []
        events: list = []
        try:
            handler = _HANDLERS.get(command.get("op"))
            if handler is None:
                raise BadCommand(f"unknown op {command.get('op')!r}")
            result = handler(self, command, events)
        except BadCommand as e:
            result, events = {"ok": False, "error": "bad-command", "message": str(e)}, []
        if client is not None:
            self._sessions_sum.set(self.sessions, client, {"seq": seq, "result": result, "index": index})
            if len(self.sessions) > MAX_SESSIONS:
                oldest = min(self.sessions, key=lambda c: (self.sessions[c]["index"], c))
                self._sessions_sum.delete(self.sessions, oldest)
                self.sessions_evicted += 1
        return result, events

    def _noop(self, cmd, events):
        return {"ok": True}

    def _kv_put(self, cmd, events):
        key = _need(cmd, "key", str)
        if not _scalar(cmd.get("value")):
            raise BadCommand("kv.put: value must be a JSON scalar")
        self._kv_set(key, cmd.get("value"))
        return {"ok": True}

    def _kv_cas(self, cmd, events):
        key = _need(cmd, "key", str)
        if not _scalar(cmd.get("value")) or not _scalar(cmd.get("expected")):
            raise BadCommand("kv.cas: expected and value must be JSON scalars")
        cur = self.kv.get(key)
        if cur != cmd.get("expected") or (key not in self.kv and cmd.get("expected") is not None):
            return {"ok": False, "error": "cas-mismatch", "value": cur}
        self._kv_set(key, cmd.get("value"))
        return {"ok": True}

    def _kv_delete(self, cmd, events):
        key = _need(cmd, "key", str)
        existed = key in self.kv
        self._kv_del(key)
        return {"ok": True, "existed": existed}

    def _kv_get(self, cmd, events):
        return {"ok": True, "value": self.kv.get(_need(cmd, "key", str))}

    def _node_upsert(self, cmd, events):
        node = _need(cmd, "node", str)
        fields = _need(cmd, "fields", dict)
        state = fields.get("state")
        if state is not None and state not in WORKER_STATES:
            raise BadCommand(f"node.upsert: state must be one of {WORKER_STATES}")
        rec = self.nodes.setdefault(node, {})
        rec.update(copy.deepcopy(fields))
        if state is not None:
            events.append({"type": "worker", "worker": node, "state": state})
        return {"ok": True}

    def _cluster_init(self, cmd, events):
        token = _need(cmd, "join_token", str)
        rec = self.nodes.setdefault(CLUSTER_KEY, {})
        if not rec.get("join_token"):
            rec["join_token"] = token
        return {"ok": True, "join_token": rec["join_token"]}

    def _service_create(self, cmd, events):
        name = _need(cmd, "name", str)
        replicas = _need(cmd, "replicas", int)
        if replicas < 0:
            raise BadCommand("replicas must be >= 0")
        if name in self.services:
            return {"ok": False, "error": "exists"}
        self.services[name] = {"replicas": replicas}
        return {"ok": True}

    def _service_scale(self, cmd, events):
        name = _need(cmd, "name", str)
        replicas = _need(cmd, "replicas", int)
        if replicas < 0:
            raise BadCommand("replicas must be >= 0")
        if name not in self.services:
            return {"ok": False, "error": "not-found"}
        self.services[name]["replicas"] = replicas
        return {"ok": True}

    def _service_remove(self, cmd, events):
        name = _need(cmd, "name", str)
        if self.services.pop(name, None) is None:
            return {"ok": False, "error": "not-found"}
        return {"ok": True}

    def _task_event(self, tid, events):
        t = self.tasks[tid]
        events.append({"type": "task", "task": tid, "service": t["service"], "slot": t["slot"],
                       "worker": t["worker"], "state": t["state"]})

    def _task_create(self, cmd, events):
        tid = _need(cmd, "task", str)
        service = _need(cmd, "service", str)
        slot = _need(cmd, "slot", int)
        worker = cmd.get("worker")
        if worker is not None and not isinstance(worker, str):
            raise BadCommand("task.create: worker must be a string or null")
        state = cmd.get("state", "assigned" if worker else "new")
        if state not in TASK_STATE_RANK:
            raise BadCommand(f"task.create: unknown state {state!r}")
        if tid in self.tasks:
            return {"ok": False, "error": "exists"}
        self.tasks[tid] = {"service": service, "slot": slot, "worker": worker, "state": state}
        self._task_event(tid, events)
        return {"ok": True}

    def _task_update(self, cmd, events):
        tid = _need(cmd, "task", str)
        state = _need(cmd, "state", str)
        if state not in TASK_STATE_RANK:
            raise BadCommand(f"task.update: unknown state {state!r}")
        t = self.tasks.get(tid)
        if t is None:
            return {"ok": False, "error": "not-found"}
        if state == t["state"]:
            return {"ok": True, "unchanged": True}
        if TASK_STATE_RANK[state] <= TASK_STATE_RANK[t["state"]] and \
                "task_state_backwards" not in self.bugs:   # planted: backward moves accepted
            return {"ok": False, "error": "backward", "state": t["state"]}
        t["state"] = state
        self._task_event(tid, events)
        return {"ok": True}


_HANDLERS = {
    "noop": Store._noop,
    "config": Store._noop,      # a configuration entry (membership.py): the core acts on it
    "kv.put": Store._kv_put,
    "kv.cas": Store._kv_cas,
    "kv.delete": Store._kv_delete,
    "kv.get": Store._kv_get,
    "node.upsert": Store._node_upsert,
    "cluster.init": Store._cluster_init,
    "service.create": Store._service_create,
    "service.scale": Store._service_scale,
    "service.remove": Store._service_remove,
    "task.create": Store._task_create,
    "task.update": Store._task_update,
}
