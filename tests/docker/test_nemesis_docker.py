"""Faults on real containers, each asserted from faults.jsonl AND from the agents' own status that it
really took effect: a worker killed until its replicas are restored, a majorities-ring, the leader
killed and restarted, a follower paused longer than an election timeout, latency with jitter on all
manager links (one run, tests/docker/experiments/tour.yaml); a random-mode run and its replay; SIGKILL
of `chaos run` mid-schedule, then `chaos cleanup` leaves nothing and faults.jsonl is intact."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from chaos.env import cleanup

pytestmark = [pytest.mark.docker, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
TOUR = HERE / "experiments" / "tour.yaml"
RANDOM = HERE / "experiments" / "random.yaml"


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _run(chaos_cmd, docker_client, out: Path, *args: str):
    name = f"n{os.getpid() % 10000}{int(time.time() * 1000) % 10000}"
    try:
        proc = chaos_cmd(*args, "--name", name, "--out", str(out), timeout=900)
    finally:
        left = cleanup.remaining(docker_client, cluster=name)
        cleanup.remove_objects(docker_client, cluster=name)
    runs = sorted(p for p in out.iterdir() if p.is_dir())
    assert runs, (proc.stdout, proc.stderr)
    return proc, runs[-1], left


@pytest.fixture(scope="module")
def tour(tmp_path_factory, docker_client, node_image, chaos_cmd):
    out = tmp_path_factory.mktemp("tour")
    proc, run_dir, left = _run(chaos_cmd, docker_client, out, "run", str(TOUR), "--seed", "3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert left == 0
    faults = {}
    for row in _jsonl(run_dir / "faults.jsonl"):
        faults.setdefault(row["fault"], {})[row["action"]] = row
    return run_dir, faults, _jsonl(run_dir / "status.jsonl")


def _window(faults, fid):
    f = faults[fid]
    assert f["start"]["ts"] < f["stop"]["ts"]
    return f["start"]["ts"], f["stop"]["intended_ts"]


def _statuses(statuses, node, t0, t1):
    return [s["status"] for s in statuses if s["node"] == node and t0 <= s["ts"] <= t1]


def test_nemesis_docker_kill_worker_until_replicas_restored(tour):
    run_dir, faults, statuses = tour
    f = faults["kill-worker"]
    (worker,) = f["start"]["targets"]
    assert f["start"]["details"]["nodes"][worker]["detail"]["exit_code"] == 137
    until = f["stop"]["details"]["until"]
    assert until["condition"] == "replicas-restored" and until["met"] is True
    t0, t1 = _window(faults, "kill-worker")
    assert all("error" in s for s in _statuses(statuses, worker, t0 + 0.5, t1)), "the killed worker answered"
    # the leader marked it down and the orchestrator replaced its tasks elsewhere, as the agents saw it
    leaders = [s for s in statuses if t0 <= s["ts"] <= t1 + 1 and s["status"].get("role") == "leader"]
    assert any((s["status"].get("workers") or {}).get(worker) == "down" for s in leaders)
    assert until["after_s"] > 1.0, "restored before the worker could have been marked down"


def test_nemesis_docker_majorities_ring(tour):
    _, faults, _ = tour
    f = faults["ring"]
    d = f["start"]["details"]
    assert d["links_cut"] > 0 and d["verified"]["checked_n"] == d["links_cut"]
    groups = f["start"]["targets"]
    assert len(groups) == 6 and all(len(g) > 3 for g in groups)  # each node sees a majority of 6
    assert len({tuple(g) for g in groups}) == 6  # and no two see the same set
    assert f["stop"]["details"]["links_cut"] == 0 and f["stop"]["details"]["verified"]["checked_n"] == d["links_cut"]


def test_nemesis_docker_kill_and_restart_the_leader(tour):
    _, faults, statuses = tour
    f = faults["kill-leader"]
    (victim,) = f["start"]["targets"]
    assert victim == f["intend-start"]["details"]["leader"]
    t0, t1 = _window(faults, "kill-leader")
    assert all("error" in s for s in _statuses(statuses, victim, t0 + 0.5, t1))
    others = [s for s in statuses if t0 <= s["ts"] <= t1 + 2 and s["node"] != victim
              and s["status"].get("role") == "leader"]
    assert others and max(s["status"]["term"] for s in others) > f["intend-start"]["details"]["term"]
    after = [s for s in statuses if s["node"] == victim and s["ts"] > f["stop"]["ts"] and "boot" in s["status"]]
    assert after and after[0]["status"]["boot"] >= 2, "restarted from its volume"
    assert f["stop"]["details"]["nodes"][victim]["answering_ts"] is not None


def test_nemesis_docker_pause_follower_longer_than_an_election_timeout(tour):
    _, faults, statuses = tour
    f = faults["pause-follower"]
    (node,) = f["start"]["targets"]
    assert node != f["intend-start"]["details"]["leader"]
    t0, t1 = _window(faults, "pause-follower")
    assert t1 - t0 > 0.6  # the agent's default election timeout is 300-600 ms
    assert all("error" in s for s in _statuses(statuses, node, t0 + 0.3, t1))
    back = [s for s in statuses if s["node"] == node and s["ts"] > f["stop"]["ts"] + 0.5]
    assert back and "error" not in back[-1]["status"] and back[-1]["status"]["boot"] == back[0]["status"]["boot"]


def test_nemesis_docker_latency_with_jitter_on_manager_links(tour):
    run_dir, faults, _ = tour
    f = faults["slow-managers"]
    assert f["start"]["targets"] == ["m1", "m2", "m3"]
    d = f["start"]["details"]
    assert d["links"] == 6 and d["verified"]["toxics_listed_on"] == 6
    assert d["params"] == {"ms": 150, "jitter_ms": 20}
    # the clients felt it: a write commits through manager links, so it takes >= one delayed round trip
    t0, t1 = _window(faults, "slow-managers")
    history = _jsonl(run_dir / "history.jsonl")
    inv = {}
    during, before = [], []
    for e in history:
        if e["type"] == "invoke":
            inv[e["process"]] = e
        elif e["type"] == "ok" and e["f"] == "write" and e["process"] in inv:
            start = inv[e["process"]]["ts"]
            lat = e["ts"] - start
            (during if t0 + 0.5 <= start <= t1 - 0.5 else before if start < faults["kill-worker"]["intend-start"]["ts"]
             else []).append(lat)
    during.sort()
    before.sort()
    assert during and before
    assert during[len(during) // 2] >= 0.12, f"median write latency under 150 ms latency: {during[len(during) // 2]}"
    assert before[len(before) // 2] < during[len(during) // 2] / 2


@pytest.fixture(scope="module")
def random_run(tmp_path_factory, docker_client, node_image, chaos_cmd):
    out = tmp_path_factory.mktemp("random")
    proc, run_dir, left = _run(chaos_cmd, docker_client, out, "run", str(RANDOM), "--seed", "4")
    return proc, run_dir, left, out


def test_nemesis_docker_random_mode_applies_the_drawn_plan(random_run):
    proc, run_dir, left, _ = random_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert left == 0
    plan = json.loads((run_dir / "plan.json").read_text())
    starts = [r for r in _jsonl(run_dir / "faults.jsonl") if r["action"] == "start"]
    assert [r["fault"] for r in starts] == [f["id"] for f in plan["faults"]]
    assert [r["kind"] for r in starts] == [f["kind"] for f in plan["faults"]]
    lateness = [r["lateness_s"] for r in _jsonl(run_dir / "faults.jsonl") if r["action"] == "intend-start"]
    assert max(lateness) < 0.5


def test_nemesis_docker_replay_runs_the_stored_plan(random_run, chaos_cmd, docker_client, tmp_path):
    _, run_dir, _, _ = random_run
    # the stored plan is what runs, even when the experiment file would now expand differently
    plan = json.loads((run_dir / "plan.json").read_text())
    plan["faults"] = plan["faults"][:2]
    (run_dir / "plan.json").write_text(json.dumps(plan))
    proc, replayed, left = _run(chaos_cmd, docker_client, tmp_path, "replay", str(run_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert left == 0
    run = json.loads((replayed / "run.json").read_text())
    assert run["replay_of"] == str(run_dir) and run["seed"] == plan["seed"]
    starts = [r["fault"] for r in _jsonl(replayed / "faults.jsonl") if r["action"] == "start"]
    assert starts == [f["id"] for f in plan["faults"]]


def test_nemesis_docker_sigkill_mid_schedule_then_cleanup(tmp_path, docker_client, node_image, chaos_popen,
                                                          chaos_cmd):
    name = f"k{os.getpid() % 100000}"
    proc = chaos_popen("run", str(TOUR), "--seed", "5", "--name", name, "--out", str(tmp_path))
    try:
        deadline = time.monotonic() + 240
        faults = None
        while time.monotonic() < deadline:
            found = list(tmp_path.glob("*/faults.jsonl"))
            if found and '"action":"start"' in found[0].read_text():
                faults = found[0]
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        assert faults is not None, "no fault took effect within 240 s"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert cleanup.remaining(docker_client, cluster=name) > 0  # the killed run left its cluster
        text = faults.read_text()
        assert text.endswith("\n")
        rows = [json.loads(line) for line in text.splitlines()]  # intact to its last line
        assert rows[0]["action"] == "intend-start"
        run = json.loads((faults.parent / "run.json").read_text())
        assert run["partial"] is True and run["outcome"] == "running"
        res = chaos_cmd("cleanup")
        assert res.returncode == 0, res.stdout + res.stderr
        assert name in res.stdout + res.stderr
        assert cleanup.remaining(docker_client, cluster=name) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        cleanup.remove_objects(docker_client, cluster=name)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_nemesis_docker_interrupt_mid_schedule_removes_everything_and_closes_the_record(
        sig, tmp_path, docker_client, node_image, chaos_popen):
    name = f"i{sig.value}{os.getpid() % 10000}"
    proc = chaos_popen("run", str(TOUR), "--seed", "6", "--name", name, "--out", str(tmp_path))
    try:
        deadline = time.monotonic() + 240
        faults = None
        while time.monotonic() < deadline and faults is None:
            found = list(tmp_path.glob("*/faults.jsonl"))
            if found and '"action":"start"' in found[0].read_text():
                faults = found[0]
            else:
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.1)
        assert faults is not None
        os.kill(proc.pid, sig)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        assert "run directory (partial)" in err and "Traceback" not in err
        assert cleanup.remaining(docker_client, cluster=name) == 0
        rows = [json.loads(line) for line in faults.read_text().splitlines()]
        opened = {r["fault"] for r in rows if r["action"] == "start"}
        closed = {r["fault"] for r in rows if r["action"] == "stop"}
        assert opened <= closed, "every fault in effect has an end line"
        run = json.loads((faults.parent / "run.json").read_text())
        assert run["outcome"] == "interrupted" and run["partial"] is True
    finally:
        if proc.poll() is None:
            proc.kill()
        cleanup.remove_objects(docker_client, cluster=name)


def test_nemesis_docker_refused_run_says_so_in_its_run_directory(tmp_path, docker_client, node_image, chaos_cmd):
    """Issue 16 item 9: a run refused because its cluster name is in use leaves a run directory that
    says it is partial and why, and prints its path; the running cluster is not touched."""
    name = f"r{os.getpid() % 100000}"
    try:
        up = chaos_cmd("up", "--name", name, "--managers", "1", "--workers", "0", timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr
        proc = chaos_cmd("run", str(TOUR), "--name", name, "--out", str(tmp_path), "--seed", "1", timeout=300)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
        assert str(run_dir) in proc.stderr
        run = json.loads((run_dir / "run.json").read_text())
        assert run["partial"] is True and run["outcome"] == "error" and "already up" in run["error"]
        assert cleanup.remaining(docker_client, cluster=name) > 0, "the refused run removed someone's cluster"
    finally:
        cleanup.remove_objects(docker_client, cluster=name)


def test_nemesis_docker_every_fault_took_effect_with_its_times(tour):
    """Each fault of the tour carries evidence it took effect (chaos.fault_effect) on real containers:
    the kills and the pause went silent (and the kills booted again), the ring's probes saw its cut,
    the latency's probes came back late; and applied_ts <= verified_ts <= the start record."""
    _, faults, _ = tour
    for fid in ("kill-worker", "ring", "kill-leader", "pause-follower", "slow-managers"):
        f = faults[fid]
        st = f["start"]
        assert st["applied_ts"] <= st["verified_ts"] <= st["ts"], (fid, st)
        effect = st.get("effect") or f["stop"].get("effect")
        assert effect and effect["effective"] is True, (fid, effect)
    assert faults["kill-leader"]["stop"]["effect"]["back"]["evidence"]["rebooted"] == faults["kill-leader"]["start"]["targets"]
    assert faults["slow-managers"]["stop"]["effect"]["acted"] == "delayed"
