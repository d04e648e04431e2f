"""`chaos cleanup` without options and `chaos status` of an unfinished cluster, driven through the
real CLI boundary (`chaos.cli.main`) against a fake engine that holds labelled objects.

What matters here: cleanup with no options removes exactly the runs whose owner process is gone
(a killed `up`, a killed demo) and names them, and leaves (and names) a cluster `chaos up`
finished and one a live process is still bringing up; counts are pluralised properly; `status`
says when `up` never finished and prints `-` for a worker's missing Raft fields (issue 16, items
8 and 11). The Docker test of the same with a real SIGKILLed `chaos up` is in
tests/docker/test_interrupt_docker.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from types import SimpleNamespace

import pytest

from chaos import cli
from chaos.env import cleanup as cleanup_mod
from chaos.env import labels as L
from chaos.env import runs

HOST = socket.gethostname()


@pytest.fixture(scope="module")
def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid   # reaped: no process has this pid now (pids are not reused this quickly)


def _obj(labels: dict) -> SimpleNamespace:
    return SimpleNamespace(attrs={"Labels": labels})


class FakeEngine:
    """Just enough of docker.DockerClient for chaos.env.runs.list_runs (filters are ignored: the
    client-side label check must do the selecting)."""

    def __init__(self) -> None:
        self.nets, self.vols, self.conts = [], [], []
        self.networks = SimpleNamespace(list=lambda filters=None: list(self.nets))
        self.volumes = SimpleNamespace(list=lambda filters=None: list(self.vols))
        self.containers = SimpleNamespace(list=lambda all=False, filters=None, sparse=False: list(self.conts))

    def add_run(self, cluster: str, run_id: str, owner: str | None, marker: str | None = None,
                nodes=("toxiproxy", "m1", "w1")) -> None:
        """A run: network with `owner`, a container and volume per node, and when `marker` is not
        None the up-complete marker (marker "" = handed over by `chaos up`, else its owner)."""
        base = L.object_labels(cluster, run_id)
        self.nets.append(_obj({**base, **({runs.OWNER_LABEL: owner} if owner else {})}))
        for n in nodes:
            self.conts.append(_obj(L.object_labels(cluster, run_id, n)))
            if n != "toxiproxy":
                self.vols.append(_obj(L.object_labels(cluster, run_id, n)))
        if marker is not None:
            self.vols.append(_obj({**base, runs.READY_MARKER_LABEL: "1",
                                   **({runs.OWNER_LABEL: marker} if marker else {})}))


@pytest.fixture
def engine(monkeypatch):
    import chaos.cmd_cluster as cmd

    eng = FakeEngine()
    removed_calls = []

    def fake_remove(client, cluster=None, run_id=None):
        removed_calls.append((cluster, run_id))
        return cleanup_mod.Removed(containers=["a", "b", "c"], networks=["n"], volumes=["v1", "v2"])

    monkeypatch.setattr(cmd, "connect", lambda *a, **k: eng)
    monkeypatch.setattr(cleanup_mod, "remove_objects", fake_remove)
    eng.removed_calls = removed_calls
    return eng


def test_cleanup_no_options_removes_only_runs_whose_owner_is_gone(engine, dead_pid, capsys):
    live = f"{HOST}:{os.getpid()}"
    engine.add_run("sk1", "aaaa0001", owner=f"{HOST}:{dead_pid}")                       # killed `up`
    engine.add_run("demo", "aaaa0002", owner=live, marker=f"{HOST}:{dead_pid}")         # killed demo
    engine.add_run("kept", "aaaa0003", owner=f"{HOST}:{dead_pid}", marker="")           # `chaos up` done
    engine.add_run("busy", "aaaa0004", owner=live)                                      # still starting
    engine.add_run("used", "aaaa0005", owner=live, marker=live)                         # a live demo
    assert cli.main(["cleanup"]) == 0
    out = capsys.readouterr().out
    assert sorted(engine.removed_calls) == [("demo", "aaaa0002"), ("sk1", "aaaa0001")]
    assert "removed cluster 'sk1' (run aaaa0001): its `chaos up` did not finish" in out
    assert "3 containers, 1 network, 2 volumes" in out
    assert "1 networks" not in out
    assert "removed cluster 'demo'" in out
    assert "left cluster 'kept' (run aaaa0003) is up" in out
    assert f"left cluster 'busy' (run aaaa0004) is being brought up by {live}" in out
    assert f"left cluster 'used' (run aaaa0005) is in use by {live}" in out


def test_cleanup_no_options_with_nothing_stale_says_so(engine, capsys):
    engine.add_run("kept", "aaaa0003", owner=f"{HOST}:1", marker="")
    assert cli.main(["cleanup"]) == 0
    out = capsys.readouterr().out
    assert engine.removed_calls == []
    assert "nothing to clean up" in out


def test_cleanup_name_removes_that_cluster_whatever_its_state(engine, capsys):
    engine.add_run("kept", "aaaa0003", owner=f"{HOST}:{os.getpid()}", marker="")
    assert cli.main(["cleanup", "--name", "kept"]) == 0
    assert engine.removed_calls == [("kept", None)]
    assert "cleanup of cluster 'kept': 3 containers, 1 network, 2 volumes removed" in capsys.readouterr().out


@pytest.mark.parametrize("run, alive, expected", [
    (runs.RunInfo("c", "r", complete=False, owner="h:1"), False, runs.STALE),
    (runs.RunInfo("c", "r", complete=False, owner="h:1"), True, runs.STARTING),
    (runs.RunInfo("c", "r", complete=False, owner=None), True, runs.STALE),
    (runs.RunInfo("c", "r", complete=True, owner=None), False, runs.KEPT),
    (runs.RunInfo("c", "r", complete=True, owner="h:1"), True, runs.IN_USE),
    (runs.RunInfo("c", "r", complete=True, owner="h:1"), False, runs.STALE),
])
def test_runs_verdict_table(run, alive, expected):
    assert runs.verdict(run, alive=lambda _o: alive) == expected


def test_runs_owner_alive_tells_a_dead_local_process(dead_pid):
    assert runs.owner_alive(f"{HOST}:{os.getpid()}")
    assert not runs.owner_alive(f"{HOST}:{dead_pid}")
    assert runs.owner_alive(f"another-host-{HOST}:{dead_pid}")  # cannot tell: never delete


# -- status -------------------------------------------------------------------------------------

def _fake_cluster(run_id: str) -> SimpleNamespace:
    handles = {n: SimpleNamespace(kind=k, container=SimpleNamespace(status="running"))
               for n, k in (("m1", "manager"), ("w1", "worker"), ("toxiproxy", "toxiproxy"))}
    statuses = {
        "m1": {"node": "m1", "kind": "manager", "role": "leader", "term": 2, "leader": "m1", "commit_index": 7,
               "members": {"m1": {"state": "alive"}, "w1": {"state": "alive"}}, "workers": {"w1": "ready"}},
        "w1": {"node": "w1", "kind": "worker", "role": "worker", "term": None, "leader": "m1",
               "commit_index": None, "members": {"m1": {"state": "alive"}, "w1": {"state": "alive"}}},
    }
    api = SimpleNamespace(proxies=lambda: {})
    return SimpleNamespace(run_id=run_id, nodes=["m1", "w1"], managers=["m1"], workers=["w1"],
                           toxiproxy_nodes=["toxiproxy"], handles=handles, refresh=lambda: None,
                           statuses=lambda: statuses, toxiproxy_api=lambda timeout_s: api,
                           toxiproxy_image=lambda: "chaos-node:x", backend="local", host_of=lambda n: None,
                           free_spares=lambda kind=None: [])


@pytest.fixture
def status_engine(engine, monkeypatch):
    import chaos.cmd_cluster as cmd

    monkeypatch.setattr(cmd, "require_cluster", lambda client, name: _fake_cluster("bbbb0001"))
    return engine


def test_status_of_a_cluster_whose_up_never_finished_is_not_ready(status_engine, dead_pid, capsys):
    status_engine.add_run("sk1", "bbbb0001", owner=f"{HOST}:{dead_pid}")
    assert cli.main(["status", "--name", "sk1"]) == 0
    out = capsys.readouterr().out
    assert "unfinished: `chaos up` of run bbbb0001 never completed" in out
    assert "\nready" not in out and "not ready" in out
    assert cli.main(["status", "--name", "sk1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ready"] is False and doc["up_complete"] is False


def test_status_of_a_finished_cluster_is_ready_and_workers_show_dashes(status_engine, capsys):
    status_engine.add_run("ok", "bbbb0001", owner=f"{HOST}:1", marker="")
    assert cli.main(["status", "--name", "ok"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("ready") and "unfinished" not in out
    assert "None" not in out
    w1 = next(line for line in out.splitlines() if " w1 " in line)
    cells = [c.strip() for c in w1.split("│") if c.strip()]
    assert cells[:8] == ["w1", "worker", "running", "worker", "-", "-", "m1", "-"]   # raft column: "-"
