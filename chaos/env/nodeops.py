"""Node operations for the nemesis: kill/restart, stop/start, pause/unpause, power-loss, wipe,
disk-full/disk-free.

Owns: each operation on one node's container and the wall-clock time it took effect. Where the
engine records the moment (State.FinishedAt for an exit, State.StartedAt for a start) that time is
used; for pause/unpause (a cgroup freeze, synchronous in the engine) it is the time the call
returned, after checking State.Paused. Each returns an `OpRecord` for faults.jsonl. Data volumes
are kept, so a restarted node comes back with its state. Every wait is bounded.
Must not import: click, chaos.cli.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime

from chaos.env import labels as L
from chaos.env.cluster import Cluster
from chaos.env.engine import engine_errors
from chaos.errors import EnvironmentError_, FaultError
from swarmnode.durability import POWER_LOSS_MARKER

DATA_DIR = "/data"   # the node's data volume (chaos/env/spec.py CHAOS_DATA_DIR)

STATE_WAIT_S = 15.0
STOP_GRACE_S = 10  # SIGTERM, then SIGKILL after this many seconds (docker stop semantics)


@dataclass(frozen=True)
class OpRecord:
    op: str              # kill | restart | stop | start | pause | unpause
    node: str
    requested_ts: float  # wall clock when we asked the engine
    effective_ts: float  # wall clock when it took effect (engine-recorded where available)
    detail: dict

    def as_dict(self) -> dict:
        return asdict(self)


def parse_docker_time(text: str) -> float | None:
    """RFC 3339 with nanoseconds (engine format) -> epoch seconds; None for the zero time."""
    if not text or text.startswith("0001-"):
        return None
    base, _, frac = text.rstrip("Z").partition(".")
    tz = "+00:00"
    for sign in ("+", "-"):
        if sign in frac:
            frac, _, off = frac.partition(sign)
            tz = sign + off
    micro = (frac + "000000")[:6] if frac else "000000"
    return datetime.fromisoformat(f"{base}.{micro}{tz}").timestamp()


def _wait_state(container, want, what: str, node: str) -> dict:
    deadline = time.monotonic() + STATE_WAIT_S
    while True:
        with engine_errors(f"inspect {node}"):
            container.reload()
        state = container.attrs["State"]
        if want(state):
            return state
        if time.monotonic() >= deadline:
            raise FaultError(f"{what} of {node} not in effect after {STATE_WAIT_S:.0f} s "
                             f"(state {state.get('Status')})", hint=f"`chaos logs {node}`")
        time.sleep(0.05)


def kill(cluster: Cluster, node: str) -> OpRecord:
    """SIGKILL the node's container (its init and the agent die at once)."""
    c = cluster.container(node)
    t0 = time.time()
    with engine_errors(f"kill {node}"):
        c.kill(signal="SIGKILL")
    st = _wait_state(c, lambda s: not s.get("Running"), "kill", node)
    return OpRecord("kill", node, t0, parse_docker_time(st.get("FinishedAt")) or time.time(),
                    {"exit_code": st.get("ExitCode")})


def power_loss(cluster: Cluster, node: str) -> OpRecord:
    """A simulated power cut: the power-loss marker is created in the node's data directory (an
    exec as the node's own user, in the running container), then the container is SIGKILLed. When
    it starts again (`restart`), the agent finds the marker and cuts every file back to its last
    fsync before reading anything (swarmnode.durability; docs/contracts.md "power-loss"). The
    record's `effective_ts` is the kill's."""
    c = cluster.container(node)
    t0 = time.time()
    with engine_errors(f"arm the power loss of {node}"):
        res = c.exec_run(["touch", f"{DATA_DIR}/{POWER_LOSS_MARKER}"], user="10001")
    if res.exit_code != 0:
        out = (res.output or b"").decode("utf-8", "replace").strip()[:200]
        raise FaultError(f"power-loss of {node}: could not create the marker in {DATA_DIR} "
                         f"(exit {res.exit_code}: {out})", hint=f"`chaos logs {node}`")
    armed = time.time()
    rec = kill(cluster, node)
    return OpRecord("power-loss", node, t0, rec.effective_ts,
                    {**rec.detail, "marker": f"{DATA_DIR}/{POWER_LOSS_MARKER}", "armed_s": round(armed - t0, 4)})


WIPE_TIMEOUT_S = 60.0


def wipe(cluster: Cluster, node: str) -> OpRecord:
    """A worker's disk replaced by an empty one: the node is stopped (SIGTERM, SIGKILL after the
    grace), then a short-lived helper container of the node's image, as the node's user, unprivileged,
    without a network, with only the node's data volume mounted, empties it but the journal (the
    harness's observation record; `python3 -m swarmnode.durability wipe`); the helper is labelled with
    the cluster and run (a `chaos cleanup` finds it) and removed. `start` then boots a fresh node
    (boot counter 1, no state). The `wipe` fault refuses a manager (validation says why first): a
    manager is wiped only by the `membership` fault's replace, after its removal from the
    configuration, and is not started again (a fresh manager joins under a new id instead)."""
    rec = stop(cluster, node)
    c = cluster.container(node)
    mounts = [m for m in (c.attrs.get("Mounts") or []) if m.get("Destination") == DATA_DIR and m.get("Name")]
    if not mounts:
        raise FaultError(f"wipe of {node}: no named data volume mounted at {DATA_DIR}")
    image = (c.attrs.get("Config") or {}).get("Image") or c.attrs.get("Image")
    client = getattr(c, "client", None) or cluster.client
    t1 = time.time()
    helper = None
    try:
        with engine_errors(f"wipe the data volume of {node}"):
            helper = client.containers.run(
                image, ["wipe", DATA_DIR], entrypoint=["python3", "-m", "swarmnode.durability"],
                detach=True, user="10001", network_mode="none", read_only=True, cap_drop=["ALL"],
                security_opt=["no-new-privileges"], mem_limit="64m", pids_limit=32,
                labels=L.object_labels(cluster.name, cluster.run_id),
                volumes={mounts[0]["Name"]: {"bind": DATA_DIR, "mode": "rw"}})
            status = helper.wait(timeout=WIPE_TIMEOUT_S)
            out = helper.logs(stdout=True, stderr=True).decode("utf-8", "replace").strip()
    finally:
        if helper is not None:
            try:
                helper.remove(force=True)
            except Exception:  # noqa: BLE001 -- `chaos cleanup` finds it by its labels
                pass
    code = (status or {}).get("StatusCode")
    if code != 0:
        raise FaultError(f"wipe of {node}: the helper exited {code}: {out[-300:]}", hint=f"`chaos logs {node}`")
    try:
        removed = json.loads(out.splitlines()[-1])
    except (ValueError, IndexError):
        removed = {"output": out[-300:]}
    return OpRecord("wipe", node, rec.requested_ts, rec.effective_ts,
                    {**rec.detail, "wiped": removed, "wipe_s": round(time.time() - t1, 3)})


def _holder_exec(cluster: Cluster, node: str, what: str) -> tuple[dict, float]:
    """`python3 -m swarmnode.durability WHAT /v/<node>` in the volume holder, as uid 10001: its JSON."""
    try:
        with engine_errors("find the data volume holder"):
            holder = cluster.client.containers.get(L.container_name(cluster.name, L.DISK_HOLDER))
    except EnvironmentError_ as exc:
        raise FaultError(f"{what} of {node}: this cluster has no size-capped data volumes ({exc.message})",
                         hint="a run whose plan has a disk-full fault creates them (chaos run)") from exc
    with engine_errors(f"{what} the data volume of {node}"):
        res = holder.exec_run(["python3", "-m", "swarmnode.durability", what, f"/v/{node}"], user="10001")
    done = time.time()
    out = (res.output or b"").decode("utf-8", "replace").strip()
    if res.exit_code != 0:
        raise FaultError(f"{what} of {node}: exit {res.exit_code}: {out[-300:]}")
    try:
        return json.loads(out.splitlines()[-1]), done
    except (ValueError, IndexError) as exc:
        raise FaultError(f"{what} of {node}: unreadable answer {out[-200:]!r}") from exc


def disk_full(cluster: Cluster, node: str) -> OpRecord:
    """The node's data volume (a tmpfs of the cluster's data_mb) filled by a ballast file written
    from the volume holder; verified by reading free space back and by a write probe that must get
    ENOSPC (else FaultError). The node keeps running: its writes now fail."""
    t0 = time.time()
    rec, done = _holder_exec(cluster, node, "fill")
    if rec.get("probe") != "ENOSPC":
        raise FaultError(f"disk-full of {node}: a write still succeeded after the ballast "
                         f"({rec.get('free_after')} bytes free, probe {rec.get('probe')})")
    return OpRecord("disk-full", node, t0, done, rec)


def disk_free(cluster: Cluster, node: str) -> OpRecord:
    """The ballast removed; verified by a write probe that succeeds (else FaultError)."""
    t0 = time.time()
    rec, done = _holder_exec(cluster, node, "unfill")
    if rec.get("probe") != "ok":
        raise FaultError(f"disk-full of {node}: writes still fail after the ballast was removed "
                         f"({rec.get('free_after')} bytes free, probe {rec.get('probe')})")
    return OpRecord("disk-free", node, t0, done, rec)


def stop(cluster: Cluster, node: str, grace_s: int = STOP_GRACE_S) -> OpRecord:
    """SIGTERM, and SIGKILL if the node has not exited after grace_s (records which happened)."""
    c = cluster.container(node)
    t0 = time.time()
    with engine_errors(f"stop {node}"):
        c.stop(timeout=grace_s)
    st = _wait_state(c, lambda s: not s.get("Running"), "stop", node)
    return OpRecord("stop", node, t0, parse_docker_time(st.get("FinishedAt")) or time.time(),
                    {"exit_code": st.get("ExitCode"), "grace_s": grace_s})


def start(cluster: Cluster, node: str, op: str = "start") -> OpRecord:
    """Start a stopped or killed node again (same container, same data volume)."""
    c = cluster.container(node)
    t0 = time.time()
    with engine_errors(f"start {node}"):
        c.start()
    st = _wait_state(c, lambda s: s.get("Running"), op, node)
    return OpRecord(op, node, t0, parse_docker_time(st.get("StartedAt")) or time.time(),
                    {"pid": st.get("Pid")})


def restart(cluster: Cluster, node: str) -> OpRecord:
    """Start after a kill (named separately in faults.jsonl)."""
    return start(cluster, node, op="restart")


PAUSE_ATTEMPTS = 6
"""A cgroup-v1 freeze needs every task of the container to be scheduled once to stop; on a starved
CPU (load 40+ on 2 cores) runc gives up ("unable to freeze"), thaws the container again and the
engine refuses the pause. That refusal is retried, up to this many attempts in all."""
PAUSE_RETRY_S = 0.2


def pause(cluster: Cluster, node: str) -> OpRecord:
    """Freeze every process of the node (cgroup freezer): it stops answering, keeps its sockets.
    A freeze that did not complete in runc's window is retried (PAUSE_ATTEMPTS); the record's
    detail counts `freeze_retries` when there were any."""
    c = cluster.container(node)
    t0 = time.time()
    retries = _with_freeze_retries(c.pause, f"pause {node}")
    t1 = time.time()
    _wait_state(c, lambda s: s.get("Paused"), "pause", node)
    return OpRecord("pause", node, t0, t1, {"freeze_retries": retries} if retries else {})


def _with_freeze_retries(call, doing: str, attempts: int = PAUSE_ATTEMPTS,
                         sleep=time.sleep) -> int:
    """call() under engine_errors(doing), again after an "unable to freeze" refusal (runc thawed
    the container: nothing half-applied is left), `attempts` times in all; the retries made."""
    for n in range(attempts - 1):
        try:
            with engine_errors(doing):
                call()
            return n
        except EnvironmentError_ as exc:
            if "unable to freeze" not in exc.message:
                raise
        sleep(PAUSE_RETRY_S)
    with engine_errors(doing):
        call()
    return attempts - 1


def unpause(cluster: Cluster, node: str) -> OpRecord:
    c = cluster.container(node)
    t0 = time.time()
    with engine_errors(f"unpause {node}"):
        c.unpause()
    t1 = time.time()
    _wait_state(c, lambda s: not s.get("Paused"), "unpause", node)
    return OpRecord("unpause", node, t0, t1, {})


def api_urls(cluster: Cluster) -> list[str]:
    """The API URLs of every node with a published port (a promoted worker is a manager too)."""
    urls = []
    for n in cluster.managers + cluster.workers:
        try:
            urls.append(cluster.api_url(n))
        except EnvironmentError_:
            continue
    return urls


JOIN_WAIT_S = 60.0


def add_node(cluster: Cluster, role: str, wanted: str | None = None, wait_s: float = JOIN_WAIT_S,
             call=None, on_started=None) -> dict:
    """A new node joins the running cluster the Swarm way (`chaos node add`; the `membership`
    fault's add and replace): the next free spare id of `role` (or `wanted`, chaos.membership
    .pick_spare), the cluster's join token from its leader (a manager), its container started like
    every other (chaos.env.up.start_spare), then waited for (bounded) until it is a voter in a
    committed configuration, or a READY worker. `on_started(node)` is called once its container
    runs (the runner lets the verifier probe its links from then on). Returns the record:
    {"node", "role", "started_ts", "joined_ts", "config"|"status", "learner_seen"}; raises
    UsageError (bad role, id in use, no spare), MembershipRefused (the cluster refused the join),
    OutcomeUnknown (not in within wait_s), EnvironmentError_."""
    from chaos import membership
    from chaos.env.up import start_spare

    call = call or membership.http_call
    spec = cluster.spec()
    spares = [] if spec is None else {"manager": spec.spare_manager_ids, "worker": spec.spare_worker_ids}.get(role, [])
    node = membership.pick_spare(role, wanted, spares, cluster.handles)
    urls = api_urls(cluster)
    if not urls:
        raise EnvironmentError_(f"cluster {cluster.name!r} has no running node to ask",
                                hint=f"`chaos status --name {cluster.name}`")
    token = membership.join_token(call, urls) if role == "manager" else None
    t0 = time.time()
    start_spare(cluster, node, token)
    started = time.time()
    if on_started is not None:
        on_started(node)

    def node_url() -> str | None:
        try:
            return cluster.api_url(node)
        except EnvironmentError_:
            return None

    def exited() -> tuple[int, str] | None:
        c = cluster.container(node)
        with engine_errors(f"inspect {node}"):
            c.reload()
        state = c.attrs["State"]
        if state.get("Running") or state.get("Status") in ("created", "restarting"):
            return None
        return state.get("ExitCode"), cluster.logs(node, tail=20)

    got = membership.wait_joined(call, urls, node, role, node_url, exited, wait_s)
    return {"node": node, "role": role, "requested_ts": t0, "started_ts": started, "joined_ts": time.time(),
            "token": "given" if token else None, **got}


OPERATIONS = {"kill": kill, "restart": restart, "stop": stop, "start": start, "pause": pause,
              "unpause": unpause, "power-loss": power_loss, "wipe": wipe, "disk-full": disk_full,
              "disk-free": disk_free}
