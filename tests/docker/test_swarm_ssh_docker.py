"""The swarm backend's `ssh://` engine path against a real OpenSSH server on loopback (issue 15).

The test starts its own sshd (Debian's openssh-server; .ci/run installs it) on a free loopback port
with a generated host key and a generated user key, and gives the harness a HOME whose
~/.ssh/config and known_hosts name them -- the Docker SDK's paramiko transport reads exactly these,
so nothing of the machine's own ssh setup is touched. The inventory then has two hosts: `h1`, this
engine through its socket, and `h2`, the same engine through ssh. A 1 + 2 cluster places w1 and the
second Toxiproxy shard on h2, so creating them, the node faults on w1, and `down`'s sweep of h2 all
go through ssh. What this cannot show: two different engines (the image copy between them, overlay
traffic between machines); see README "Running across several hosts".
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chaos.env import cleanup
from chaos.env import labels as L
from chaos.env import nodeops

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _await_port(port: int, proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                if s.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() >= deadline:
            raise AssertionError(f"sshd did not answer on 127.0.0.1:{port} (exit {proc.poll()})")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """(port, home): a private sshd on loopback accepting a generated key for the current user."""
    if not os.path.exists(SSHD):
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {SSHD} is missing (.ci/run installs openssh-server)")
        pytest.skip(f"{SSHD} missing: apt-get install openssh-server")
    d = tmp_path_factory.mktemp("sshd")
    for key in ("host", "user"):
        subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)], check=True)
    (d / "authorized_keys").write_text((d / "user.pub").read_text())
    port = _free_port()
    config = d / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {d / 'host'}",
        f"AuthorizedKeysFile {d / 'authorized_keys'}", f"PidFile {d / 'sshd.pid'}",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
        "PermitRootLogin prohibit-password", ""]))
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)   # privilege separation directory sshd insists on
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                            stderr=open(d / "sshd.log", "w"))
    try:
        _await_port(port, proc)
        home = d / "home"
        (home / ".ssh").mkdir(parents=True)
        host_pub = " ".join((d / "host.pub").read_text().split()[:2])
        (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub}\n")
        (home / ".ssh" / "config").write_text(f"Host 127.0.0.1\n  IdentityFile {d / 'user'}\n")
        yield port, home
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def cluster_name(docker_client, sshd):
    """A fresh cluster name, removed afterwards on every host -- h2 through ssh, so with the HOME
    that holds the test's ssh config (else the sweep of h2 fails and the overlay network is kept)."""
    name = f"t{os.urandom(3).hex()}"
    yield name
    old = os.environ.get("HOME")
    os.environ["HOME"] = str(sshd[1])
    try:
        cleanup.remove_objects(docker_client, cluster=name)
    finally:
        if old is not None:
            os.environ["HOME"] = old


@pytest.fixture(scope="module")
def swarm_on(swarm_mode):
    return swarm_mode


def test_swarm_host_over_ssh_runs_nodes_faults_and_cleanup(sshd, swarm_on, node_image, chaos_cmd, cluster_name,
                                                           tmp_path, monkeypatch):
    port, home = sshd
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    inv = tmp_path / "hosts.yaml"
    inv.write_text(f"hosts:\n  - {{name: h1, engine: local}}\n  - {{name: h2, engine: 'ssh://{user}@127.0.0.1:{port}'}}\n")
    env = {"HOME": str(home)}

    doctor = chaos_cmd("doctor", "--backend", "swarm", "--inventory", str(inv), "--json", env=env, timeout=120)
    checks = {c["name"]: c for c in json.loads(doctor.stdout)}
    assert checks["h2: engine"]["status"] == "ok", checks
    assert checks["h2: swarm"]["status"] == "ok" and checks["h2: image"]["status"] == "ok", checks

    up = chaos_cmd("up", "--backend", "swarm", "--inventory", str(inv), "--name", cluster_name, "--managers", "1",
                   "--workers", "2", "--image", node_image, "--json", env=env, timeout=240)
    assert up.returncode == 0, up.stderr[-3000:]
    nodes = json.loads(up.stdout)["nodes"]
    assert {n: v["host"] for n, v in nodes.items()} == {"m1": "h1", "w1": "h2", "w2": "h1"}

    monkeypatch.setenv("HOME", str(home))
    from chaos.env.cluster import find_cluster

    cluster = find_cluster(swarm_on, cluster_name)
    assert sorted(cluster.toxiproxy_nodes) == ["toxiproxy", "toxiproxy2"]
    assert cluster.host_of("toxiproxy2") == "h2"
    # the control plane of what runs on h2 goes through the gateway on h1; h1's nodes are published directly
    gateway = cluster.container("gateway")
    gw_ports = {b["HostPort"] for binds in gateway.attrs["NetworkSettings"]["Ports"].values() for b in binds or []}
    assert cluster.api_url("w1").rsplit(":", 1)[1] in gw_ports
    assert cluster.toxiproxy_url("toxiproxy2").rsplit(":", 1)[1] in gw_ports
    assert cluster.api_url("w2").rsplit(":", 1)[1] not in gw_ports
    assert (cluster.status("w1") or {}).get("node") == "w1"
    assert cluster.toxiproxy_api().proxies()   # both shards answer (toxiproxy2 through the gateway)
    assert cluster.probe("w1", "m1") and cluster.probe("client", "w1")
    # w1's container object talks to its engine through ssh
    w1 = cluster.container("w1")
    assert w1.client.api.base_url.startswith("http+docker://ssh"), w1.client.api.base_url
    # w1's outgoing links are on h2's shard: its peers are reached at toxiproxy2
    env_w1 = dict(e.split("=", 1) for e in w1.attrs["Config"]["Env"])
    assert all(v.startswith("toxiproxy2:") for v in json.loads(env_w1["CHAOS_PEERS"]).values())
    rec = nodeops.kill(cluster, "w1")
    assert rec.op == "kill"
    w1.reload()
    assert w1.status == "exited"
    nodeops.start(cluster, "w1", op="restart")
    w1.reload()
    assert w1.status == "running"

    down = chaos_cmd("down", "--name", cluster_name, env=env, timeout=120)
    assert down.returncode == 0, down.stderr
    sel = L.selector(cluster=cluster_name)
    assert swarm_on.containers.list(all=True, filters=sel) == []
    assert swarm_on.networks.list(filters=sel) == [] and swarm_on.volumes.list(filters=sel) == []
    cleanup.remove_objects(swarm_on, cluster=cluster_name)


def _inventory(tmp_path, port: int) -> str:
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    inv = tmp_path / "hosts.yaml"
    inv.write_text(f"hosts:\n  - {{name: h1, engine: local}}\n  - {{name: h2, engine: 'ssh://{user}@127.0.0.1:{port}'}}\n")
    return str(inv)


def _popen_up(inv: str, name: str, image: str, home) -> subprocess.Popen:
    # 12 workers so that `up` is still creating when the signal arrives
    return subprocess.Popen([sys.executable, "-m", "chaos.cli", "up", "--backend", "swarm", "--inventory", inv,
                             "--name", name, "--workers", "12", "--image", image, "--timeout", "120"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "HOME": str(home)})


def _await_containers_on(client, name: str, host: str, n: int, proc, timeout_s: float = 90) -> None:
    sel = L.selector(cluster=name)
    sel["label"].append(f"chaos.host={host}")
    deadline = time.monotonic() + timeout_s
    while len(client.containers.list(all=True, filters=sel, sparse=True)) < n:
        if proc.poll() is not None:
            raise AssertionError(f"`chaos up` ended early ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        if time.monotonic() >= deadline:
            raise AssertionError(f"no {n} containers of {name} on {host} after {timeout_s} s")
        time.sleep(0.1)


def test_swarm_up_sigterm_tears_down_on_every_host(sshd, swarm_on, node_image, cluster_name, tmp_path):
    port, home = sshd
    proc = _popen_up(_inventory(tmp_path, port), cluster_name, node_image, home)
    _await_containers_on(swarm_on, cluster_name, "h2", 2, proc)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert cleanup.remaining(swarm_on, cluster_name) == 0


def test_swarm_up_sigkilled_then_cleanup_by_name_sweeps_every_host(sshd, swarm_on, node_image, cluster_name,
                                                                     tmp_path, chaos_cmd):
    port, home = sshd
    proc = _popen_up(_inventory(tmp_path, port), cluster_name, node_image, home)
    _await_containers_on(swarm_on, cluster_name, "h2", 2, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert cleanup.remaining(swarm_on, cluster_name) > 0   # SIGKILL leaves objects behind
    res = chaos_cmd("cleanup", "--name", cluster_name, env={"HOME": str(home)}, timeout=120)
    assert res.returncode == 0, res.stderr
    assert cleanup.remaining(swarm_on, cluster_name) == 0


def test_experiment_with_faults_on_the_ssh_host_is_valid(sshd, swarm_on, node_image, chaos_cmd, tmp_path):
    """An experiment runs unchanged across two hosts: m2 killed and restarted through h2's engine (ssh),
    w1 isolated on h2's Toxiproxy shard (through the gateway); every check VALID; nothing left."""
    port, home = sshd
    name = f"t{os.urandom(3).hex()}"
    exp = Path(__file__).parent / "experiments" / "two-hosts.yaml"
    try:
        proc = chaos_cmd("run", str(exp), "--seed", "5", "--backend", "swarm", "--inventory",
                         _inventory(tmp_path, port), "--name", name, "--out", str(tmp_path / "runs"),
                         env={"HOME": str(home)}, timeout=300)
        left = cleanup.remaining(swarm_on, name)
    finally:
        old = os.environ.get("HOME")
        os.environ["HOME"] = str(home)
        try:
            cleanup.remove_objects(swarm_on, cluster=name)
        finally:
            os.environ["HOME"] = old or ""
    (run_dir,) = list((tmp_path / "runs").iterdir())
    verdicts = {c["name"]: c["verdict"] for c in json.loads((run_dir / "results.json").read_text())["checks"]}
    assert proc.returncode == 0, (verdicts, proc.stderr[-3000:])
    assert set(verdicts.values()) == {"VALID"}
    run = json.loads((run_dir / "run.json").read_text())
    assert run["nodes"]["m2"]["host"] == "h2" and run["nodes"]["w1"]["host"] == "h2"
    faults = [json.loads(line) for line in (run_dir / "faults.jsonl").read_text().splitlines() if line.strip()]
    assert any(f.get("fault") == "kill-m2" and "m2" in json.dumps(f.get("targets")) for f in faults)
    assert left == 0
