"""Docker integration: a real cluster's logs and ownership through the real `chaos` entry point
(issue 16, items 7 and 8).

One 3-manager / 2-worker cluster brought up by `chaos up`: `chaos logs NODE` prints the agent's
start-up configuration, its term and role changes and the leader it follows; `--since` leaves out
what came before; `-f` streams lines written after it started; `chaos status` shows a finished
cluster with `-` for the workers' Raft columns; `chaos cleanup` without options leaves this
cluster (its `up` finished and handed it over) and says so.
"""

from __future__ import annotations

import datetime
import json
import queue
import re
import secrets
import subprocess
import sys
import threading
import time

import pytest

from chaos.env import cleanup

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(docker_client, node_image, request):
    name = f"tl{secrets.token_hex(3)}"
    request.addfinalizer(lambda: cleanup.remove_objects(docker_client, cluster=name))
    proc = subprocess.run([sys.executable, "-m", "chaos.cli", "up", "--name", name, "--managers", "3",
                           "--workers", "2", "--seed", "77", "--image", node_image, "--timeout", "150",
                           "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return name


def _status(chaos_cmd, name: str) -> dict:
    proc = chaos_cmd("status", "--name", name, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_logs_of_a_real_node_show_config_role_and_term(cluster, chaos_cmd):
    doc = _status(chaos_cmd, cluster)
    assert doc["ready"] and doc["up_complete"], doc
    st = doc["nodes"]["m1"]["status"]
    leader, term = st["leader"], st["term"]
    proc = chaos_cmd("logs", "m1", "--name", cluster)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.search(r"^\S+Z m1 INFO node: starting m1 \(manager\): node_id=m1 role=manager managers=m1,m2,m3 "
                     r"peers=m2=toxiproxy:\d+,m3=toxiproxy:\d+,w1=toxiproxy:\d+,w2=toxiproxy:\d+ .*log_level=INFO",
                     out, re.M), out[:3000]
    assert re.search(rf"^\S+Z m1 INFO raft: term {term}$", out, re.M), out[:3000]
    assert re.search(rf"^\S+Z m1 INFO raft: became (leader|follower) in term {term}$", out, re.M), out[:3000]
    assert re.search(rf"^\S+Z m1 INFO manager: leader is {leader} \(term {term}\)$", out, re.M), out[:3000]
    assert re.search(r"^\S+Z m1 INFO transport: link to m2 connected \(toxiproxy:\d+\)$", out, re.M), out[:3000]


def test_logs_since_leaves_out_earlier_lines(cluster, chaos_cmd):
    everything = chaos_cmd("logs", "m1", "--name", cluster)
    assert "starting m1" in everything.stdout
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    later = chaos_cmd("logs", "m1", "--name", cluster, "--since", now)
    assert later.returncode == 0, later.stderr
    assert "starting m1" not in later.stdout
    recent = chaos_cmd("logs", "m1", "--name", cluster, "--since", "1h")
    assert "starting m1" in recent.stdout


def test_logs_follow_streams_new_lines(cluster, chaos_popen, docker_client):
    proc = chaos_popen("logs", "m2", "--name", cluster, "-f")
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()

    def await_line(pattern: str, timeout_s: float = 60) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no line /{pattern}/ from `chaos logs -f` within {timeout_s} s")

    try:
        await_line(r"INFO node: starting m2 \(manager\)")       # what was there before
        docker_client.containers.get(f"chaos-{cluster}-w2").stop(timeout=10)
        await_line(r"m2 INFO (gossip: member w2 (left|suspect|dead)|transport: link to w2 lost)")  # written after
        assert proc.poll() is None   # still following
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_status_and_cleanup_leave_a_finished_cluster(cluster, chaos_cmd, docker_client):
    table = chaos_cmd("status", "--name", cluster)
    assert table.returncode == 0, table.stderr
    w1 = next(line for line in table.stdout.splitlines() if " w1 " in line)
    assert "None" not in w1 and "unfinished" not in table.stdout
    res = chaos_cmd("cleanup")
    assert res.returncode == 0, res.stderr
    assert f"left cluster {cluster!r}" in res.stdout and "is up" in res.stdout
    assert cleanup.remaining(docker_client, cluster) > 0
