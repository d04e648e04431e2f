"""Client workload and history recording (Jepsen's model; docs/contracts.md section 5).

Owns: the thread-safe `HistoryWriter` (history.jsonl, appended and flushed as operations happen),
the key-value client that turns HTTP answers into `ok` / `fail` / `info` honestly (STYLE.md item 15),
the seeded client threads, and the status poller (status.jsonl).

Rules kept here:
- `fail` only when the node said the operation definitely did not happen (`definite: true`);
  timeouts, dropped connections and unknown answers are `info`.
- A process whose operation ended `info` never issues another operation: the client thread takes a
  new process number (as Jepsen does), so a still-pending operation never overlaps a later one of the
  same process.
- Values (`WorkloadSpec.values`): with N, every written value and both cas operands are drawn by the
  client's rng from 1..N, so a cas can match the current value and both of its outcomes are
  exercised (Jepsen's register workload draws from 0..4). With None (plans written before the
  setting, or `values: unique`) written values are unique across the run, so durability and
  linearizability can tell every write apart, and a cas's expected value is drawn from every value
  written so far (it almost never matches). With LATEST (`values: latest`) written values stay
  unique and half the cas (a coin of the client's rng) expect the latest value an `ok` completion
  showed on the key, so cas matches often and every write stays distinguishable.
- Open loop with a pool (`WorkloadSpec.max_in_flight` set): one dispatcher issues the operations on
  the rate's schedule (f, key and value drawn in slot order from one seeded rng) and hands each to an
  idle process, or to a new process number while fewer than max_in_flight operations are in flight,
  so the offered rate holds under latency. Each process still has at most one operation in flight,
  and one whose operation ended `info` is retired (Jepsen's rule). Without max_in_flight (plans
  written before the setting) each client thread keeps its own schedule, one operation in flight.
Must not import: click, docker.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import requests

from chaos.history import refused

MAX_OPS_PER_CLIENT = 100_000  # bound: a runaway loop stops here and says so
LATEST = "latest"    # WorkloadSpec.values: unique written values; a cas may expect the latest value seen
LATEST_SHARE = 0.5   # LATEST: the share of cas that expect the latest value seen (the rest an older one)


class RunClock:
    """One clock for a run: monotonic time, expressed as wall-clock epoch seconds through the offset
    taken once at the start (stored in run.json), so the history, faults and statuses are ordered by
    one monotonic source even if the wall clock is stepped meanwhile."""

    def __init__(self) -> None:
        self.wall0 = time.time()
        self.mono0 = time.monotonic()

    def now(self) -> float:
        return self.wall0 + (time.monotonic() - self.mono0)

    def at(self, mono: float) -> float:
        return self.wall0 + (mono - self.mono0)

    def as_dict(self) -> dict:
        return {"wall0": self.wall0, "mono0": self.mono0, "source": "time.monotonic + offset"}


class HistoryWriter:
    """Appends history events to `path`, one JSON object per line, each flushed at once.

    `counts` counts lines by type (invoke / ok / fail / info), plus `refused`: the `fail` completions
    that are a cas refused on a value mismatch (also in `fail`; the live panel shows them apart)."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time):
        self.clock = clock
        self._fh = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()
        self._index = 0
        self.counts: dict[str, int] = {"invoke": 0, "ok": 0, "fail": 0, "info": 0, "refused": 0}

    def add(self, **event) -> None:
        with self._lock:
            line = {"index": self._index, **event, "ts": self.clock()}
            self._index += 1
            self.counts[event["type"]] = self.counts.get(event["type"], 0) + 1
            if refused(event["type"], event.get("error")):
                self.counts["refused"] += 1
            self._fh.write(json.dumps(line, separators=(",", ":")) + "\n")
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()


@dataclass(frozen=True)
class WorkloadSpec:
    clients: int = 4
    keys: int = 3
    op_timeout_s: float = 1.5
    think_ms: int = 20                 # closed loop: pause between a client's operations
    mix: tuple[tuple[str, int], ...] = (("read", 4), ("write", 3), ("cas", 2), ("delete", 1))
    rate: float | None = None          # open loop: ops/s over all clients (None: closed loop)
    key_concurrency: int | None = None  # at most this many operations in flight per key
    client_seeds: tuple[int, ...] = ()  # per-client seeds (default: derived from the workload seed)
    max_backlog_s: float = 1.0          # open loop: a client further behind its schedule skips slots
    sessions: bool = True               # writes carry client_id/seq: the store applies each once
    retry: bool = True                  # an attempt that failed over is tried again, within op_timeout_s
    values: int | str | None = None     # int N: values from 1..N; None: unique; LATEST: unique, cas expects the latest
    max_in_flight: int | None = None    # open loop with a pool: at most this many operations in flight (None: per-client)


RETRY_CODES = ("no-leader", "not-leader", "unavailable", "timeout")  # errors another attempt may cure
RETRY_BACKOFF_S = (0.01, 0.02, 0.05, 0.1)  # pause before attempt 2, 3, 4, then 5 onwards


@dataclass(frozen=True)
class Attempt:
    """One HTTP call's outcome: type ok / fail / info, and what a retry needs to know."""
    type: str
    value: object
    error: str | None = None
    retryable: bool = False            # the error is one another attempt (elsewhere) may cure
    leader: str | None = None          # the node named as leader in the answer


class KVClient:
    """One client's HTTP calls to the nodes' key-value API; answers mapped to history outcomes."""

    def __init__(self, base_url: str, timeout_s: float):
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.http = requests.Session()

    def call(self, f: str, key: str, value, session: tuple[str, int] | None = None,
             timeout_s: float | None = None) -> tuple[str, object, str | None]:
        """Returns (type, value, error) with type ok / fail / info."""
        a = self.attempt(f, key, value, session, timeout_s)
        return a.type, a.value, a.error

    def attempt(self, f: str, key: str, value, session: tuple[str, int] | None = None,
                timeout_s: float | None = None) -> Attempt:
        url = f"{self.base_url}/kv/{key}"
        timeout = self.timeout_s if timeout_s is None else timeout_s
        extra = {"client_id": session[0], "seq": session[1]} if session else {}
        try:
            if f == "read":
                resp = self.http.get(url, timeout=timeout)
            elif f == "write":
                resp = self.http.put(url, json={"value": value, **extra}, timeout=timeout)
            elif f == "cas":
                resp = self.http.post(url + "/cas", json={"expected": value[0], "value": value[1], **extra},
                                      timeout=timeout)
            elif f == "delete":
                resp = self.http.delete(url, json=extra or None, timeout=timeout)
            else:
                raise ValueError(f"unknown operation {f!r}")
            body = resp.json()
        except requests.ConnectionError as exc:
            return Attempt("info", value, type(exc).__name__, retryable=True)
        except requests.Timeout as exc:
            return Attempt("info", value, type(exc).__name__)
        except (requests.RequestException, ValueError) as exc:
            return Attempt("info", value, type(exc).__name__)
        if not isinstance(body, dict):
            return Attempt("info", value, "bad-answer")
        if resp.status_code == 200 and body.get("ok") is True:
            if f == "read":
                return Attempt("ok", body.get("value"))
            if f == "delete":
                return Attempt("ok", body.get("existed"))
            return Attempt("ok", value)
        code = str(body.get("error", resp.status_code))
        leader = body.get("leader") if isinstance(body.get("leader"), str) else None
        return Attempt("fail" if body.get("definite") is True else "info", value, code,
                       retryable=code in RETRY_CODES, leader=leader)


class Workload:
    """Seeded client threads against the nodes' client URLs, writing one history."""

    def __init__(self, urls: Mapping[str, str], writer: HistoryWriter, spec: WorkloadSpec, seed: int):
        if not urls:
            raise ValueError("a workload needs at least one node URL")
        self.urls = dict(urls)
        self.writer = writer
        self.spec = spec
        self.seed = seed
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._values = itertools.count(1)
        self._values_lock = threading.Lock()
        self._latest: dict[str, object] = {}  # key -> the latest value an ok completion showed (LATEST)
        self._next_process = itertools.count(spec.clients)
        self._in_flight: dict[str, int] = {}
        self.bound_hit = False
        self.skipped = 0  # open-loop slots not issued (backlog over max_backlog_s, or keys at their bound)
        self.skipped_in_flight = 0  # pool: slots not issued because max_in_flight operations were in flight
        self.peak_in_flight = 0     # pool: the most operations in flight at once
        self._pool_lock = threading.Lock()
        self._idle: list[int] = []   # pool: processes with no operation in flight, lowest number first
        self._busy = 0               # pool: operations in flight
        self._seqs: dict[int, int] = {}
        self._pending: set = set()   # pool: futures not yet done
        self._local = threading.local()
        self.wall_at: Callable[[float], float] = lambda mono: time.time() - (time.monotonic() - mono)

    def _unique_value(self) -> int:
        with self._values_lock:
            return next(self._values)

    def _value(self, rng: random.Random, f: str, key: str = ""):
        """The invocation value of an operation `f`: what a write writes, [expected, new] of a cas,
        else None. Drawn from 1..spec.values with the client's rng; or unique (spec.values None: the
        cas draw kept exactly as it was, so old plans replay the same operations); or unique with a
        cas that expects, on a coin flip of the client's rng, the latest value seen on the key
        (LATEST), else an older one."""
        n = self.spec.values
        if f == "write":
            return rng.randint(1, n) if isinstance(n, int) else self._unique_value()
        if f != "cas":
            return None
        if isinstance(n, int):
            return [rng.randint(1, n), rng.randint(1, n)]
        if n == LATEST:
            latest = rng.random() < LATEST_SHARE
            older = rng.randrange(1, max(2, self._unique_value()))
            with self._values_lock:
                expected = self._latest.get(key, older) if latest else older
            return [expected, self._unique_value()]
        return [rng.randrange(1, max(2, self._unique_value())), self._unique_value()]

    def _observe(self, event: dict) -> None:
        """Remember the latest value an `ok` completion showed on its key (for LATEST cas)."""
        if event["type"] != "ok" or self.spec.values != LATEST:
            return
        f, key, value = event["f"], event["key"], event.get("value")
        seen = value if f in ("write", "read") else value[1] if f == "cas" else None
        with self._values_lock:
            if seen is None:
                self._latest.pop(key, None)
            else:
                self._latest[key] = seen

    @property
    def pooled(self) -> bool:
        return bool(self.spec.rate) and self.spec.max_in_flight is not None

    def stats(self) -> dict:
        """What run.json records about the workload's own behaviour."""
        out = {"skipped_slots": self.skipped, "bound_hit": self.bound_hit}
        if self.pooled:
            out.update({"max_in_flight": self.spec.max_in_flight, "peak_in_flight": self.peak_in_flight,
                        "skipped_in_flight": self.skipped_in_flight,
                        "processes": self._processes_used()})
        return out

    def _processes_used(self) -> int:
        with self._pool_lock:
            return len(self._seqs)

    def start(self) -> None:
        if self.pooled:
            self._idle = list(range(self.spec.clients))
            self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.spec.max_in_flight,
                                                               thread_name_prefix="op")
            t = threading.Thread(target=self._dispatch, name="dispatcher", daemon=True)
            self._threads.append(t)
            t.start()
            return
        for i in range(self.spec.clients):
            t = threading.Thread(target=self._client, args=(i,), name=f"client-{i}", daemon=True)
            self._threads.append(t)
            t.start()

    def stop(self, join_timeout_s: float = 10.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + join_timeout_s
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        if self.pooled and hasattr(self, "_pool"):
            with self._pool_lock:
                pending = list(self._pending)
            concurrent.futures.wait(pending, timeout=max(0.0, deadline - time.monotonic()))
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _take_process(self) -> int | None:
        """An idle process (the lowest number), else a new one while fewer than max_in_flight
        operations are in flight; None at the bound."""
        with self._pool_lock:
            if self._idle:
                process = self._idle.pop(0)
            elif self._busy < self.spec.max_in_flight:
                process = next(self._next_process)
            else:
                return None
            self._busy += 1
            self._seqs.setdefault(process, 0)
            self.peak_in_flight = max(self.peak_in_flight, self._busy)
            return process

    def _give_back(self, process: int, retired: bool) -> None:
        with self._pool_lock:
            self._busy -= 1
            if not retired:
                self._idle.append(process)
                self._idle.sort()

    def _dispatch(self) -> None:
        """The pool's schedule: one slot every 1/rate s; each slot's f, key and value are drawn in
        slot order from one seeded rng, so the sequence of operations does not depend on timing."""
        spec = self.spec
        seed = spec.client_seeds[0] if spec.client_seeds else f"{self.seed}:client:0"
        rng = random.Random(f"{seed}:pool")
        ops, weights = zip(*spec.mix)
        keys = [f"k{j}" for j in range(spec.keys)]
        interval = 1.0 / spec.rate
        due = time.monotonic()
        for _ in range(MAX_OPS_PER_CLIENT * max(1, spec.clients)):
            now = time.monotonic()
            if now - due > spec.max_backlog_s:  # the dispatcher itself fell behind: skip the missed slots
                missed = int((now - due) / interval)
                self.skipped += missed
                due += missed * interval
            if self._stop.wait(max(0.0, due - now)):
                return
            f = rng.choices(ops, weights)[0]
            process = self._take_process()
            if process is None:
                self.skipped += 1
                self.skipped_in_flight += 1
                due += interval
                continue
            key = self._pick_key(rng, keys)
            if key is None:
                self._give_back(process, retired=False)
                self.skipped += 1
                due += interval
                continue
            value = self._value(rng, f, key)
            sched_ts = self.wall_at(due)
            self.writer.add(process=process, type="invoke", f=f, key=key, value=value, sched_ts=sched_ts)
            try:
                fut = self._pool.submit(self._pooled_operation, process, f, key, value)
            except RuntimeError:  # the pool was shut down: stopping
                self._give_back(process, retired=True)
                return
            with self._pool_lock:
                self._pending.add(fut)
            fut.add_done_callback(self._done)
            due += interval
        self.bound_hit = True

    def _done(self, fut) -> None:
        with self._pool_lock:
            self._pending.discard(fut)

    def _pooled_operation(self, process: int, f: str, key: str, value) -> None:
        nodes = sorted(self.urls)
        clients = getattr(self._local, "clients", None)
        if clients is None:
            clients = self._local.clients = {n: KVClient(self.urls[n], self.spec.op_timeout_s) for n in nodes}
        with self._pool_lock:
            seq = self._seqs[process]
        session = (f"{self.seed}-p{process}", seq) if self.spec.sessions and f != "read" else None
        event = None
        try:
            event = self._operation(clients, nodes, process % len(nodes), f, key, value, session)
        except Exception as exc:  # a bug here must not leave the process pending without a completion
            event = {"type": "info", "f": f, "key": key, "value": value, "error": f"client-error: {type(exc).__name__}"}
        finally:
            if event is None:
                event = {"type": "info", "f": f, "key": key, "value": value, "error": "client-error"}
            self._release(key)
            if session is not None:
                with self._pool_lock:
                    self._seqs[process] = seq + 1
            self.writer.add(process=process, **event)
            self._observe(event)
            self._give_back(process, retired=event["type"] == "info")

    def _pick_key(self, rng: random.Random, keys: list[str]) -> str | None:
        """A key with room under key_concurrency (drawn with the client's rng), reserved; None if
        every key is at its bound right now."""
        limit = self.spec.key_concurrency
        key = rng.choice(keys)
        if limit is None:
            return key
        with self._values_lock:
            order = [key] + [k for k in rng.sample(keys, len(keys)) if k != key]
            for k in order:
                if self._in_flight.get(k, 0) < limit:
                    self._in_flight[k] = self._in_flight.get(k, 0) + 1
                    return k
        return None

    def _release(self, key: str) -> None:
        if self.spec.key_concurrency is not None:
            with self._values_lock:
                self._in_flight[key] -= 1

    def _client(self, i: int) -> None:
        seed = self.spec.client_seeds[i] if i < len(self.spec.client_seeds) else f"{self.seed}:client:{i}"
        rng = random.Random(seed)
        nodes = sorted(self.urls)
        home = i % len(nodes)
        clients = {n: KVClient(self.urls[n], self.spec.op_timeout_s) for n in nodes}
        process = i
        seq = 0
        ops, weights = zip(*self.spec.mix)
        keys = [f"k{j}" for j in range(self.spec.keys)]
        interval = self.spec.clients / self.spec.rate if self.spec.rate else None
        due = time.monotonic() + (interval * i / self.spec.clients if interval else 0.0)
        for _ in range(MAX_OPS_PER_CLIENT):
            if interval is not None:
                now = time.monotonic()
                if now - due > self.spec.max_backlog_s:  # far behind: skip the missed slots
                    missed = int((now - due) / interval)
                    self.skipped += missed
                    due += missed * interval
                if self._stop.wait(max(0.0, due - now)):
                    return
            elif self._stop.is_set():
                return
            f = rng.choices(ops, weights)[0]
            key = self._pick_key(rng, keys)
            if key is None:
                self.skipped += 1
                if interval is not None:
                    due += interval
                elif self._stop.wait(0.005):
                    return
                continue
            value = self._value(rng, f, key)
            invoke = {"process": process, "type": "invoke", "f": f, "key": key, "value": value}
            if interval is not None:
                invoke["sched_ts"] = self.wall_at(due)
            self.writer.add(**invoke)
            session = (f"{self.seed}-p{process}", seq) if self.spec.sessions and f != "read" else None
            try:
                event = self._operation(clients, nodes, home, f, key, value, session)
            finally:
                self._release(key)
            if session is not None:
                seq += 1
            self.writer.add(process=process, **event)
            self._observe(event)
            if event["type"] == "info":
                process = next(self._next_process)  # the old process may still be pending forever
                seq = 0
            if interval is not None:
                due += interval
            else:
                self._stop.wait(self.spec.think_ms / 1000.0)
        self.bound_hit = True


    def _operation(self, clients: Mapping[str, KVClient], nodes: list[str], home: int, f: str, key: str,
                   value, session: tuple[str, int] | None) -> dict:
        """One operation: attempts until one answers for good or op_timeout_s is spent. Returns the
        completion event (without process).

        A client retries as a Raft client should (thesis section 6.3): after a refused connection or a
        retryable error (no leader, not the leader, leader lost, busy) it tries again, at the node
        named as leader if any, else at the next node. A write is retried after an attempt that
        may have applied (`info`) only when it carries client_id/seq, which the store de-duplicates;
        reads are always safe to retry. The outcome: ok if an attempt succeeded; fail only if the
        last attempt definitely failed and no earlier attempt may have applied; else info."""
        deadline = time.monotonic() + self.spec.op_timeout_s
        node = nodes[home]
        maybe_applied = False
        attempts = 0
        while True:
            attempts += 1
            a = clients[node].attempt(f, key, value, session, max(0.05, deadline - time.monotonic()))
            if a.type == "ok":
                break
            if a.type == "info" and f != "read":
                maybe_applied = True
            safe = a.type == "fail" or f == "read" or session is not None
            if not (self.spec.retry and a.retryable and safe) or self._stop.is_set():
                break
            pause = RETRY_BACKOFF_S[min(attempts, len(RETRY_BACKOFF_S)) - 1]
            if time.monotonic() + pause >= deadline - 0.05:
                break
            time.sleep(pause)
            if a.leader in clients and a.leader != node:
                node = a.leader
            else:
                node = nodes[(nodes.index(node) + 1) % len(nodes)]
        outcome, error = a.type, a.error
        if outcome == "fail" and maybe_applied:
            outcome, error = "info", f"{a.error} (an earlier attempt may have applied)"
        event = {"type": outcome, "f": f, "key": key, "value": a.value}
        if error:
            event["error"] = error
        if attempts > 1:
            event["attempts"] = attempts
            event["node"] = node
        return event


class StatusPoller:
    """Polls every node's status on the control plane and appends it to status.jsonl."""

    def __init__(self, statuses: Callable[[], Mapping[str, dict | None]], path: Path, interval_s: float = 0.5,
                 clock: Callable[[], float] = time.time):
        self.clock = clock
        self.statuses = statuses
        self.path = path
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-poller", daemon=True)
        self.last: dict[str, dict | None] = {}
        self.error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def poll_once(self) -> Mapping[str, dict | None]:
        sts = self.statuses()
        now = self.clock()
        with open(self.path, "a", encoding="utf-8") as fh:
            for node, st in sorted(sts.items()):
                row = {"ts": now, "node": node, "status": st if st is not None else {"error": "no answer"}}
                fh.write(json.dumps(row, separators=(",", ":")) + "\n")
        self.last = dict(sts)
        return sts

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except OSError as exc:  # the run directory vanished or the disk is full: say it once, stop
                self.error = f"status poller stopped: {exc}"
                return
            self._stop.wait(self.interval_s)
