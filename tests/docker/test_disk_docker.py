"""Disk faults on real containers (issue 22): a power loss of the leader and a wiped worker in one
run (tests/docker/experiments/disk.yaml), each asserted from faults.jsonl AND from the nodes' own
journals, statuses and final stores; then every manager's power cut under the planted
`ack_before_fsync`, where the cut must really drop bytes, exactly back to the synced length, and
the run must be INVALID."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from chaos.env import cleanup

pytestmark = [pytest.mark.docker, pytest.mark.slow]

HERE = Path(__file__).resolve().parent


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _run(chaos_cmd, docker_client, out: Path, *args: str):
    name = f"d{os.getpid() % 10000}{int(time.time() * 1000) % 10000}"
    try:
        proc = chaos_cmd(*args, "--name", name, "--out", str(out), timeout=900)
    finally:
        left = cleanup.remaining(docker_client, cluster=name)
        cleanup.remove_objects(docker_client, cluster=name)
    runs = sorted(p for p in out.iterdir() if p.is_dir())
    assert runs, (proc.stdout, proc.stderr)
    return proc, runs[-1], left


def _faults(run_dir: Path) -> dict:
    out: dict = {}
    for row in _jsonl(run_dir / "faults.jsonl"):
        out.setdefault(row["fault"], {})[row["action"]] = row
    return out


@pytest.fixture(scope="module")
def disk_tour(tmp_path_factory, docker_client, node_image, chaos_cmd):
    out = tmp_path_factory.mktemp("disk")
    proc, run_dir, left = _run(chaos_cmd, docker_client, out, "run", str(HERE / "experiments" / "disk.yaml"),
                               "--seed", "1")
    assert left == 0, "the run left objects behind (the wipe helper included)"
    return proc, run_dir, _faults(run_dir)


def test_disk_docker_tour_is_valid(disk_tour):
    proc, run_dir, _ = disk_tour
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_disk_docker_power_loss_rebooted_the_leader_cut_back_to_its_synced_length(disk_tour):
    _, run_dir, faults = disk_tour
    f = faults["cut-leader"]
    node = f["start"]["targets"][0]
    eff = f["stop"]["effect"]
    assert eff["effective"] is True, eff
    back = f["stop"]["details"]["nodes"][node]
    pl = back["power_loss"]
    assert pl["boot"] == back["boot"] and back["boot"] > eff["evidence"]["boot_before"][node]
    log = pl["files"]["raft/log.jsonl"]
    assert log["size"] - log["synced"] == log["dropped"] >= 0
    # the node's own journal says it, in the boot the harness saw
    journal = _jsonl(run_dir / "events" / f"{node}.jsonl")
    cuts = [e for e in journal if e["type"] == "power-loss"]
    assert [e["boot"] for e in cuts] == [back["boot"]]
    assert cuts[0]["dropped_bytes"] == pl["dropped_bytes"]


def test_disk_docker_wiped_worker_came_back_fresh_rejoined_and_got_tasks(disk_tour):
    _, run_dir, faults = disk_tour
    f = faults["wipe-w"]
    assert f["start"]["targets"] == ["w1"]
    assert f["stop"]["effect"]["effective"] is True, f["stop"]["effect"]
    wiped = f["start"]["details"]["nodes"]["w1"]["detail"]["wiped"]
    assert wiped["removed_files"] >= 1 and wiped["kept"] == ["journal.jsonl"]
    assert f["stop"]["effect"]["evidence"]["boot_after"]["w1"] == 1   # (asked again if it answered late)
    final = json.loads((run_dir / "final" / "w1.json").read_text())
    assert final["status"]["boot"] == 1
    # the journal was kept: its sequence continues across the wipe, the boot counter starts again
    journal = _jsonl(run_dir / "events" / "w1.jsonl")
    seqs = [e["seq"] for e in journal]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    boots = [e["boot"] for e in journal if e["type"] == "boot"]
    assert boots[0] == 1 and boots[-1] == 1 and len(boots) >= 2
    # rejoined: every other node sees it alive, and once w2 was killed its replicas ran on w1
    assert faults["crash-w2"]["stop"]["details"]["until"]["met"] is True
    for other in ("m1", "m2", "m3", "w2"):
        st = json.loads((run_dir / "final" / f"{other}.json").read_text())["status"]
        assert st["members"]["w1"]["state"] == "alive", (other, st["members"])
    stores = [json.loads((run_dir / "final" / f"{m}.json").read_text()).get("store") or {} for m in ("m1", "m2", "m3")]
    tasks = next(s["tasks"] for s in stores if s.get("tasks"))
    on_w1 = [t for t in tasks.values() if t.get("worker") == "w1" and t.get("state") == "running"]
    assert len(on_w1) == 2, ("the wiped worker does not run both replicas", tasks)


def test_disk_docker_planted_late_fsync_loses_bytes_exactly_to_the_synced_length(
        tmp_path, docker_client, node_image, chaos_cmd):
    proc, run_dir, left = _run(chaos_cmd, docker_client, tmp_path, "run",
                               str(HERE / "experiments" / "power-cut-planted.yaml"), "--seed", "1",
                               "--plant", "ack_before_fsync")
    assert left == 0
    f = _faults(run_dir)["cut"]
    assert f["stop"]["effect"]["effective"] is True, f["stop"]["effect"]
    dropped = 0
    for node, rec in f["stop"]["details"]["nodes"].items():
        log = rec["power_loss"]["files"]["raft/log.jsonl"]
        assert log["size"] - log["synced"] == log["dropped"], (node, log)
        dropped += log["dropped"]
    assert dropped > 0, "a background fsync every second left nothing unsynced on any manager"
    assert proc.returncode == 1, proc.stdout[-3000:]


def test_disk_docker_full_leader_refused_writes_said_so_and_recovered(disk_tour):
    _, run_dir, faults = disk_tour
    f = faults["fill-leader"]
    node = f["start"]["targets"][0]
    full = f["start"]["details"]["nodes"][node]["detail"]
    assert full["probe"] == "ENOSPC" and full["free_after"] < 4096 <= full["ballast_bytes"]
    freed = f["stop"]["details"]["nodes"][node]["detail"]
    assert freed["probe"] == "ok" and freed["free_after"] > 1 << 20
    assert f["stop"]["effect"]["effective"] is True, f["stop"]["effect"]
    # the node's journal says what happened (written once space returned), in order
    journal = _jsonl(run_dir / "events" / f"{node}.jsonl")
    disk = [(e["file"], e["state"]) for e in journal if e["type"] == "disk"]
    assert ("raft/log.jsonl", "full") in disk and ("raft/log.jsonl", "ok") in disk, disk
    assert disk.index(("raft/log.jsonl", "full")) < disk.index(("raft/log.jsonl", "ok"))
    final = json.loads((run_dir / "final" / f"{node}.json").read_text())["status"]
    assert "disk_error" not in final and final["counters"]["storage_write_errors"] >= 1
