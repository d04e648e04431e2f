"""Unit tests of the agent's pure parts: config, journal, orchestrator policy, task supervisor."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from swarmnode.agent import config as cfgmod
from swarmnode.agent import orchestrator
from swarmnode.agent.journal import Journal
from swarmnode.agent.localcluster import NODE_IMAGE_DIR, wait_for
from swarmnode.agent.tasks import TaskSupervisor

BASE = {"CHAOS_NODE_ID": "m1", "CHAOS_ROLE": "manager", "CHAOS_MANAGERS": "m1,m2,m3",
        "CHAOS_PEERS": json.dumps({"m2": "h2:7000", "m3": "h3:7000", "w1": "h4:7000"})}


# -- config -------------------------------------------------------------------------------------

def test_config_defaults_and_derived_values():
    c = cfgmod.load(BASE)
    assert c.managers == ("m1", "m2", "m3")
    assert c.seeds == ("m2", "m3")
    assert c.peers["w1"] == ("h4", 7000)
    assert (c.peer_port, c.api_port, c.data_dir, c.tick_ms) == (7000, 8080, "/data", 10)
    assert c.ticks(25) == 3 and c.ticks(1) == 1


@pytest.mark.parametrize("override,needle", [
    ({"CHAOS_NODE_ID": "M1"}, "CHAOS_NODE_ID"),
    ({"CHAOS_NODE_ID": ""}, "CHAOS_NODE_ID: required"),
    ({"CHAOS_ROLE": "boss"}, "CHAOS_ROLE"),
    ({"CHAOS_MANAGERS": "m2,m3"}, "must be listed"),
    ({"CHAOS_PEERS": "{not json"}, "CHAOS_PEERS: not JSON"),
    ({"CHAOS_PEERS": "[]"}, "CHAOS_PEERS: must be a JSON object"),
    ({"CHAOS_PEERS": json.dumps({"m2": "h2:7000"})}, "no address for manager(s) m3"),
    ({"CHAOS_PEERS": json.dumps({"m2": "h2", "m3": "h3:1"})}, "CHAOS_PEERS[m2]"),
    ({"CHAOS_PEER_PORT": "70000"}, "CHAOS_PEER_PORT=70000"),
    ({"CHAOS_TICK_MS": "ten"}, "CHAOS_TICK_MS='ten': not an integer"),
    ({"CHAOS_ELECTION_TIMEOUT_MIN_MS": "90"}, "must exceed 2 x CHAOS_HEARTBEAT_MS"),
    ({"CHAOS_ELECTION_TIMEOUT_MAX_MS": "300"}, "CHAOS_ELECTION_TIMEOUT_MAX_MS must exceed"),
    ({"CHAOS_GOSSIP_PROBE_TIMEOUT_MS": "600"}, "CHAOS_GOSSIP_PROBE_TIMEOUT_MS"),
    ({"CHAOS_API_PORT": "7000"}, "must differ"),
    ({"CHAOS_FSYNC": "maybe"}, "CHAOS_FSYNC"),
    ({"CHAOS_FSYNC_THREAD": "2"}, "CHAOS_FSYNC_THREAD"),
    ({"CHAOS_APPLY_DURING_FSYNC": "on"}, "CHAOS_APPLY_DURING_FSYNC"),
    ({"CHAOS_GC_FREEZE": "yes"}, "CHAOS_GC_FREEZE"),
    ({"CHAOS_GC_THRESHOLD0": "-1"}, "CHAOS_GC_THRESHOLD0"),
    ({"CHAOS_SEEDS": "zz"}, "CHAOS_SEEDS: seed 'zz'"),
    ({"CHAOS_ROLE": "worker"}, "CHAOS_ROLE=worker but"),
])
def test_config_rejects_bad_values_with_the_variable_named(override, needle):
    with pytest.raises(cfgmod.ConfigError) as e:
        cfgmod.load({**BASE, **override})
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_config_every_parsed_variable_is_documented():
    src = open(cfgmod.__file__).read()
    parsed = {v for v in set(__import__("re").findall(r'"(CHAOS_[A-Z_]+)"', src))}
    missing = parsed - set(cfgmod.documented_variables())
    assert not missing, f"undocumented: {sorted(missing)}"


def test_config_bad_value_exits_2_with_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAOS_")}
    env.update(BASE, CHAOS_TICK_MS="0", PYTHONPATH=NODE_IMAGE_DIR)
    p = subprocess.run([sys.executable, "-m", "swarmnode.agent"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "CHAOS_TICK_MS=0" in lines[0]


# -- journal ------------------------------------------------------------------------------------

def test_journal_seq_and_boot_continue_across_restarts(tmp_path):
    j = Journal(str(tmp_path), "m1", clock=lambda: 100.0)
    j.record({"type": "term", "term": 1})
    j.flush()
    j.close()
    with open(tmp_path / "journal.jsonl", "ab") as f:
        f.write(b'{"torn": ')  # a crash in the middle of a line
    j2 = Journal(str(tmp_path), "m1", clock=lambda: 101.0)
    j2.record({"type": "commit", "index": 3})
    j2.flush()
    lines = [json.loads(l) for l in open(tmp_path / "journal.jsonl", "rb").read().splitlines()
             if l.startswith(b'{"') and b"torn" not in l]
    assert [(l["seq"], l["boot"], l["type"]) for l in lines] == [
        (1, 1, "boot"), (2, 1, "term"), (3, 2, "boot"), (4, 2, "commit")]
    assert all(l["node"] == "m1" for l in lines)
    assert [json.loads(l)["seq"] for l in j2.read_since(2).splitlines()] == [3, 4]
    j2.close()


def test_journal_flush_makes_lines_visible_to_other_readers(tmp_path):
    j = Journal(str(tmp_path), "w1")
    j.record({"type": "member", "member": "w2", "state": "alive", "incarnation": 0})
    assert b"w2" not in open(tmp_path / "journal.jsonl", "rb").read()
    j.flush()
    assert b"w2" in open(tmp_path / "journal.jsonl", "rb").read()
    j.close()


# -- orchestrator -------------------------------------------------------------------------------

def apply_cmds(nodes, services, tasks, cmds):
    """A tiny model of the store's task commands (forward-only states)."""
    rank = {"new": 0, "assigned": 1, "running": 2, "complete": 3, "failed": 3, "shutdown": 3,
            "orphaned": 3}
    for c in cmds:
        if c["op"] == "task.create" and c["task"] not in tasks:
            tasks[c["task"]] = {"service": c["service"], "slot": c["slot"], "worker": c["worker"],
                                "state": c["state"]}
        elif c["op"] == "task.update":
            t = tasks[c["task"]]
            assert rank[c["state"]] > rank[t["state"]], f"backward move {t} -> {c}"
            t["state"] = c["state"]


def check_invariants(reconcile, seed):
    import random
    rng = random.Random(seed)
    workers = [f"w{i}" for i in range(1, 6)]
    nodes = {w: {"state": "ready"} for w in workers}
    services = {"web": {"replicas": 3}, "db": {"replicas": 1}}
    tasks: dict = {}
    history: dict = {}
    for step in range(60):
        r = rng.random()
        if r < 0.15:
            nodes[rng.choice(workers)]["state"] = rng.choice(["ready", "down"])
        elif r < 0.3:
            services[rng.choice(["web", "db", "api"])] = {"replicas": rng.randint(0, 4)}
        elif r < 0.35 and services:
            services.pop(rng.choice(sorted(services)))
        elif r < 0.6 and tasks:
            tid = rng.choice(sorted(tasks))
            if tasks[tid]["state"] == "assigned":
                tasks[tid]["state"] = rng.choice(["running", "failed"])
        apply_cmds(nodes, services, tasks, reconcile(nodes, services, tasks))
        for tid, t in tasks.items():
            assert history.setdefault(tid, t["worker"]) == t["worker"], f"task {tid} moved (seed {seed})"
        # after a round, every desired slot has exactly one live task on a ready worker
        if any(n["state"] == "ready" for n in nodes.values()):
            for svc, s in services.items():
                for slot in range(s["replicas"]):
                    live = [t for t in tasks.values() if t["service"] == svc and t["slot"] == slot
                            and t["state"] in orchestrator.LIVE]
                    assert len(live) == 1, (seed, svc, slot, live)
                    assert nodes[live[0]["worker"]]["state"] == "ready"
        for t in tasks.values():
            if t["state"] in orchestrator.LIVE:
                assert services.get(t["service"], {}).get("replicas", 0) > t["slot"]


@pytest.mark.parametrize("seed", range(20))
def test_orchestrator_keeps_slots_filled_and_never_moves_tasks(seed):
    check_invariants(orchestrator.reconcile, seed)


def broken_reconcile_moves_tasks(nodes, services, tasks):
    """Deliberately wrong: 'rescues' a task on a DOWN worker by reassigning it in place."""
    ready = orchestrator.ready_workers(nodes)
    out = []
    for tid, t in sorted(tasks.items()):
        if t["state"] in orchestrator.LIVE and nodes.get(t["worker"], {}).get("state") == "down" and ready:
            t["worker"] = ready[0]
    out += orchestrator.reconcile(nodes, services, tasks)
    return out


def test_orchestrator_check_catches_a_policy_that_moves_tasks():
    with pytest.raises(AssertionError, match="moved"):
        for seed in range(20):
            check_invariants(broken_reconcile_moves_tasks, seed)


def test_orchestrator_table():
    nodes = {"w1": {"state": "ready"}, "w2": {"state": "down"}, "w3": {"state": "ready"}}
    services = {"web": {"replicas": 2}}
    tasks = {"web.0.1": {"service": "web", "slot": 0, "worker": "w2", "state": "running"},
             "web.1.1": {"service": "web", "slot": 1, "worker": "w1", "state": "running"},
             "web.2.1": {"service": "web", "slot": 2, "worker": "w3", "state": "running"}}
    assert orchestrator.reconcile(nodes, services, tasks) == [
        {"op": "task.update", "task": "web.0.1", "state": "orphaned"},
        {"op": "task.update", "task": "web.2.1", "state": "shutdown"},
        {"op": "task.create", "task": "web.0.2", "service": "web", "slot": 0, "worker": "w3",
         "state": "assigned"},
    ]
    assert orchestrator.assignments_for("w1", tasks) == {
        "web.1.1": {"service": "web", "slot": 1, "state": "running"}}


def test_orchestrator_holds_a_slot_during_its_restart_delay():
    nodes = {"w1": {"state": "ready"}}
    services = {"web": {"replicas": 1}}
    tasks = {"web.0.1": {"service": "web", "slot": 0, "worker": "w1", "state": "failed"}}
    assert orchestrator.reconcile(nodes, services, tasks, frozenset({("web", 0)})) == []
    assert [c["task"] for c in orchestrator.reconcile(nodes, services, tasks)] == ["web.0.2"]


# -- task supervisor ----------------------------------------------------------------------------

def test_tasks_run_report_and_stop_when_told():
    sup = TaskSupervisor((sys.executable, "-c", "import time\nwhile True: time.sleep(0.1)"), "w1")
    sup.ensure_running("t1", {"service": "s", "slot": 0})
    sup.ensure_running("t2", {"service": "s", "slot": 1})
    sup.poll()
    assert sup.states() == {"t1": "running", "t2": "running"}
    sup.stop("t1")
    wait_for(lambda: (sup.poll(), sup.states()["t1"] == "shutdown")[1], 10, what="t1 stopped")
    assert sup.states()["t2"] == "running"
    sup.ensure_running("t1", {})  # a finished task is never restarted
    assert sup.states()["t1"] == "shutdown"
    sup.shutdown_all()


def test_tasks_exit_codes_map_to_complete_and_failed():
    ok = TaskSupervisor((sys.executable, "-c", "pass"), "w1")
    bad = TaskSupervisor((sys.executable, "-c", "raise SystemExit(3)"), "w1")
    ok.ensure_running("a", {})
    bad.ensure_running("b", {})
    wait_for(lambda: (ok.poll(), bad.poll(), ok.states()["a"] != "running"
                      and bad.states()["b"] != "running")[2], 10, what="tasks exit")
    assert ok.states() == {"a": "complete"} and bad.states() == {"b": "failed"}


# -- fast store digest --------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from swarmnode.agent.fast_store import FastStore  # noqa: E402
from swarmnode.raft.store import Store  # noqa: E402

KEYS = st.sampled_from(["a", "b", "é", "k10", "k9", "\u2603", "z" * 40])
VALS = st.one_of(st.integers(), st.booleans(), st.none(), st.text(max_size=5),
                 st.floats(allow_nan=False, allow_infinity=False))
COMMANDS = st.one_of(
    st.builds(lambda k, v: {"op": "kv.put", "key": k, "value": v}, KEYS, VALS),
    st.builds(lambda k, e, v: {"op": "kv.cas", "key": k, "expected": e, "value": v}, KEYS, VALS, VALS),
    st.builds(lambda k: {"op": "kv.delete", "key": k}, KEYS),
    st.builds(lambda k, c, s: {"op": "kv.put", "key": k, "value": 1, "client_id": c, "seq": s},
              KEYS, st.sampled_from(["c1", "c2"]), st.integers(1, 4)),
    st.builds(lambda n, s: {"op": "node.upsert", "node": n, "fields": {"state": s}},
              st.sampled_from(["w1", "w2"]), st.sampled_from(["ready", "down"])),
    st.builds(lambda n, r: {"op": "service.create", "name": n, "replicas": r},
              st.sampled_from(["web", "db"]), st.integers(0, 3)),
    st.builds(lambda t, w: {"op": "task.create", "task": t, "service": "web", "slot": 0, "worker": w},
              st.sampled_from(["t1", "t2"]), st.sampled_from(["w1", None])),
)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(cmds=st.lists(COMMANDS, max_size=40), snap_at=st.integers(0, 40))
def test_fast_store_digest_equals_store_digest(cmds, snap_at):
    slow, fast = Store(), FastStore()
    for i, cmd in enumerate(cmds, start=1):
        if i == snap_at:  # a snapshot/restore round trip keeps the fast path exact
            fast2 = FastStore()
            fast2.restore(fast.snapshot())
            fast = fast2
        assert slow.apply(i, dict(cmd)) == fast.apply(i, dict(cmd))
        fast.digests = 10**9 + 1  # skip the built-in cross-check: compare independently here
        assert fast.digest() == slow.digest() == slow.digest_recomputed(), (i, cmd)
    assert fast.mismatches == 0 and fast.kv == slow.kv


@settings(max_examples=100, deadline=None, derandomize=True)
@given(cmds=st.lists(COMMANDS, max_size=30))
def test_fast_store_snapshot_equals_store_snapshot_and_is_its_own_copy(cmds):
    slow, fast = Store(), FastStore()
    for i, cmd in enumerate(cmds, start=1):
        slow.apply(i, dict(cmd))
        fast.apply(i, dict(cmd))
    snap = fast.snapshot()
    assert snap == slow.snapshot()
    frozen = json.dumps(snap, sort_keys=True)
    n = len(cmds)
    fast.apply(n + 1, {"op": "kv.put", "key": "zz", "value": 1})
    for k in list(fast.kv):
        fast.apply(n + 2, {"op": "kv.delete", "key": k})
    fast.apply(n + 3, {"op": "kv.put", "key": "a", "value": "changed", "client_id": "cz", "seq": 1})
    assert json.dumps(snap, sort_keys=True) == frozen   # later writes do not reach the snapshot
    odd = FastStore()
    odd.kv["m"] = {"nested": [1]}     # a non-scalar value (not from the API): deep-copied as Store does
    assert odd.snapshot()["kv"]["m"] is not odd.kv["m"]


def test_fast_store_falls_back_when_the_digest_definition_drifts():
    class Drifted(FastStore):  # deliberately broken: the fast path ignores the sessions section
        def _fast_digest(self):
            saved, self.sessions = self.sessions, {}
            try:
                return super()._fast_digest()
            finally:
                self.sessions = saved

    s = Drifted()
    s.apply(1, {"op": "kv.put", "key": "a", "value": 1, "client_id": "c", "seq": 1})
    assert s.digest() == s.digest_recomputed() and s.mismatches == 1 and s._slow


def test_fast_store_cross_checks_early_only_while_small_then_every_nth():
    """A store restored from a large snapshot (a joiner, a restart) does not recompute the whole
    digest on each of its first digests (O(store) each: seconds at 10,000 keys), and is still
    cross-checked every VERIFY_EVERY-th digest -- incrementally, never from scratch in one call;
    a small store is cross-checked from the first."""
    import swarmnode.agent.fast_store as FS
    big = Store()
    for i in range(FS.VERIFY_FIRST_MAX_ITEMS + 1):
        big.apply(i + 1, {"op": "kv.put", "key": f"k{i}", "value": i})

    class Counting(FastStore):
        slow_calls = 0

        def digest_recomputed(self):
            self.slow_calls += 1
            return super().digest_recomputed()

    s = Counting()
    s.restore(big.snapshot())
    for _ in range(FS.VERIFY_EVERY):
        s.digest()
    assert s.slow_calls == 0 and s._check is not None and s.checks_done == 0
    for _ in range(FS.VERIFY_EVERY // 2):
        s.digest()
    assert s.checks_done == 1 and s.mismatches == 0 and s._check is None and s.slow_calls == 0
    small = Counting()
    small.apply(1, {"op": "kv.put", "key": "a", "value": 1})
    small.digest()
    assert small.slow_calls == 1


def _hashes_done(check) -> int:
    return sum(len(p) for p in check.parts[:check.part]) + check.pos


def test_fast_store_periodic_check_catches_a_diverged_store_in_bounded_slices():
    """A store whose running kv sum no longer matches its pairs (a value changed behind the sum's
    back: the bug class the cross-check exists for) is caught by the periodic check: the node
    counts the mismatch and answers the from-scratch digest from then on. Each digest hashes at
    most a bounded slice of the frozen pairs (no O(store) pass on one call), and writes made while
    the check runs do not disturb it (it judges the frozen moment)."""
    import swarmnode.agent.fast_store as FS
    s = FastStore()
    for i in range(3000):
        s.apply(i + 1, {"op": "kv.put", "key": f"k{i}", "value": i, "client_id": f"c{i % 7}", "seq": i + 1})
    s.digests = FS.VERIFY_FIRST + 1    # past the early checks
    s.kv["k5"] = "tampered"            # same size, running sum not told: the fast digest is now wrong
    assert s._fast_digest() != s.digest_recomputed()
    while s._check is None:
        assert s.digest() == s._fast_digest() and s.mismatches == 0
    budget = s._check_budget
    assert budget <= 3007 // (FS.VERIFY_EVERY // 2) + 1
    done = _hashes_done(s._check)
    n = 0
    while s._check is not None:
        s.apply(3001 + n, {"op": "kv.put", "key": f"new{n}", "value": n})   # writes during the check
        before = s._check
        s.digest()
        n += 1
        if s._check is not None:
            assert _hashes_done(before) - done <= budget
            done = _hashes_done(before)
    assert n <= FS.VERIFY_EVERY // 2
    assert s.mismatches == 1 and s._slow
    assert s.digest() == s.digest_recomputed()


def test_fast_store_periodic_check_passes_a_sound_store_with_writes_during_it():
    s = FastStore()
    for i in range(2000):
        s.apply(i + 1, {"op": "kv.put", "key": f"k{i}", "value": i})
    s.start_check()
    for i in range(50):   # overwrites, deletes and new keys while the frozen pairs are re-hashed
        s.apply(2001 + 3 * i, {"op": "kv.put", "key": f"k{i}", "value": -i})
        s.apply(2002 + 3 * i, {"op": "kv.delete", "key": f"k{i + 100}"})
        s.apply(2003 + 3 * i, {"op": "kv.put", "key": f"x{i}", "value": i, "client_id": "c", "seq": i + 1})
        s.digest()
    assert s.finish_check() and s.checks_done == 1 and s.mismatches == 0
    s.kv["k1999"] = "tampered"
    s.start_check()
    assert not s.finish_check() and s.mismatches == 1


def test_node_rejoins_gossip_after_the_core_gives_up(tmp_path):
    """Seeds that start late (containers start in any order) must not leave a node outside gossip
    for good: when the SWIM core gives up joining, the driver starts another round."""
    import asyncio
    from swarmnode.agent.node import Node

    env = dict(BASE, CHAOS_NODE_ID="w1", CHAOS_ROLE="worker", CHAOS_DATA_DIR=str(tmp_path),
               CHAOS_PEERS=json.dumps({"m1": "127.0.0.1:1", "m2": "127.0.0.1:1", "m3": "127.0.0.1:1"}))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        node = Node(cfgmod.load(env))
        node.swim.join()
        node.swim.counters["join_gave_up"] += 1  # as if join_max_attempts were exhausted
        node.swim._joined = False
        node.tick()
        assert node.counters["gossip_rejoins"] == 1
        node.tick()
        assert node.counters["gossip_rejoins"] == 1  # once per give-up, not once per tick
        loop.run_until_complete(node.transport.close())
        node.journal.close()
    finally:
        loop.close()
        asyncio.set_event_loop(None)


def test_pure_modules_do_not_import_asyncio_or_chaos():
    code = ("import sys, swarmnode.sim.transport, swarmnode.agent.config, swarmnode.agent.frames, "
            "swarmnode.agent.orchestrator, swarmnode.agent.journal\n"
            "bad = [m for m in ('asyncio', 'aiohttp', 'chaos') if m in sys.modules]\n"
            "assert not bad, bad\n")
    env = dict(os.environ, PYTHONPATH=NODE_IMAGE_DIR)
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr


def test_journal_keeps_the_last_lines_in_memory_and_reads_older_ones_from_the_file(tmp_path):
    from swarmnode.agent.journal import Journal

    j = Journal(str(tmp_path), "m1", memory_lines=3)
    for i in range(10):
        j.record({"type": "apply", "index": i})
    assert [seq for seq, _ in j._memory] == [9, 10, 11]          # boot is seq 1
    recent = [json.loads(x) for x in j.read_since(8).splitlines()]
    assert [e["seq"] for e in recent] == [9, 10, 11]
    every = [json.loads(x) for x in j.read_since(0).splitlines()]   # older than memory: the file
    assert [e["seq"] for e in every] == list(range(1, 12))
    j.close()


def test_gc_tuning_freezes_start_up_objects_and_sets_the_young_threshold():
    import gc
    import types
    from swarmnode.agent.node import Node
    threshold = gc.get_threshold()
    try:
        Node._tune_gc(types.SimpleNamespace(cfg=cfgmod.load(dict(BASE))))   # the defaults
        assert gc.get_freeze_count() > 0 and gc.get_threshold() == threshold
        gc.unfreeze()
        Node._tune_gc(types.SimpleNamespace(cfg=cfgmod.load(dict(BASE, CHAOS_GC_FREEZE="0",
                                                                 CHAOS_GC_THRESHOLD0="5000"))))
        assert gc.get_freeze_count() == 0 and gc.get_threshold() == (5000,) + threshold[1:]
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_write_trace_is_off_by_default_and_dumps_stages_when_named(tmp_path, monkeypatch):
    from swarmnode.agent import wtrace
    monkeypatch.setattr(wtrace, "ON", False)
    monkeypatch.setattr(wtrace, "_rows", [])
    monkeypatch.setattr(wtrace, "_path", "")
    monkeypatch.delenv("CHAOS_WRITE_TRACE", raising=False)
    wtrace.setup("m1")
    assert not wtrace.ON
    monkeypatch.setenv("CHAOS_WRITE_TRACE", str(tmp_path / "{node}.trace"))
    import atexit
    import gc
    monkeypatch.setattr(atexit, "register", lambda f: None)
    callbacks = list(gc.callbacks)
    try:
        wtrace.setup("m1")
        assert wtrace.ON
        wtrace.rec("prop", 7)
        wtrace.rec_range("sync", 7, 9)
        gc.collect()
    finally:
        gc.callbacks[:] = callbacks
    wtrace.dump()
    rows = [json.loads(line) for line in open(tmp_path / "m1.trace")]
    assert [r[:2] for r in rows if not r[0].startswith("gc")] == [["prop", 7], ["sync", 7], ["sync", 8], ["sync", 9]]
    gcs = [r for r in rows if r[0] == "gc2"]
    assert [r[1] for r in gcs] == [1, -1] and len(gcs[0]) == 4 and gcs[1][2] >= gcs[0][2]
