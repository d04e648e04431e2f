"""The nemesis: the plan's faults applied to a running cluster, at their times, verified, recorded.

Owns: target selectors resolved against the cluster's state at the moment a fault fires (pure:
`resolve_target`), partition shapes and link sets for a fault (pure: `partition_cut`, `fault_links`),
`until` conditions evaluated from the agents' status (pure: `until_met`), the fault log
(faults.jsonl, one line flushed per event: intended, in effect, and the same for the end, so a crash
leaves an accurate record), and `Nemesis`, which runs a plan's faults on threads against an
`Effects` object (the real one drives chaos.toxi.LinkController and chaos.env.nodeops).

Rules: every fault is verified in effect (partitions: the reachability probe; link toxics: the
server lists them on every proxy; node faults: the container's state) or the run stops with a
FaultError (exit 4), never a silent no-op. Every `start` record carries `applied_ts` (the last call
that put the fault in place returned) and `verified_ts` (verification done), and the fault's records
carry an `effect` (chaos.fault_effect: evidence it took effect, not only started): partitions on
`start` (their verification probes), node and link faults on `stop` (status probes / timed link
probes taken right after `start`, and the boot count after the undo). In a control run
(`control=True`, `chaos run --control`) each fault is resolved, timed and held as planned but only
logged as `sham`; the effects object is never asked to apply, undo or heal anything. Concurrent partitions are applied as the union of their
cuts; the same link toxic from two overlapping faults is removed when the last of them ends.
Must not import: click, chaos.cli, chaos.runner.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from chaos import clock as clock_mod
from chaos import fault_effect
from chaos import partition as partition_mod
from chaos.errors import FaultError, FaultRefused

UNTIL_POLL_S = 0.2
RESOURCE_PARAM = {"cpu": "cpus", "memory": "limit"}  # fault kind -> its spec key
CLOCK_RATE_WINDOW_S = 2.0  # a rate fault's clock is read again this long after the first reading
LEADER_WAIT_S = 10.0
OF_WAIT_S = 10.0  # a fault naming another with `of:` waits this long for it to resolve its targets
LATE_ANSWER_S = 40.0   # a restarted node's evidence (power-loss, wipe) is awaited this much longer

# schedule kind -> LinkController op name (toxic prefix)
LINK_OPS = {"latency": "latency", "bandwidth": "bandwidth", "reset": "reset", "stall": "stall",
            "slice": "slice", "slow-close": "slow_close", "limit": "limit"}
NODE_UNDO = {"kill": "restart", "stop": "start", "pause": "unpause", "power-loss": "restart", "wipe": "start"}


def _all_at_once(op: Callable[[str], dict], nodes: list[str]) -> tuple[dict, Exception | None]:
    """Run `op` on every node at the same time (a fault on two managers is one correlated event:
    killed together, restarted together, not one after the other with the first one's boot in
    between). Returns the records of those that succeeded and the first error, after all ended."""
    if len(nodes) <= 1:
        try:
            return {n: op(n) for n in nodes}, None
        except Exception as exc:  # noqa: BLE001 -- handed back to the caller, which raises it
            return {}, exc
    done, error = {}, None
    with ThreadPoolExecutor(max_workers=len(nodes), thread_name_prefix="node-op") as pool:
        futures = {n: pool.submit(op, n) for n in nodes}
        for n in nodes:
            try:
                done[n] = futures[n].result()
            except Exception as exc:  # noqa: BLE001
                error = error or exc
    return done, error


# -- the cluster as the nemesis sees it ---------------------------------------------------------


@dataclass(frozen=True)
class View:
    """Node ids and the latest statuses (None: no answer)."""

    managers: tuple[str, ...]
    workers: tuple[str, ...]
    statuses: Mapping[str, dict | None] = field(default_factory=dict)
    fired: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # fault name -> nodes it chose

    @property
    def nodes(self) -> list[str]:
        return list(self.managers) + list(self.workers)

    @property
    def leader(self) -> str | None:
        """The manager that says it leads in the highest term; else the leader most managers name."""
        leading = [(s.get("term") or 0, m) for m in self.managers
                   if (s := self.statuses.get(m)) and s.get("role") == "leader"]
        if leading:
            return max(leading)[1]
        named = [s.get("leader") for m in self.managers if (s := self.statuses.get(m)) and s.get("leader")]
        if named and named.count(max(set(named), key=named.count)) * 2 > len(self.managers):
            return max(set(named), key=named.count)
        return None

    @property
    def max_term(self) -> int:
        return max((s.get("term") or 0 for m in self.managers if (s := self.statuses.get(m))), default=0)


class NoLeader(Exception):
    """A selector needs the leader and there is none right now."""


class ChangeSkipped(Exception):
    """A membership fault the cluster refused for a reason of its own state (see
    Nemesis._prepare_membership): recorded `skipped` with `details`, not a harness error."""

    def __init__(self, reason: str, details: dict):
        super().__init__(reason)
        self.reason, self.details = reason, details


def _count(spec: Any, n: int) -> int:
    if spec == "all":
        return n
    if spec == "one":
        return min(1, n)
    if spec == "minority":
        return (n - 1) // 2 if n > 1 else 0
    if spec == "majority":
        return n // 2 + 1
    return min(int(spec), n)


def _candidates(role: str, view: View) -> list[str]:
    if role == "all":
        return view.nodes
    if role == "managers":
        return list(view.managers)
    if role == "workers":
        return list(view.workers)
    leader = view.leader
    if leader is None:
        raise NoLeader(role)
    if role == "leader":
        return [leader]
    if role == "followers":
        return [m for m in view.managers if m != leader]
    raise ValueError(f"unknown role {role!r}")


def resolve_target(target: Any, view: View, rng: random.Random) -> list[str]:
    """A selector (plan JSON) -> node ids in id order. A list is the union of its items, each drawn
    from the nodes not chosen yet (so 'leader + one follower' is two nodes). An object's `exclude`
    (any selector) is resolved first and removed from its candidates before `count` and `pick`."""
    items = target if isinstance(target, list) else [target]
    chosen: list[str] = []
    order = {n: i for i, n in enumerate(view.nodes)}
    for t in items:
        if isinstance(t, str):
            if t in ("leader", "followers", "managers", "workers", "all"):
                pool = _candidates(t, view)
            elif t in order:
                pool = [t]
            else:
                raise ValueError(f"target {t!r} names no node of this cluster")
            chosen += [n for n in pool if n not in chosen]
            continue
        if t.get("of") is not None:
            if t["of"] not in view.fired:
                raise FaultError(f"target `of: {t['of']}`: that fault has not fired yet")
            pool = [n for n in view.fired[t["of"]] if n in order]
        else:
            pool = list(t.get("nodes") or _candidates(t.get("role", "all"), view))
        if t.get("exclude") is not None:  # resolved now, with the same view and seed, before count/pick
            excluded = resolve_target(t["exclude"], view, rng)
            pool = [n for n in pool if n not in excluded]
        pool = [n for n in pool if n not in chosen]
        k = _count(t.get("count", "all"), len(pool))
        if t.get("pick", "random") == "first":
            picked = pool[:k]
        else:
            picked = rng.sample(sorted(pool, key=order.get), k)
        chosen += picked
    return sorted(chosen, key=lambda n: order.get(n, 1 << 30))


def partition_cut(spec: Mapping, view: View, rng: random.Random) -> tuple[frozenset, list]:
    """(cut set, targets as recorded) for a partition fault spec."""
    nodes = view.nodes
    if "isolate" in spec:
        alone = resolve_target(spec["isolate"], view, rng)
        return partition_mod.groups(nodes, [[n] for n in alone], rest="own"), alone
    if "groups" in spec:
        rest = spec.get("rest", "own")
        cut = partition_mod.groups(nodes, spec["groups"], rest=rest)
        return cut, [list(g) for g in spec["groups"]]
    if "one-way" in spec:
        src = resolve_target(spec["one-way"]["from"], view, rng)
        dst = [n for n in resolve_target(spec["one-way"]["to"], view, rng) if n not in src]
        return partition_mod.one_way(src, dst), [src, dst]
    among = resolve_target(spec.get("among", "all"), view, rng)
    shape = spec["shape"]
    if shape == "halves":
        cut = partition_mod.halves(among, rng)
    elif shape == "majorities-ring":
        cut = partition_mod.majorities_ring(among, rng)
    elif shape == "bridge":
        if spec.get("bridge") is not None:
            b = resolve_target(spec["bridge"], view, rng)[0]
            others = sorted(n for n in among if n != b)
            rng.shuffle(others)
            k = len(others) // 2
            cut = frozenset(x for x in partition_mod.groups(among, [others[:k], others[k:], [b]], rest=None)
                            if b not in x)
        else:
            cut = partition_mod.bridge(among, rng)
    else:
        raise ValueError(f"unknown partition shape {shape!r}")
    return cut, _components(among, cut)


def _components(nodes: list[str], cut: frozenset) -> list[list[str]]:
    """Groups as recorded: each node's view (who it hears both ways), deduplicated."""
    seen, out = set(), []
    for n, vis in sorted(partition_mod.visible(nodes, cut).items()):
        key = tuple(sorted(vis))
        if key not in seen:
            seen.add(key)
            out.append(list(key))
    return out


def fault_links(spec: Mapping, view: View, rng: random.Random) -> tuple[list[tuple[str, str]], list[str]]:
    """(directed peer links, targets) for a link fault: the targets' links to/from `peers`."""
    targets = resolve_target(spec["target"], view, rng)
    peers = resolve_target(spec.get("peers", "all"), view, rng)
    direction = spec.get("direction", "both")
    links: list[tuple[str, str]] = []
    for t in targets:
        for p in peers:
            if p == t:
                continue
            if direction in ("out", "both"):
                links.append((t, p))
            if direction in ("in", "both") and (p, t) not in links:
                links.append((p, t))
    return sorted(set(links)), targets


def until_met(cond: Mapping, view: View, ctx: Mapping) -> tuple[bool, str]:
    """Is the condition true in this view? `ctx`: start_term, targets, store (the leader's /store or None)."""
    kind = cond["condition"]
    if kind == "new-leader":
        leader = view.leader
        st = view.statuses.get(leader) if leader else None
        term = (st or {}).get("term") or 0
        ok = leader is not None and term > ctx.get("start_term", 0) and (st or {}).get("role") == "leader"
        return ok, f"leader {leader} term {term} (fault began in term {ctx.get('start_term')})"
    if kind == "term-reached":
        return view.max_term >= cond["term"], f"highest term {view.max_term}"
    if kind == "target-lags":
        leader = view.leader
        commit = ((view.statuses.get(leader) or {}).get("commit_index") or 0) if leader else 0
        lags = []
        for t in ctx.get("targets", []):
            applied = (view.statuses.get(t) or {}).get("applied_index")
            if applied is not None and commit - applied >= cond["entries"]:
                lags.append(f"{t} {commit - applied} behind")
        return bool(lags), ", ".join(lags) or f"no target {cond['entries']} entries behind commit {commit}"
    if kind == "worker-down":
        leader = view.leader
        states = ((view.statuses.get(leader) or {}).get("workers") or {}) if leader else {}
        workers = [t for t in ctx.get("targets", []) if t in view.workers]
        down = [w for w in workers if states.get(w) == "down"]
        return bool(workers) and len(down) == len(workers), f"down: {down} of {workers}"
    if kind == "replicas-restored":
        store = ctx.get("store")
        if not isinstance(store, dict):
            return False, "no store from the leader"
        nodes = store.get("nodes") or {}
        live = {w for w, rec in nodes.items() if isinstance(rec, dict) and rec.get("state") == "ready"}
        live -= set(ctx.get("targets", []))
        services = store.get("services") or {}
        tasks = store.get("tasks") or {}
        short = []
        for name, svc in sorted(services.items()):
            want = (svc or {}).get("replicas", 0)
            running = sum(1 for t in tasks.values() if isinstance(t, dict) and t.get("service") == name
                          and t.get("state") == "running" and t.get("worker") in live)
            if running < want:
                short.append(f"{name} {running}/{want}")
        return not short and bool(services), ("every service at its replicas" if not short and services
                                              else ", ".join(short) or "no services")
    raise ValueError(f"unknown until condition {kind!r}")


# -- the record --------------------------------------------------------------------------------


class FaultLog:
    """faults.jsonl: one JSON object per line, written and flushed (and fsynced) at once."""

    def __init__(self, path, clock: Callable[[], float] = time.time):
        self._fh = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()
        self.clock = clock
        self.rows: list[dict] = []

    def write(self, **row) -> dict:
        row.setdefault("ts", self.clock())
        line = json.dumps(row, separators=(",", ":"), default=str)
        with self._lock:
            if self._fh.closed:  # the run has ended (interrupted): a straggling thread records nothing
                return row
            self._fh.write(line + "\n")
            self._fh.flush()
            try:
                os.fsync(self._fh.fileno())
            except OSError:
                pass
            self.rows.append(row)
        return row

    def close(self) -> None:
        with self._lock:
            self._fh.close()


# -- effects -----------------------------------------------------------------------------------


class Effects(Protocol):
    """What the nemesis does to the world. Each method verifies and returns a detail dict, or raises
    FaultError."""

    def view(self) -> View: ...
    def leader_store(self, leader: str) -> dict | None: ...
    def set_partition(self, cut: frozenset, mode: str) -> dict: ...
    def add_link_fault(self, op: str, links: list, params: dict) -> dict: ...
    def remove_link_fault(self, op: str, links: list) -> dict: ...
    def node_op(self, op: str, node: str) -> dict: ...
    def mark_unavailable(self, node: str, unavailable: bool) -> None: ...
    def heal_all(self) -> dict: ...
    # evidence that a fault took effect (chaos.fault_effect); an effects object without them records
    # `effective: false` ("no evidence taken"), never a pass
    def answers(self, node: str) -> dict | None: ...
    def link_probes(self, op: str, links: list, params: dict) -> list[dict]: ...
    # clock faults (chaos.clock): rewrite a node's libfaketime control file (verified), read its
    # clocks back ({"sent", "received", "clock"}), its agent's start (wall clock)
    def clock_write(self, node: str, spec: str) -> dict: ...
    def clock_read(self, node: str) -> dict | None: ...
    def clock_started(self, node: str) -> float: ...
    # cpu / memory faults: lower a container's limit (verified, record has `before` and `after`),
    # restore it (record has `after`, and `oom_killed` / `restarted` when the kernel killed it)
    def resource_limit(self, kind: str, node: str, value: Any) -> dict: ...
    # membership faults (issue 23): one change through the leader's API, waited for until committed
    # (record: `answer`, `config`, `committed`, applied_ts, verified_ts); the configuration now
    def membership_op(self, action: str, node: str, force: bool) -> dict: ...
    def membership_config(self) -> dict | None: ...
    # a node joining under a spare id (record: `node`, `committed`, `config`, applied_ts, verified_ts),
    # and a manager replaced: removed, stopped and wiped, a fresh one joined (record: `replaced`,
    # `replacement`, `steps`, `committed`, ...); `step(node, name, record)` is called after each step
    def membership_add(self, role: str, step: Callable[[str, str, dict], None]) -> dict: ...
    def membership_replace(self, node: str, step: Callable[[str, str, dict], None]) -> dict: ...
    def resource_restore(self, kind: str, node: str, before: Any) -> dict: ...


# -- running the plan ---------------------------------------------------------------------------


@dataclass
class Active:
    fid: str
    kind: str
    targets: list
    undo: Callable[[], dict]
    started: float


class Nemesis:
    """Runs the plan's faults against `effects`, recording into `log`. `start(t0)` begins the
    schedule (t0: time.monotonic() of the workload's start); `wait(timeout)` blocks until every fault
    ended; `final_heal()` ends whatever is active and heals every link, verified. The first
    FaultError stops the schedule and is re-raised by `wait`/`final_heal`."""

    def __init__(self, faults: list[dict], effects: Effects, log: FaultLog, *,
                 wall_at: Callable[[float], float] | None = None, say: Callable[[str], None] = lambda s: None,
                 control: bool = False):
        self.faults = faults
        self.control = control  # a control run: faults are planned and logged as `sham`, never applied
        self.effects = effects
        self.log = log
        self.say = say
        self.wall_at = wall_at or (lambda mono: time.time() - (time.monotonic() - mono))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._ended: dict[str, threading.Event] = {f["id"]: threading.Event() for f in faults}
        self._started: dict[str, float] = {}
        self._fired: dict[str, tuple[str, ...]] = {}
        self._ended_at: dict[str, float] = {}
        self._active: dict[str, Active] = {}
        self._effects: dict[str, Callable[[dict], dict]] = {}  # fault id -> its effect, given the undo record
        self._partitions: dict[str, tuple[frozenset, str]] = {}
        self._link_owners: dict[tuple[str, tuple], set[str]] = {}
        self._link_lock = threading.Lock()
        self._partition_lock = threading.Lock()
        self._node_owners: dict[str, tuple[str, set[str]]] = {}
        self._disk_owners: dict[str, set[str]] = {}  # disk-full: node -> faults holding it full
        self._disk_lock = threading.Lock()
        self._node_lock = threading.Lock()
        self._resource_owners: dict[tuple[str, str], tuple[Any, set[str]]] = {}  # (kind, node) -> (before, fids)
        self._resource_applied: dict[str, dict] = {}  # fault id -> per-node apply records
        self._clock_holder: dict[str, str] = {}  # node -> the clock fault whose spec it has now
        self._threads: list[threading.Thread] = []
        self.error: BaseException | None = None
        self.lateness_s: list[float] = []
        self.resolve_s: list[float] = []  # fault thread start -> targets resolved (intend-start)
        self.selector_wait_s: list[float] = []  # of resolve_s: waiting for a leader or an `of:` fault
        self.t0: float | None = None

    # -- public --

    def start(self, t0: float) -> None:
        self.t0 = t0
        timed = [f for f in self.faults if "at_s" in f["start"]]
        for f in self.faults:
            if "at_s" not in f["start"]:
                self._spawn(f)
        sched = threading.Thread(target=self._schedule, args=(timed,), name="nemesis-schedule", daemon=True)
        sched.start()
        self._threads.append(sched)

    def active(self) -> list[Active]:
        with self._lock:
            return list(self._active.values())

    def wait(self, timeout_s: float) -> bool:
        """Until every fault ended (True), an error (raised), or the timeout (False)."""
        end = time.monotonic() + timeout_s
        for f in self.faults:
            while not self._ended[f["id"]].wait(0.1):
                self._raise_if_failed()
                if time.monotonic() >= end:
                    return False
        self._raise_if_failed()
        return True

    def stop(self) -> None:
        self._stop.set()

    def final_heal(self) -> dict:
        """End every active fault (restart, unpause, remove), then heal every link (verified)."""
        self._stop.set()
        for a in self.active():
            self._end(a, reason="final heal")
        if self.control:  # nothing was applied: nothing to heal, and the effects are not touched
            return self.log.write(fault="heal", action="heal", kind="heal", targets=[],
                                  details={"control": True, "applied": False})
        rec = self.effects.heal_all()
        row = self.log.write(fault="heal", action="heal", kind="heal", targets=[], details=rec)
        return row

    def abort(self, reason: str) -> None:
        """Interrupted: record an end for every fault still active (the cluster is being removed)."""
        with self._lock:  # taken first, so no fault thread ends (and undoes) them meanwhile
            active, self._active = list(self._active.values()), {}
        self._stop.set()
        for a in active:
            self.log.write(fault=a.fid, action="stop", kind=a.kind, targets=a.targets, aborted=True,
                           details={"reason": reason})

    # -- scheduling --

    def _schedule(self, timed: list[dict]) -> None:
        for f in sorted(timed, key=lambda f: (f["start"]["at_s"], f["id"])):
            due = self.t0 + f["start"]["at_s"]
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            self._spawn(f, planned=due)

    def _spawn(self, f: dict, planned: float | None = None) -> None:
        t = threading.Thread(target=self._run_fault, args=(f, planned), name=f"nemesis-{f['id']}", daemon=True)
        with self._lock:
            self._threads.append(t)
        t.start()

    def _due(self, f: dict) -> float | None:
        st = f["start"]
        if "after" in st:
            dep = st["after"]
            while not self._ended[dep].wait(0.1):
                if self._stop.is_set():
                    return None
            return self._ended_at[dep] + st["delay_s"]
        dep = st["repeat_of"]
        while dep not in self._started:
            if self._stop.wait(0.05):
                return None
            if self._ended[dep].is_set() and dep not in self._started:
                return None
        return self._started[dep] + st["offset_s"]

    def _run_fault(self, f: dict, planned: float | None) -> None:
        try:
            if planned is None:
                planned = self._due(f)
                if planned is None:
                    return
                if self._stop.wait(max(0.0, planned - time.monotonic())):
                    return
            if self._stop.is_set():
                return
            self._lifecycle(f, planned)
        except ChangeSkipped as exc:
            self.log.write(fault=f["id"], action="skipped", kind=f["kind"], targets=[],
                           planned_ts=self.wall_at(planned), details={"reason": exc.reason, **exc.details})
            self.say(f"{f['id']}: skipped, {exc.reason}")
        except FaultError as exc:
            self.log.write(fault=f["id"], action="error", kind=f["kind"], targets=[],
                           details={"error": exc.message})
            with self._lock:
                if self.error is None:
                    self.error = exc
            self._stop.set()
        except BaseException as exc:  # noqa: BLE001 -- a bug of ours stops the schedule, visibly
            self.log.write(fault=f["id"], action="error", kind=f["kind"], targets=[],
                           details={"error": f"{type(exc).__name__}: {exc}"})
            with self._lock:
                if self.error is None:
                    self.error = exc
            self._stop.set()
        finally:
            self._ended_at.setdefault(f["id"], time.monotonic())
            self._ended[f["id"]].set()

    def _raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error

    # -- one fault --

    def _lifecycle(self, f: dict, planned: float) -> None:
        rng = random.Random(f["seed"])
        began = time.monotonic()
        self.lateness_s.append(began - planned)
        view = self.effects.view()
        waited = 0.0  # the selector's wait (no leader during an election; an `of:` fault not yet fired)
        if _needs_leader(f["spec"]) and view.leader is None:
            w0 = time.monotonic()
            view = self._await_leader()
            waited += time.monotonic() - w0
            if view is None:
                self.log.write(fault=f["id"], action="skipped", kind=f["kind"], targets=[],
                               planned_ts=self.wall_at(planned),
                               details={"reason": f"no leader within {LEADER_WAIT_S:g} s to resolve the target"})
                self.say(f"{f['id']}: skipped, no leader to target")
                return
        start_term = view.max_term
        w0 = time.monotonic()
        self._await_referenced(f)
        waited += time.monotonic() - w0
        with self._lock:
            view = dataclasses.replace(view, fired=dict(self._fired))
        targets, apply, undo, measure = self._prepare(f, view, rng)
        resolved = time.monotonic()
        self.resolve_s.append(resolved - began)
        self.selector_wait_s.append(waited)
        self._mark_fired(f, targets)
        if self.control:
            self._sham(f, planned, targets, view, start_term)
            return
        self.log.write(fault=f["id"], action="intend-start", kind=f["kind"], targets=targets,
                       planned_ts=self.wall_at(planned), lateness_s=round(began - planned, 4),
                       resolve_s=round(resolved - began, 4), selector_wait_s=round(waited, 4),
                       details={"selector": _selector(f["spec"]), "leader": view.leader, "term": start_term})
        intended = time.time()
        details = apply()
        applied_ts, verified_ts = _stamps(details, self.log.clock)
        effect = details.pop("effect", None)
        with self._lock:
            self._started[f["id"]] = began
            self._active[f["id"]] = Active(f["id"], f["kind"], targets, undo, began)
            flat = tuple(n for t in targets for n in (t if isinstance(t, list) else [t]))
            for key in {f["id"], f.get("group") or f["id"], f["id"].rsplit(".", 1)[0]}:
                self._fired[key] = flat  # `of: NAME` targets; a repeated fault: its latest firing
        self.log.write(fault=f["id"], action="start", kind=f["kind"], targets=targets, intended_ts=intended,
                       applied_ts=applied_ts, verified_ts=verified_ts, **({"effect": effect} if effect else {}),
                       details=details)
        self.say(f"{f['id']}: {f['kind']} on {_fmt(targets)} in effect")
        since = time.monotonic()
        if measure is not None:
            self._effects[f["id"]] = _evidence(measure, view)
        until_rec = self._hold(f, start_term, targets, since)
        with self._lock:
            active = self._active.get(f["id"])
        if active is not None:
            self._end(active, reason="until" if until_rec else "for", until=until_rec)

    def _mark_fired(self, f: dict, targets: list) -> None:
        """`of: NAME` may name this fault from the moment its targets are resolved: a later fault
        must not depend on how long this one takes to apply (a pause takes 0.5 s on a busy
        machine, and a partition planned 0.4 s after it found it 'not fired yet')."""
        flat = tuple(n for t in targets for n in (t if isinstance(t, list) else [t]))
        with self._lock:
            for key in {f["id"], f.get("group") or f["id"], f["id"].rsplit(".", 1)[0]}:
                self._fired[key] = flat  # `of: NAME` targets; a repeated fault: its latest firing

    def _await_referenced(self, f: dict) -> None:
        """Wait (at most OF_WAIT_S) until every fault this one names with `of:` has resolved its
        targets, when such a fault exists and has not ended without firing: the plan put it first,
        and a fault thread running late on a busy machine must not turn that order into a harness
        error. A name that never fires is still the FaultError `resolve_target` raises."""
        names = set(_of_names(f["spec"]))
        if not names:
            return
        def pending() -> list[str]:
            with self._lock:
                out = []
                for name in names:
                    if name in self._fired:
                        continue
                    peers = [g for g in self.faults if name in (g["id"], g.get("group"), g["id"].rsplit(".", 1)[0])
                             and g["id"] != f["id"]]
                    if any(not self._ended[g["id"]].is_set() for g in peers):
                        out.append(name)
                return out
        deadline = time.monotonic() + OF_WAIT_S
        while pending() and time.monotonic() < deadline:
            if self._stop.wait(0.02):
                return

    def _sham(self, f: dict, planned: float, targets: list, view: View, start_term: int) -> None:
        """A control run: the fault is resolved, timed and held like a real one, and logged as `sham`
        (the targets it would have had), but nothing is applied (the effects are only read)."""
        began = time.monotonic()
        with self._lock:
            self._started[f["id"]] = began
            flat = tuple(n for t in targets for n in (t if isinstance(t, list) else [t]))
            for key in {f["id"], f.get("group") or f["id"], f["id"].rsplit(".", 1)[0]}:
                self._fired[key] = flat
        self.log.write(fault=f["id"], action="sham", kind=f["kind"], targets=targets,
                       planned_ts=self.wall_at(planned),
                       details={"would": "start", "selector": _selector(f["spec"]), "leader": view.leader,
                                "term": start_term, "applied": False})
        self.say(f"{f['id']}: {f['kind']} on {_fmt(targets)} NOT applied (control run)")
        until_rec = self._hold(f, start_term, targets, began)
        self.log.write(fault=f["id"], action="sham", kind=f["kind"], targets=targets,
                       details={"would": "stop", "reason": "until" if until_rec else "for", "applied": False,
                                **({"until": until_rec} if until_rec else {})})
        self._ended_at[f["id"]] = time.monotonic()

    def _hold(self, f: dict, start_term: int, targets: list, since: float | None = None) -> dict | None:
        if f["for_s"] is not None:  # held `for` from `since` (the start record), not after the evidence
            spent = time.monotonic() - since if since is not None else 0.0
            self._stop.wait(max(0.0, f["for_s"] - spent))
            return None
        cond = f["until"]
        flat = [n for t in targets for n in (t if isinstance(t, list) else [t])]
        end = time.monotonic() + f["max_s"]
        t_start = time.monotonic()
        detail = ""
        while not self._stop.is_set():
            view = self.effects.view()
            ctx = {"start_term": start_term, "targets": flat}
            if cond["condition"] == "replicas-restored" and view.leader:
                ctx["store"] = self.effects.leader_store(view.leader)
            met, detail = until_met(cond, view, ctx)
            if met:
                return {**cond, "met": True, "after_s": round(time.monotonic() - t_start, 3),
                        "met_ts": time.time(), "detail": detail}
            if time.monotonic() >= end:
                return {**cond, "met": False, "max_s": f["max_s"], "detail": detail}
            self._stop.wait(UNTIL_POLL_S)
        return {**cond, "met": False, "interrupted": True, "detail": detail}

    def _end(self, a: Active, reason: str, until: dict | None = None) -> None:
        with self._lock:
            if self._active.pop(a.fid, None) is None:
                return
        self.log.write(fault=a.fid, action="intend-stop", kind=a.kind, targets=a.targets,
                       details={"reason": reason, **({"until": until} if until else {})})
        intended = time.time()
        details = a.undo()
        with self._lock:
            judge = self._effects.pop(a.fid, None)
        effect = _judged(judge, details)
        self.log.write(fault=a.fid, action="stop", kind=a.kind, targets=a.targets, intended_ts=intended,
                       **({"effect": effect} if effect else {}),
                       details={**details, "reason": reason, **({"until": until} if until else {})})
        self._ended_at[a.fid] = time.monotonic()
        self.say(f"{a.fid}: {a.kind} ended ({reason})")

    def _await_leader(self) -> View | None:
        end = time.monotonic() + LEADER_WAIT_S
        while time.monotonic() < end and not self._stop.is_set():
            view = self.effects.view()
            if view.leader is not None:
                return view
            self._stop.wait(0.2)
        return None

    def _prepare(self, f: dict, view: View, rng: random.Random):
        kind, spec, fid = f["kind"], f["spec"], f["id"]
        eff = self.effects
        if kind == "partition":
            cut, targets = partition_cut(spec, view, rng)
            mode = spec.get("mode", "blackhole")

            def apply():
                with self._lock:
                    self._partitions[fid] = (cut, mode)
                rec = self._apply_partitions()
                probed = rec.pop("probed", None)
                rec["effect"] = (fault_effect.partition_effect(cut, probed.get("cut", ()), probed.get("open", ()),
                                                               probed.get("dropped", ()))
                                 if isinstance(probed, dict) else NO_EVIDENCE)
                return rec

            def undo():
                with self._lock:
                    self._partitions.pop(fid, None)
                rec = self._apply_partitions()
                rec.pop("probed", None)
                return rec

            return targets, apply, undo, None
        if kind in LINK_OPS or kind == "flaky":
            links, targets = fault_links(spec, view, rng)
            if kind == "flaky":
                op = f"flaky-{spec.get('kind', 'cut')}"
                params = {"toxicity": spec["toxicity"], "kind": spec.get("kind", "cut"), **(spec.get("params") or {})}
            else:
                op = LINK_OPS[kind]
                params = {k: v for k, v in spec.items()
                          if k not in ("fault", "target", "peers", "direction", "name")}
            def apply():
                with self._link_lock:  # add and remove of shared toxics never interleave
                    for link in links:
                        self._link_owners.setdefault((op, link), set()).add(fid)
                    return eff.add_link_fault(op, links, params)

            def undo():
                with self._link_lock:
                    free = []
                    for link in links:
                        owners = self._link_owners.get((op, link), set())
                        owners.discard(fid)
                        if not owners:
                            self._link_owners.pop((op, link), None)
                            free.append(link)
                    kept = len(links) - len(free)
                    rec = eff.remove_link_fault(op, free) if free else {"links": 0}
                    if kept:
                        rec["kept"] = kept  # still owned by another active fault of the same kind
                    return rec

            def measure(view: View):
                probes = _call(eff, "link_probes", op, links, params)
                if probes is None:
                    return lambda _undo: NO_EVIDENCE
                found = fault_effect.link_effect(op, params, probes)
                return lambda _undo: found

            return targets, apply, undo, measure
        if kind == "disk-full":
            return self._prepare_disk_full(fid, spec, view, rng)
        if kind in NODE_UNDO:
            targets = resolve_target(spec["target"], view, rng)
            if not targets:
                raise FaultError(f"{fid}: the target {spec['target']!r} resolved to no node")
            applied: dict[str, dict] = {}   # this fault's own apply records (a wipe's evidence)
            if kind == "wipe" and set(targets) - set(view.workers):
                raise FaultError(f"{fid}: wipe resolved to manager(s) {sorted(set(targets) - set(view.workers))}: "
                                 "workers only (a lost manager is replaced: `fault: membership, action: replace`)")

            def apply():
                out = {}
                with self._node_lock:  # a node already down by another fault is shared, not hit twice
                    todo = []
                    for n in targets:
                        held = self._node_owners.get(n)
                        if held is None:
                            todo.append(n)
                        else:
                            held[1].add(fid)
                            out[n] = {"op": kind, "shared": True, "already": held[0],
                                      "by": sorted(held[1] - {fid})}
                    for n in todo:
                        eff.mark_unavailable(n, True)  # before: no verify probes a dying node
                    done, error = _all_at_once(lambda n: eff.node_op(kind, n), todo)
                    applied.update(done)
                    for n, rec in done.items():
                        out[n] = rec
                        self._node_owners[n] = (kind, {fid})
                    if error is not None:
                        raise error
                return {"nodes": out}

            def undo():
                out = {}
                with self._node_lock:
                    todo = {}
                    for n in targets:
                        op, owners = self._node_owners.get(n, (kind, set()))
                        owners.discard(fid)
                        if owners:
                            out[n] = {"kept": True, "still_held_by": sorted(owners)}
                            continue
                        self._node_owners.pop(n, None)
                        todo[n] = op
                    done, error = _all_at_once(lambda n: eff.node_op(NODE_UNDO[todo[n]], n), list(todo))
                    for n, rec in done.items():
                        out[n] = rec
                        eff.mark_unavailable(n, False)  # after: it answers again
                    if error is not None:
                        raise error
                return {"nodes": out}

            def measure(view: View):
                answers, error = _all_at_once(lambda n: _call(eff, "answers", n, default=NO_PROBE), targets)
                if error is not None or any(a is NO_PROBE for a in answers.values()):
                    down = dict(NO_EVIDENCE, why=f"status probes failed: {error}" if error else NO_EVIDENCE["why"])
                else:
                    down = fault_effect.node_down_effect(answers)
                before = {n: (view.statuses.get(n) or {}).get("boot") for n in targets}
                if kind == "wipe":
                    return lambda undo_rec: fault_effect.wipe_effect(down, applied, self._late_answers(undo_rec, targets))
                if kind == "power-loss":
                    return lambda undo_rec: fault_effect.power_loss_effect(down, before,
                                                                           self._late_answers(undo_rec, targets))
                return lambda undo_rec: _node_effect(down, before, undo_rec, kind)

            return targets, apply, undo, measure
        if kind == "clock":
            return self._prepare_clock(f, view, rng)
        if kind == "membership":
            return self._prepare_membership(f, view, rng)
        if kind in RESOURCE_PARAM:
            return self._prepare_resource(f, view, rng)
        raise ValueError(f"unknown fault kind {kind!r}")

    def _prepare_membership(self, f: dict, view: View, rng: random.Random):
        """A configuration change (issue 23): each target in turn through the leader's API, waited
        for until the configuration shows it committed (Effects.membership_op; a refusal or no
        commit in time is a FaultError). `add`: a new node under a spare id (no target;
        Effects.membership_add). `replace`: each target removed, stopped and wiped, and a fresh
        manager joined under a new id (Effects.membership_replace); every step is written to
        faults.jsonl as it is done (action `step`), so a replace that fails half-way shows how far
        it got. One refusal is the cluster's own business, not the harness's: `not-found` for a
        target chosen by role from the nodes' own status (`remove: leader` picking a node that
        reports itself leader while the leader's configuration does not list it, e.g. a removed
        leader that kept leading): the fault is recorded `skipped` with the answer (ChangeSkipped),
        the run goes on and the checks judge what the cluster did; its `fault-effective`
        expectation is then never observed, so the run is not VALID through it. Nothing is undone
        when the fault ends; the undo records the configuration then. Effect: every change was seen
        committed."""
        spec, fid = f["spec"], f["id"]
        action, force = spec["action"], bool(spec.get("force", True))
        if action == "add":
            targets: list = []
        else:
            targets = resolve_target(spec["target"], view, rng)
            if not targets:
                raise FaultError(f"{fid}: the target {spec['target']!r} resolved to no node")
        if action == "replace" and set(targets) - set(view.managers):
            raise FaultError(f"{fid}: replace resolved to {sorted(set(targets) - set(view.managers))}, not "
                             "manager(s): only a manager is replaced (a worker is wiped: `fault: wipe`)")
        eff = self.effects
        done: dict[str, dict] = {}
        by_role = _chosen_by_role(spec.get("target"))

        def step(node: str, name: str, rec: dict) -> None:
            self.log.write(fault=fid, action="step", kind="membership", targets=[node],
                           details={"step": name, **rec})

        def apply():
            out = {}
            if action == "add":
                rec = eff.membership_add(spec.get("role") or "manager", step)
                out[rec["node"]] = done[rec["node"]] = rec
                last = rec
            for n in targets:
                try:
                    out[n] = (eff.membership_replace(n, step) if action == "replace"
                              else eff.membership_op(action, n, force))
                except FaultRefused as exc:
                    if exc.code != "not-found" or not by_role:
                        raise
                    raise ChangeSkipped(f"the cluster refused {action} {n} (chosen by role "
                                        f"{spec['target']!r}): not-found",
                                        {"refused": exc.message, "node": n, "done": dict(done)}) from exc
                done[n] = out[n]
                last = out[n]
            rec = {"action": action, "nodes": out, "applied_ts": last.get("applied_ts"),
                   "verified_ts": last.get("verified_ts"), "config": last.get("config")}
            if action in ("add", "replace"):
                rec["joined"] = [r["node"] if action == "add" else r["replacement"] for r in out.values()]
            return rec

        def undo():
            return {"undone": False, "config": _call(eff, "membership_config", default=None)}

        def measure(view: View):
            def judge(_undo_rec) -> dict:
                seen = {n: bool((r or {}).get("committed")) for n, r in done.items()}
                ok = bool(seen) and all(seen.values())
                return {"effective": ok, "why": f"{action} seen committed in the configuration" if ok
                        else f"{action} not seen committed for {sorted(n for n, v in seen.items() if not v)}",
                        "evidence": {"committed": seen}}
            return judge

        return targets, apply, undo, measure

    def _prepare_resource(self, f: dict, view: View, rng: random.Random):
        """cpu / memory: the targets' container limits lowered through the engine (verified by
        reading them back), restored when the last fault holding them ends; a node the kernel
        OOM-killed meanwhile is recorded as such and started again by the undo."""
        spec, fid, kind, eff = f["spec"], f["id"], f["kind"], self.effects
        targets = resolve_target(spec["target"], view, rng)
        if not targets:
            raise FaultError(f"{fid}: the target {spec['target']!r} resolved to no node")
        value = spec[RESOURCE_PARAM[kind]]

        def apply():
            with self._node_lock:
                def one(n: str) -> dict:
                    rec = eff.resource_limit(kind, n, value)
                    held = self._resource_owners.get((kind, n))
                    if held is None:
                        self._resource_owners[(kind, n)] = (rec.get("before"), {fid})
                    else:
                        held[1].add(fid)
                        rec["shared_with"] = sorted(held[1] - {fid})
                    return rec
                done, error = _all_at_once(one, targets)
            if error is not None:
                raise error
            return {"nodes": done}

        def undo():
            out = {}
            with self._node_lock:
                todo = {}
                for n in targets:
                    before, owners = self._resource_owners.get((kind, n), (None, set()))
                    owners.discard(fid)
                    if owners:
                        out[n] = {"kept": True, "still_held_by": sorted(owners)}
                        continue
                    self._resource_owners.pop((kind, n), None)
                    todo[n] = before
                done, error = _all_at_once(lambda n: eff.resource_restore(kind, n, todo[n]), list(todo))
            out.update(done)
            if error is not None:
                raise error
            return {"nodes": out}

        def measure(view: View):
            def judge(undo_rec: dict) -> dict:
                return fault_effect.resource_effect(kind, value, self._resource_applied.get(fid, {}),
                                                    (undo_rec or {}).get("nodes") or {})
            return judge

        def apply_and_keep():
            rec = apply()
            self._resource_applied[fid] = rec["nodes"]
            return rec

        return targets, apply_and_keep, undo, measure

    def _prepare_clock(self, f: dict, view: View, rng: random.Random):
        """A clock fault (chaos.clock): the targets' libfaketime control files rewritten at once,
        verified by the spec each node's agent reads back; a strobe flips on its own thread; the
        evidence is the nodes' clocks read back through their API (before, right after, and for a
        rate a second time later)."""
        spec, fid, eff = f["spec"], f["id"], self.effects
        targets = resolve_target(spec["target"], view, rng)
        if not targets:
            raise FaultError(f"{fid}: the target {spec['target']!r} resolved to no node")
        offset = float(spec.get("offset") or 0.0)
        rate = spec.get("rate")
        strobe = spec.get("strobe")
        state: dict = {"before": {}, "flips": 0, "flip_errors": []}
        stop_strobe = threading.Event()

        def spec_for(node: str, extra: float = 0.0) -> str:
            if rate is not None and rate != 1.0:
                return clock_mod.rate_spec(offset + extra, float(rate), time.time(), eff.clock_started(node))
            return clock_mod.offset_spec(offset + extra)

        def write_all(make: Callable[[str], str], nodes: list[str] | None = None) -> tuple[dict, Exception | None]:
            return _all_at_once(lambda n: eff.clock_write(n, make(n)), targets if nodes is None else nodes)

        def mine() -> list[str]:
            """The targets whose clock this fault still holds (a later clock fault on the same node
            takes it over: its end, not this one's, brings the node back to real time)."""
            with self._lock:
                return [n for n in targets if self._clock_holder.get(n) == fid]

        def apply():
            before, _err = _all_at_once(eff.clock_read, targets)
            state["before"] = before
            first = float(strobe["jump"]) if strobe else 0.0
            with self._lock:
                for n in targets:
                    self._clock_holder[n] = fid
            done, error = write_all(lambda n: spec_for(n, first))
            if error is not None:
                raise error if isinstance(error, FaultError) else FaultError(f"{fid}: clock: {error}")
            if strobe:
                t = threading.Thread(target=flip, name=f"strobe-{fid}", daemon=True)
                state["thread"] = t
                t.start()
            return {"nodes": done, "asked": _asked()}

        def flip():
            high = True
            while not stop_strobe.wait(float(strobe["every"])) and not self._stop.is_set():
                high = not high
                held = mine()
                if not held:
                    return
                _done, error = write_all(lambda n: spec_for(n, float(strobe["jump"]) if high else 0.0), held)
                state["flips"] += 1
                if error is not None and len(state["flip_errors"]) < 5:
                    state["flip_errors"].append(str(error))

        def undo():
            stop_strobe.set()
            t = state.get("thread")
            if t is not None:
                t.join(timeout=10.0)
            held = mine()
            done, error = write_all(lambda n: clock_mod.NEUTRAL_SPEC, held)
            with self._lock:
                for n in held:
                    if self._clock_holder.get(n) == fid:
                        del self._clock_holder[n]
            if error is not None:
                raise error if isinstance(error, FaultError) else FaultError(f"{fid}: clock undo: {error}")
            out: dict = {"nodes": {**{n: {"kept": True, "taken_over_by": self._clock_holder.get(n)}
                                      for n in targets if n not in held}, **done}}
            if strobe:
                out.update(flips=state["flips"], flip_errors=state["flip_errors"])
            return out

        def _asked() -> dict:
            return {"offset_s": offset + (float(strobe["jump"]) if strobe else 0.0),
                    **({"rate": float(rate)} if rate is not None else {}),
                    **({"strobe": strobe} if strobe else {})}

        def measure(view: View):
            after, _err = _all_at_once(eff.clock_read, targets)
            readings = {n: {"before": state["before"].get(n), "after": [after.get(n)]} for n in targets}
            if rate is not None and rate != 1.0:
                wait = min(CLOCK_RATE_WINDOW_S, max(0.2, (f["for_s"] or f["max_s"] or 1.0) / 2))
                self._stop.wait(wait)
                later, _err = _all_at_once(eff.clock_read, targets)
                for n in targets:
                    readings[n]["after"].append(later.get(n))
            found = clock_mod.clock_effect(_asked(), readings)
            return lambda _undo: found

        return targets, apply, undo, measure

    def _late_answers(self, undo_rec: dict | None, targets: list[str]) -> dict:
        """The undo's per-node records, where a restarted node did not answer within the restart's
        wait (a starved machine) completed from its status asked again for up to LATE_ANSWER_S: the
        evidence a power loss or a wipe took effect is in what the node says once it is back."""
        nodes = {n: dict(r) for n, r in ((undo_rec or {}).get("nodes") or {}).items() if isinstance(r, dict)}
        waiting = [n for n in targets if n in nodes and "boot" not in nodes[n] and not nodes[n].get("kept")]
        end = time.monotonic() + LATE_ANSWER_S
        while waiting and time.monotonic() < end:
            for n in list(waiting):
                st = _call(self.effects, "answers", n)
                if isinstance(st, dict):
                    nodes[n].update(boot=st.get("boot"), late_answer_ts=time.time(),
                                    **({"power_loss": st["power_loss"]} if isinstance(st.get("power_loss"), dict) else {}))
                    waiting.remove(n)
            if waiting:
                time.sleep(0.5)
        return nodes

    def _prepare_disk_full(self, fid: str, spec: Mapping, view: View, rng: random.Random):
        """disk-full: each target's data volume filled (verified: free space read back, a write probe
        got ENOSPC); the node keeps running. A node already filled by another fault is shared: the
        last fault to end frees it. Evidence: the fill and free probes, and whether the agent saw
        its writes fail (its status while full)."""
        eff = self.effects
        targets = resolve_target(spec["target"], view, rng)
        if not targets:
            raise FaultError(f"{fid}: the target {spec['target']!r} resolved to no node")
        filled: dict[str, dict] = {}

        def apply():
            out = {}
            with self._disk_lock:  # never behind a node fault (a restart can take seconds)
                todo = []
                for n in targets:
                    owners = self._disk_owners.setdefault(n, set())
                    if owners:
                        out[n] = {"op": "disk-full", "shared": True, "by": sorted(owners)}
                    else:
                        todo.append(n)
                    owners.add(fid)
                done, error = _all_at_once(lambda n: eff.node_op("disk-full", n), todo)
                out.update(done)
                filled.update(done)
                if error is not None:  # undo what was filled: a failed fault leaves no ballast behind
                    for n in targets:
                        self._disk_owners.get(n, set()).discard(fid)
                    _all_at_once(lambda n: eff.node_op("disk-free", n), list(done))
                    raise error
            return {"nodes": out}

        def undo():
            out = {}
            with self._disk_lock:  # never behind a node fault (a restart can take seconds)
                todo = []
                for n in targets:
                    owners = self._disk_owners.get(n, set())
                    owners.discard(fid)
                    if owners:
                        out[n] = {"kept": True, "still_held_by": sorted(owners)}
                    else:
                        self._disk_owners.pop(n, None)
                        todo.append(n)
                done, error = _all_at_once(lambda n: eff.node_op("disk-free", n), todo)
                out.update(done)
                if error is not None:
                    raise error
            return {"nodes": out}

        def measure(view: View):
            answers, _err = _all_at_once(lambda n: _call(eff, "answers", n, default=None), targets)
            return lambda undo_rec: fault_effect.disk_full_effect(filled, (undo_rec or {}).get("nodes") or {},
                                                                   answers)

        return targets, apply, undo, measure

    def _apply_partitions(self) -> dict:
        # One at a time, the union taken inside the lock: two partitions changing at once must not
        # apply (and verify) each other's stale union (the random soak saw a heal verified against a
        # union that another fault had already changed).
        with self._partition_lock:
            with self._lock:
                parts = list(self._partitions.values())
            cut = frozenset().union(*(c for c, _ in parts)) if parts else frozenset()
            mode = "refuse" if parts and all(m == "refuse" for _, m in parts) else "blackhole"
            return self.effects.set_partition(cut, mode)


NO_EVIDENCE = {"effective": False, "why": "no evidence taken (the effects object cannot probe)"}
NO_PROBE = object()


def _call(eff: Any, method: str, *args, default: Any = None) -> Any:
    """An evidence method of the effects object, or `default` when it has none."""
    fn = getattr(eff, method, None)
    return default if fn is None else fn(*args)


def _evidence(measure: Callable, view: View) -> Callable[[dict], dict]:
    """Take a fault's evidence while it is on; a failure to take it is recorded as no evidence."""
    try:
        return measure(view)
    except Exception as exc:  # noqa: BLE001 -- evidence, not the fault: recorded, never a pass
        found = {"effective": False, "why": f"evidence could not be taken: {type(exc).__name__}: {exc}"}
        return lambda _undo: found


def _judged(judge: Callable[[dict], dict] | None, undo_rec: dict) -> dict | None:
    if judge is None:
        return None
    try:
        return judge(undo_rec)
    except Exception as exc:  # noqa: BLE001
        return {"effective": False, "why": f"evidence could not be judged: {type(exc).__name__}: {exc}"}


def _node_effect(down: dict, boot_before: dict, undo_rec: dict, kind: str) -> dict:
    """A node fault took effect if every target stopped answering while it was on, or (kill, stop)
    every target came back with a higher boot count."""
    nodes = (undo_rec or {}).get("nodes") or {}
    after = {n: r.get("boot") for n, r in nodes.items() if isinstance(r, dict) and "boot" in r}
    if kind == "power-loss":  # rebooted AND cut back to the synced lengths, on every target
        return fault_effect.power_loss_effect(down, boot_before, nodes)
    back = fault_effect.node_back_effect(boot_before, after) if kind in ("kill", "stop") and after else None
    effective = bool(down.get("effective")) or bool(back and back["effective"])
    why = down.get("why") if down.get("effective") or not back else back["why"]
    return {"effective": effective, "why": why, "down": down, **({"back": back} if back else {})}


def _stamps(details: dict, clock: Callable[[], float]) -> tuple[float, float]:
    """(applied_ts, verified_ts) of a start: the effects' own (run clock; for several nodes the
    latest), else now for both. The top-level pair is moved out of `details` onto the record."""
    top = {k: details.pop(k) for k in ("applied_ts", "verified_ts") if k in details}  # lifted to the record
    recs = [top] + [r for r in ((details.get("nodes") or {}).values()) if isinstance(r, dict)]
    applied = [r["applied_ts"] for r in recs if isinstance(r.get("applied_ts"), (int, float))]
    verified = [r["verified_ts"] for r in recs if isinstance(r.get("verified_ts"), (int, float))]
    now = clock()
    return (max(applied) if applied else now), (max(verified) if verified else now)


def _of_names(spec: Any) -> list[str]:
    """Every fault name a spec refers to with `of:` (in targets, isolate, sides, exclude...)."""
    out: list[str] = []
    if isinstance(spec, Mapping):
        for k, v in spec.items():
            if k == "of" and isinstance(v, str):
                out.append(v)
            else:
                out += _of_names(v)
    elif isinstance(spec, list):
        for v in spec:
            out += _of_names(v)
    return out


def _chosen_by_role(target: Any) -> bool:
    """The target is picked from the nodes' own reports of their roles (`leader`, `followers`,
    `managers`, or `{role: ...}` of those), not named by the experiment file."""
    roles = ("leader", "followers", "managers")
    items = target if isinstance(target, list) else [target]
    return all(t in roles if isinstance(t, str) else
               (isinstance(t, dict) and t.get("role") in roles and not t.get("nodes") and t.get("of") is None)
               for t in items)


def _needs_leader(spec: Any) -> bool:
    text = json.dumps(spec)
    return '"leader"' in text or '"followers"' in text


def _selector(spec: Mapping) -> Any:
    return {k: spec[k] for k in ("isolate", "groups", "shape", "among", "bridge", "one-way", "target", "peers",
                                 "direction") if k in spec}


def _fmt(targets: list) -> str:
    if targets and isinstance(targets[0], list):
        return " | ".join(",".join(g) for g in targets)
    return ",".join(targets) or "-"
