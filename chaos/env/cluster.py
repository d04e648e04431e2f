"""A running cluster on the Docker engine, found again by its labels from any process.

Owns: `Cluster` (the containers of one cluster name: node ids, kinds, published ports, the
Toxiproxy URL, per-node status fetch, the probe callable for `chaos.toxi.verify`, readiness wait,
logs) and `find_cluster`. Creation lives in chaos/env/up.py, removal in chaos/env/cleanup.py, node
operations in chaos/env/nodeops.py.
Must not import: click, chaos.cli.
"""

from __future__ import annotations

import codecs
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Iterator

import docker
import docker.errors
import requests

from chaos.env import labels as L
from chaos.env import ready as ready_mod
from chaos.env.engine import engine_errors
from chaos.env.hosts import GATEWAY_NODE, gateway_ports
from chaos.env.progress import NullProgress, Progress
from chaos.env.spec import AGENT_API_PORT, TOXIPROXY_API_PORT, TOXIPROXY_BASE_PORT
from chaos.errors import EnvironmentError_, UsageError
from chaos.topology import CLIENT, Topology
from chaos.toxi import ShardedToxiproxyAPI, ToxiproxyAPI

STATUS_TIMEOUT_S = 1.5
PROBE_TIMEOUT_MS = 500
POLL_INTERVAL_S = 0.25
POLL_S_PER_NODE = 0.01   # wait_ready polls at most every 0.01 s x nodes (about 1 s at 100 nodes)
MAX_PARALLEL = 16


def _node_order(node: str) -> tuple[int, int]:
    m = re.match(r"([a-z]+)(\d+)$", node)
    if not m:
        return (9, 0)
    return ({"m": 0, "w": 1}.get(m.group(1), 2), int(m.group(2)))


@dataclass
class NodeHandle:
    node: str
    kind: str           # manager | worker | toxiproxy | gateway
    container: object   # docker.models.containers.Container (bound to the client of its host's engine)
    host: str | None = None   # swarm backend: the inventory host running it; None on the local backend


def _load_note() -> str:
    """The host's load, for a not-ready error: on a CPU-starved host (containers share one cgroup
    against every busy host process, and workers weigh least) nodes start late, not wrongly."""
    try:
        load, cores = os.getloadavg()[0], os.cpu_count() or 1
    except OSError:
        return ""
    return f" (host load 1m {load:.1f} on {cores} cores)"


class Cluster:
    """The objects of one cluster (one name, one run id). Build with `find_cluster`."""

    def __init__(self, client: docker.DockerClient, name: str, run_id: str, handles: dict[str, NodeHandle],
                 hosts=None):
        self.client = client
        self.name = name
        self.run_id = run_id
        self.handles = handles
        self.hosts = hosts   # swarm backend: chaos.env.swarm.HostClients; None on the local backend
        self._http = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=MAX_PARALLEL, pool_maxsize=MAX_PARALLEL)
        self._http.mount("http://", adapter)
        # node -> the rate its clock runs at under a `clock` fault (chaos.clock): the agent times a
        # probe on its own clock, so a probe from a node at 0.05 x lasts 20 x longer in real time
        self.clock_rates: dict[str, float] = {}

    # -- membership ------------------------------------------------------------------------------

    @property
    def managers(self) -> list[str]:
        return sorted((n for n, h in self.handles.items() if h.kind == "manager"), key=_node_order)

    @property
    def workers(self) -> list[str]:
        return sorted((n for n, h in self.handles.items() if h.kind == "worker"), key=_node_order)

    @property
    def nodes(self) -> list[str]:
        return self.managers + self.workers

    @property
    def toxiproxy_nodes(self) -> list[str]:
        """The Toxiproxy servers' node names, shard order (`toxiproxy`, `toxiproxy2`, ...)."""
        names = [n for n, h in self.handles.items() if h.kind == "toxiproxy"]
        return sorted(names, key=lambda n: int(n[len(L.TOXIPROXY_NODE):] or 1))

    def spec(self):
        """The ClusterSpec recorded in the containers' SPEC_LABEL at `up` (chaos.env.spec), or None
        for a cluster brought up before it was recorded."""
        from chaos.env.spec import SPEC_LABEL, ClusterSpec

        for h in self.handles.values():
            text = (h.container.labels or {}).get(SPEC_LABEL)
            if text:
                try:
                    return ClusterSpec.from_label(self.name, text)
                except ValueError:
                    continue
        return None

    def free_spares(self, kind: str | None = None) -> list[str]:
        """Spare ids (reserved at `up`, chaos.env.spec) that have no container yet, of `kind` if given."""
        spec = self.spec()
        if spec is None:
            return []
        ids = {"manager": spec.spare_manager_ids, "worker": spec.spare_worker_ids, None: spec.spare_ids}[kind]
        return [n for n in ids if n not in self.handles]

    def topology(self) -> Topology:
        """The link table the cluster was brought up with: from its recorded spec (spares included),
        else (older clusters) from the containers found."""
        spec = self.spec()
        if spec is not None:
            return spec.topology()
        shards = max(1, len(self.toxiproxy_nodes))
        return Topology(self.managers, self.workers, TOXIPROXY_BASE_PORT,
                        shards=min(shards, max(1, len(self.nodes))))

    @property
    def backend(self) -> str:
        return "local" if self.hosts is None else "swarm"

    def host_of(self, node: str) -> str | None:
        """The inventory host running `node` (swarm backend), else None."""
        h = self.handles.get(node)
        return h.host if h is not None else None

    def container(self, node: str):
        if node not in self.handles:
            known = ", ".join(self.nodes + self.toxiproxy_nodes)
            raise UsageError(f"no node {node!r} in cluster {self.name!r}", hint=f"nodes: {known}")
        return self.handles[node].container

    def refresh(self) -> None:
        with engine_errors("inspect containers"):
            for handle in self.handles.values():
                handle.container.reload()

    # -- addresses -------------------------------------------------------------------------------

    def _host_port(self, node: str, port: int) -> int | None:
        ports = (self.container(node).attrs.get("NetworkSettings") or {}).get("Ports") or {}
        bound = ports.get(f"{port}/tcp") or []
        for b in bound:
            if b.get("HostIp") in ("127.0.0.1", "") and b.get("HostPort"):
                return int(b["HostPort"])
        return None

    def _address(self, node: str, port: int) -> str | None:
        """Where the harness reaches `port` of `node`'s container: its binding on 127.0.0.1 when the
        port is published, else (local backend, `chaos.env.up.host_reaches_network`) the container's
        own address on the cluster network. None when neither exists: a stopped container has no
        address, as it has no binding."""
        port_h = self._host_port(node, port)
        if port_h is not None:
            return f"127.0.0.1:{port_h}"
        if self.hosts is not None:
            return None
        nets = (self.container(node).attrs.get("NetworkSettings") or {}).get("Networks") or {}
        mine = nets.get(L.network_name(self.name, self.run_id)) or {}
        ip = mine.get("IPAddress")
        return f"{ip}:{port}" if ip else None

    def _control_address(self, node: str, port: int) -> str | None:
        """A control-plane port of `node` (an agent's API, a Toxiproxy server's API): through the
        control gateway for a target on another host (swarm backend), else `_address`."""
        if self._remote(node):
            forward = self._gateway_port(node)
            return None if forward is None else f"127.0.0.1:{forward}"
        return self._address(node, port)

    def _remote(self, target: str) -> bool:
        """Swarm backend: `target` runs on a host other than the harness's (hosts[0])."""
        h = self.handles.get(target)
        return self.hosts is not None and h is not None and h.host != self.hosts.inventory.hosts[0].name

    def _gateway_port(self, target: str) -> int | None:
        """Swarm backend: the harness-side port of the control gateway's forward to `target` (a node
        or Toxiproxy shard on another host; chaos/env/up.py `_create_swarm`)."""
        if target not in self.handles or GATEWAY_NODE not in self.handles:
            return None
        ports = gateway_ports(self.nodes, max(1, len(self.toxiproxy_nodes)))
        return self._host_port(GATEWAY_NODE, ports[target]) if target in ports else None

    def gateway_api_url(self) -> str:
        port = self._host_port(GATEWAY_NODE, TOXIPROXY_API_PORT)
        if port is None:
            raise EnvironmentError_("the control gateway's API port is not published (is it running?)",
                                    hint=f"`chaos logs gateway --name {self.name}`")
        return f"http://127.0.0.1:{port}"

    def api_url(self, node: str) -> str:
        """The node's API port 8080 (control plane: status, probe, journal): published on 127.0.0.1,
        or at the container's address (`_address`); for a node on another host (swarm backend), the
        control gateway's forward to it."""
        addr = self._control_address(node, AGENT_API_PORT)
        if addr is None:
            raise EnvironmentError_(f"node {node} has no published API port or address (is it running?)",
                                    hint=f"`chaos status --name {self.name}`")
        return f"http://{addr}"

    def client_url(self, node: str) -> str:
        """Workload traffic: the Toxiproxy proxy `client-<node>` of shard 0, published on 127.0.0.1 or
        at the shard's address (`_address`)."""
        port = self.topology().listen_port(CLIENT, node)
        addr = self._address(L.TOXIPROXY_NODE, port)
        if addr is None:
            raise EnvironmentError_(f"the client proxy of {node} is not published or reachable",
                                    hint=f"`chaos logs toxiproxy --name {self.name}`")
        return f"http://{addr}"

    def toxiproxy_url(self, node: str = L.TOXIPROXY_NODE) -> str:
        """The API of one Toxiproxy server (default: shard 0, which also carries the client links);
        for a shard on another host (swarm backend), through the control gateway."""
        addr = self._control_address(node, TOXIPROXY_API_PORT)
        if addr is None:
            raise EnvironmentError_(f"the Toxiproxy API port of {node} is not published or reachable (is its "
                                    "container running?)", hint=f"`chaos logs {node} --name {self.name}`")
        return f"http://{addr}"

    def toxiproxy_api(self, timeout_s: float = 5.0, topology: Topology | None = None):
        """A client for every link proxy of this cluster: a ToxiproxyAPI, or a ShardedToxiproxyAPI
        routing each proxy to its server when the links are spread over several. `topology` is for
        `up`, before the node containers (from which `topology()` is read) exist."""
        nodes = self.toxiproxy_nodes or [L.TOXIPROXY_NODE]
        apis = [ToxiproxyAPI(self.toxiproxy_url(n), timeout_s=timeout_s) for n in nodes]
        if len(apis) == 1:
            return apis[0]
        return ShardedToxiproxyAPI(apis, topology or self.topology())

    def toxiproxy_image(self) -> str:
        c = self.container(L.TOXIPROXY_NODE)
        return (c.attrs.get("Config") or {}).get("Image", "?")

    # -- status ----------------------------------------------------------------------------------

    def status(self, node: str, timeout_s: float = STATUS_TIMEOUT_S) -> dict | None:
        """GET /status of one node on its published API port; None if it does not answer."""
        try:
            resp = self._http.get(self.api_url(node) + "/status", timeout=timeout_s)
            if resp.status_code != 200:
                return None
            body = resp.json()
            return body if isinstance(body, dict) else None
        except (requests.RequestException, ValueError, EnvironmentError_):
            return None

    def statuses(self, nodes: list[str] | None = None) -> dict[str, dict | None]:
        nodes = self.nodes if nodes is None else nodes
        return self.statuses_early(nodes, lambda got: False)

    def statuses_early(self, nodes: list[str], enough: Callable[[dict[str, dict | None]], bool],
                       first_s: float = 0.3) -> dict[str, dict | None]:
        """Like `statuses`, but a node that has not answered after `first_s` is left out (None) as
        soon as the answers so far are `enough`; otherwise every answer (or STATUS_TIMEOUT_S) is
        awaited. A paused node never answers: without this, anything that needs the cluster's view
        (the nemesis resolving a fault's targets) would wait out the whole timeout for it."""
        pool = ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, max(1, len(nodes))))
        try:
            futs = {pool.submit(self.status, n): n for n in nodes}
            done, pending = wait(futs, timeout=first_s)
            got = {n: None for n in nodes}
            got.update({futs[f]: f.result() for f in done})
            if pending and not enough(got):
                wait(pending)
                got.update({futs[f]: f.result() for f in pending})
            return got
        finally:
            pool.shutdown(wait=False)  # a straggler ends on its own request timeout

    def journal(self, node: str, since: int = 0, timeout_s: float = 10.0) -> list[dict]:
        """The node's journal entries after `since` (docs/contracts.md section 4), on the control plane."""
        import json

        resp = self._http.get(self.api_url(node) + "/journal", params={"since": since}, timeout=timeout_s)
        resp.raise_for_status()
        return [json.loads(line) for line in resp.text.splitlines() if line.strip()]

    def store(self, node: str, timeout_s: float = 10.0) -> dict:
        """A manager's full applied store (`GET /store`), on the control plane."""
        resp = self._http.get(self.api_url(node) + "/store", timeout=timeout_s)
        resp.raise_for_status()
        return resp.json()

    def probe(self, src: str, dst: str, timeout_ms: int = PROBE_TIMEOUT_MS) -> bool:
        """Can `src` reach `dst` through its proxy? For `chaos.toxi.LinkController.verify`.

        Node -> node: the agent's `POST /probe` on src's directly published API port. Client -> node:
        a GET /status through the client proxy. Raises when the question cannot be asked (the verify
        loop counts that as not proven).
        """
        if src == CLIENT:
            try:
                resp = self._http.get(self.client_url(dst) + "/status", timeout=timeout_ms / 1000)
                return resp.status_code == 200
            except requests.RequestException:
                return False
        slow = min(1.0, getattr(self, "clock_rates", {}).get(src, 1.0))
        resp = self._http.post(self.api_url(src) + "/probe", json={"peer": dst, "timeout_ms": timeout_ms},
                               timeout=timeout_ms / 1000 / slow + 2)
        body = resp.json()
        if not body.get("ok"):
            raise EnvironmentError_(f"probe {src}->{dst} failed: {body}")
        return bool(body.get("reachable"))

    def wait_ready(self, timeout_s: float, progress: Progress | None = None,
                   abort: Callable[[], str | None] | None = None) -> float:
        """Poll until ready (chaos.env.ready); returns seconds waited. On timeout, an
        EnvironmentError_ naming each failing condition and its nodes. `abort()` returning a reason
        stops early (e.g. a node container exited)."""
        progress = progress or NullProgress()
        start = time.monotonic()
        deadline = start + timeout_s
        failures: list[ready_mod.Failure] = []
        polls = 0
        interval = max(POLL_INTERVAL_S, POLL_S_PER_NODE * len(self.nodes))
        while True:
            polls += 1
            round_start = time.monotonic()
            # One round of status queries per interval (concurrent, bounded by MAX_PARALLEL), cheap
            # conditions first: the managers alone say whether there is a leader and whether every
            # worker is registered; only then are the workers' member tables fetched (the managers'
            # answers of this round are reused).
            got = self.statuses(self.managers)
            failures = ready_mod.evaluate_leader(got, self.managers, self.workers)
            if not failures:
                got.update(self.statuses(self.workers))
                failures = ready_mod.evaluate(got, self.managers, self.workers)
            if not failures:
                return time.monotonic() - start
            progress.detail(f"{time.monotonic() - start:.1f}s: {ready_mod.summary(failures)}")
            reason = abort() if abort else None
            if reason:
                raise EnvironmentError_(f"cluster {self.name!r} cannot become ready: {reason}",
                                        hint=f"`chaos logs NODE --name {self.name}` shows why")
            if time.monotonic() >= deadline:
                break
            # rounds start `interval` apart (a slow round is not followed by a full interval more),
            # with at least POLL_INTERVAL_S between rounds so a starved host is not polled non-stop
            time.sleep(max(POLL_INTERVAL_S, min(round_start + interval, deadline) - time.monotonic()))
        raise EnvironmentError_(
            f"cluster {self.name!r} not ready after {timeout_s:.0f} s ({polls} polls): "
            + " | ".join(str(f) for f in failures) + _load_note(),
            hint=f"raise --timeout, or look at `chaos logs NODE --name {self.name}`")

    def exited_nodes(self) -> list[str]:
        """Node containers that are not running (for an early, clear error during `up`). One list
        call filtered by run and state, not an inspect per container (104 inspects every 2 s kept
        dockerd at a third of a core during a 100-worker `up`)."""
        ours = {h.container.id: node for node, h in self.handles.items()}
        filters = {**L.selector(cluster=self.name, run_id=self.run_id), "status": ["exited", "dead"]}
        out = []
        clients = [self.client] if self.hosts is None else list({id(c): c for c in self.hosts.clients.values()}.values())
        with engine_errors("list exited containers"):
            for client in clients:
                for c in client.containers.list(all=True, filters=filters):
                    node = ours.get(c.id)
                    if node is not None and not any(s.startswith(node + " ") for s in out):
                        out.append(f"{node} (exit {c.attrs['State'].get('ExitCode')})")
        return sorted(out, key=lambda s: _node_order(s.split(" ")[0]))

    def logs(self, node: str, tail: int | None = None, since: float | None = None) -> str:
        """The container log of `node` (the agent logs to stderr), optionally the last `tail`
        lines and only lines written at or after `since` (epoch seconds)."""
        with engine_errors(f"read the logs of {node}"):
            raw = self.container(node).logs(stdout=True, stderr=True, tail=tail if tail else "all",
                                            **({"since": float(since)} if since else {}))
        return raw.decode("utf-8", "replace")

    def follow_logs(self, node: str, tail: int | None = None, since: float | None = None) -> Iterator[str]:
        """As `logs`, then every new line as it is written, until the container stops."""
        with engine_errors(f"follow the logs of {node}"):
            stream = self.container(node).logs(stdout=True, stderr=True, stream=True, follow=True,
                                               tail=tail if tail else "all",
                                               **({"since": float(since)} if since else {}))
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        with engine_errors(f"follow the logs of {node}"):
            for chunk in stream:
                yield decoder.decode(chunk)


def find_cluster(client: docker.DockerClient, name: str) -> Cluster | None:
    """The cluster named `name` (by labels), or None. More than one run under one name is an error.
    A swarm-backend cluster is found by its overlay network on this engine (the swarm manager), whose
    labels carry the inventory; its containers are then listed on every host."""
    from chaos.env import swarm as S

    inventories = S.run_inventories(client, cluster=name)
    if inventories:
        if len(inventories) > 1:
            raise EnvironmentError_(f"cluster {name!r} has overlay networks of several runs: "
                                    + ", ".join(r for _c, r in sorted(inventories)),
                                    hint=f"`chaos cleanup --name {name}` removes them all")
        ((_c, run_id), inventory), = inventories.items()
        return _find_swarm_cluster(client, name, run_id, inventory)
    containers = []
    with engine_errors("list containers"):
        for sparse in client.containers.list(all=True, filters=L.selector(cluster=name), sparse=True):
            try:  # inspect one by one: a container removed meanwhile is skipped, not an error
                containers.append(client.containers.get(sparse.id))
            except docker.errors.NotFound:
                continue
    containers = [c for c in containers if L.is_ours(c.labels, name)]
    if not containers:
        return None
    runs = sorted({c.labels.get(L.RUN_LABEL, "?") for c in containers})
    if len(runs) > 1:
        raise EnvironmentError_(f"cluster {name!r} has containers of several runs: {', '.join(runs)}",
                                hint=f"`chaos cleanup --name {name}` removes them all")
    handles = {}
    for c in containers:
        node = c.labels.get(L.NODE_LABEL)
        kind = c.labels.get(L.KIND_LABEL)
        if node and kind in L.KINDS:
            handles[node] = NodeHandle(node, kind, c)
    return Cluster(client, name, runs[0], handles)


def _find_swarm_cluster(client: docker.DockerClient, name: str, run_id: str, inventory) -> Cluster | None:
    from chaos.env import swarm as S

    hosts = S.HostClients.connect(inventory, client)
    handles: dict[str, NodeHandle] = {}
    for host in inventory.names:
        filters = L.selector(cluster=name, run_id=run_id)
        filters["label"].append(f"{S.HOST_LABEL}={host}")
        with engine_errors(f"list containers on host {host}"):
            sparse = hosts[host].containers.list(all=True, filters=filters, sparse=True)
        for sp in sparse:
            try:
                c = hosts[host].containers.get(sp.id)
            except docker.errors.NotFound:
                continue
            node, kind = c.labels.get(L.NODE_LABEL), c.labels.get(L.KIND_LABEL)
            if L.is_ours(c.labels, name) and node and kind in L.KINDS:
                handles[node] = NodeHandle(node, kind, c, host)
    if not handles:
        return None
    return Cluster(client, name, run_id, handles, hosts=hosts)


def require_cluster(client: docker.DockerClient, name: str) -> Cluster:
    cluster = find_cluster(client, name)
    if cluster is None:
        raise UsageError(f"no cluster named {name!r} is up", hint="`chaos up --name NAME` starts one")
    return cluster


def list_clusters(client: docker.DockerClient) -> dict[str, set[str]]:
    """cluster name -> run ids, over every object kind this tool labels."""
    out: dict[str, set[str]] = {}
    with engine_errors("list objects"):
        objs = (client.containers.list(all=True, filters=L.selector(), sparse=True)
                + client.networks.list(filters=L.selector())
                + client.volumes.list(filters=L.selector()))
    for o in objs:
        lab = o.attrs.get("Labels") or (o.attrs.get("Config") or {}).get("Labels") or {}
        if L.is_ours(lab) and lab.get(L.CLUSTER_LABEL):
            out.setdefault(lab[L.CLUSTER_LABEL], set()).add(lab.get(L.RUN_LABEL, "?"))
    return out
