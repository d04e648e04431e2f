"""Storage: the in-memory one loses unsynced writes at a crash; the file one survives restarts,
torn tails and snapshots."""
import os

import pytest

from swarmnode.raft import Entry, FileStorage, HardState, MemoryStorage, Snapshot, StorageError, chain_hash


def entries(lo, hi, term=1):
    out, h = [], ""
    for i in range(lo, hi + 1):
        h = chain_hash(h, term, {"op": "noop"})
        out.append(Entry(i, term, {"op": "noop"}, h))
    return out


def test_storage_memory_crash_drops_unsynced():
    s = MemoryStorage()
    s.persist(HardState(1, "m1", 0), entries(1, 2), None)
    s.sync()
    s.persist(HardState(2, "m2", 0), entries(3, 3), None)
    s.crash()
    ld = s.load()
    assert ld.hard_state == HardState(1, "m1", 0) and [e.index for e in ld.entries] == [1, 2]


def test_storage_memory_truncates_and_snapshots():
    s = MemoryStorage()
    s.persist(None, entries(1, 5), None)
    s.persist(None, [Entry(4, 2, {"op": "noop"})], None)          # conflict: replace from 4
    s.sync()
    assert [(e.index, e.term) for e in s.load().entries] == [(1, 1), (2, 1), (3, 1), (4, 2)]
    tail = s.load().entries[2:]
    s.persist(None, tail, Snapshot(2, 1, "h", {}))                  # a snapshot replaces the log;
    s.sync()                                                        # the core re-sends the tail
    assert [e.index for e in s.load().entries] == [3, 4]
    s.persist(None, None, Snapshot(9, 5, "z", {}))                  # installed from a leader (§7)
    s.sync()
    assert s.load().entries == [] and s.load().snapshot.index == 9


def test_storage_rejects_a_gap():
    s = MemoryStorage()
    s.persist(None, entries(1, 2), None)
    s.persist(None, entries(5, 5), None)
    with pytest.raises(StorageError):
        s.sync()


def test_storage_file_round_trip_across_reopen(tmp_path):
    s = FileStorage(str(tmp_path))
    s.persist(HardState(3, "m2", 0), entries(1, 4), None)
    s.sync()
    s.persist(HardState(3, "m2", 4), [Entry(3, 3, {"op": "kv.put", "key": "a", "value": 1}, "x")], None)
    s.sync()
    s.close()
    ld = FileStorage(str(tmp_path)).load()
    assert ld.hard_state == HardState(3, "m2", 4)
    assert [(e.index, e.term) for e in ld.entries] == [(1, 1), (2, 1), (3, 3)]


def test_storage_file_survives_torn_tail(tmp_path):
    s = FileStorage(str(tmp_path))
    s.persist(HardState(1, None, 0), entries(1, 3), None)
    s.sync()
    s.close()
    path = os.path.join(str(tmp_path), "log.jsonl")
    with open(path, "ab") as f:
        f.write(b"0000abcd {\"e\": {\"ind")                        # a crash mid-write
    s2 = FileStorage(str(tmp_path))
    assert [e.index for e in s2.load().entries] == [1, 2, 3] and s2.dropped_tail_bytes > 0
    s2.persist(None, entries(4, 4), None)                            # and it keeps appending cleanly
    s2.sync()
    s2.close()
    assert [e.index for e in FileStorage(str(tmp_path)).load().entries] == [1, 2, 3, 4]


def test_storage_file_corrupt_record_ends_the_log(tmp_path):
    s = FileStorage(str(tmp_path))
    s.persist(None, entries(1, 3), None)
    s.sync()
    s.close()
    path = os.path.join(str(tmp_path), "log.jsonl")
    data = bytearray(open(path, "rb").read())
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    data[last + 12] ^= 0x01                                          # flip a bit in the last record
    open(path, "wb").write(bytes(data))
    assert [e.index for e in FileStorage(str(tmp_path)).load().entries] == [1, 2]


def test_storage_file_snapshot_compacts_atomically(tmp_path):
    s = FileStorage(str(tmp_path))
    es = entries(1, 6)
    s.persist(HardState(1, None, 6), es, None)
    s.sync()
    s.persist(None, es[4:], Snapshot(4, 1, es[3].hash, {"kv": {"a": 1}}))
    s.sync()
    s.close()
    ld = FileStorage(str(tmp_path)).load()
    assert ld.snapshot.index == 4 and ld.snapshot.data == {"kv": {"a": 1}}
    assert [e.index for e in ld.entries] == [5, 6] and ld.hard_state.commit == 6
    assert not any(n.endswith(".tmp") for n in os.listdir(str(tmp_path)))


@pytest.mark.parametrize("background", [False, True])
def test_storage_file_node_restart_with_snapshots(tmp_path, monkeypatch, background):
    # a single-node cluster on FileStorage, compacting every 5 entries, restarted twice; also with
    # the snapshots written on a thread (as the agent's manager does) and the log compacted eagerly
    import random
    from concurrent.futures import ThreadPoolExecutor

    from swarmnode.raft import RaftConfig, RaftNode

    cfg = RaftConfig(election_timeout_min_ticks=2, election_timeout_max_ticks=3, heartbeat_ticks=1,
                     snapshot_threshold=5)
    pool = ThreadPoolExecutor(1)
    monkeypatch.setattr(FileStorage, "COMPACT_MIN_BYTES", 0)

    def boot():
        st = FileStorage(str(tmp_path))
        if background:
            st.snapshot_writer = pool.submit
        return RaftNode("m1", ["m1"], st, cfg, random.Random(0)), st

    def drive(n, st):
        while (rd := n.ready()) is not None:
            st.persist(rd.hard_state, rd.entries, rd.snapshot)
            st.sync()
            n.advance(rd)

    n, st = boot()
    for _ in range(5):
        n.tick()
    drive(n, st)
    for k in range(23):
        n.propose({"op": "kv.put", "key": f"k{k % 4}", "value": k})
        drive(n, st)
    want = (n.term, n.commit_index, n.sm.digest(), n.last_log_index)
    assert n.log.snap_index >= 20
    if background:
        st.wait_snapshot_writes()   # the latest snapshot is on disk
        import json
        with open(os.path.join(str(tmp_path), "snapshot.json")) as f:
            assert json.load(f)["index"] == n.log.snap_index
    st.close()
    n2, st2 = boot()
    drive(n2, st2)
    assert (n2.term, n2.commit_index, n2.sm.digest(), n2.last_log_index) == want
    pool.shutdown(wait=True)


@pytest.mark.parametrize("seed", range(3))
def test_storage_file_matches_memory_on_random_writes(tmp_path, seed):
    # the same random persist() sequence, reopening the file storage now and then
    import random

    rng = random.Random(seed)
    mem, path = MemoryStorage(), str(tmp_path / f"s{seed}")
    fs = FileStorage(path)
    last, term, snap_index, commit = 0, 1, 0, 0
    for step in range(150):
        r = rng.random()
        if r < 0.15 and last > snap_index:
            i = rng.randint(snap_index + 1, last)
            tail = mem.load().entries[i - snap_index:]
            args = (None, tail, Snapshot(i, 1, f"h{i}", {"n": i}))
            snap_index = i
        else:
            term += rng.random() < 0.2
            first = rng.randint(snap_index + 1, last + 1)
            es = [Entry(k, term, {"op": "noop", "k": k}, f"x{k}") for k in range(first, first + rng.randint(1, 4))]
            commit = max(commit, rng.randint(0, snap_index))          # the core's commit never decreases
            hs = HardState(term, rng.choice([None, "m1", "m2"]), commit) if rng.random() < 0.5 else None
            args = (hs, es, None)
            last = es[-1].index
        for s in (mem, fs):
            s.persist(*args)
            s.sync()
        if rng.random() < 0.1:
            fs.close()
            fs = FileStorage(path)
        a, b = mem.load(), fs.load()
        assert (a.hard_state, a.snapshot, [(e.index, e.term, e.hash) for e in a.entries]) == \
               (b.hard_state, b.snapshot, [(e.index, e.term, e.hash) for e in b.entries]), (seed, step)
    fs.close()


class _Later:
    """A snapshot_writer for tests: jobs wait until run() (or a result() on their future); drop()
    forgets them, as a crash would."""

    def __init__(self):
        self.jobs = []

    def __call__(self, fn):
        later = self

        class Fut:
            def result(self_inner):
                while later.jobs:
                    job = later.jobs.pop(0)
                    job()
                    if job is fn:
                        break
        self.jobs.append(fn)
        return Fut()

    def run(self):
        while self.jobs:
            self.jobs.pop(0)()

    def drop(self):
        self.jobs.clear()


def _log_indexes(path):
    from swarmnode.raft.storage import _parse_record
    out = []
    with open(os.path.join(path, "log.jsonl"), "rb") as f:
        for line in f:
            rec = _parse_record(line)
            if rec and "e" in rec:
                out.append(rec["e"]["index"])
    return out


def _pending_snapshot(path, n, at, data):
    """A FileStorage with a test writer, entries 1..n persisted (commit n) and a local snapshot at
    `at` persisted but not yet written (its job waits in the writer): (storage, writer, entries)."""
    later = _Later()
    s = FileStorage(path)
    s.snapshot_writer = later
    es = entries(1, n)
    s.persist(HardState(1, None, n), es, None)
    s.sync()
    s.persist(None, es[at:], Snapshot(at, 1, es[at - 1].hash, data))
    s.sync()
    return s, later, es


def test_storage_background_snapshot_is_durable_before_the_log_is_compacted(tmp_path, monkeypatch):
    """A local compaction's snapshot is written by the writer, not by persist(); until it is
    durable the log file keeps every entry it covers (a crash then loads the old snapshot and the
    whole log); the log is rewritten without them only after it is durable, in a sync()."""
    path = str(tmp_path)
    monkeypatch.setattr(FileStorage, "COMPACT_MIN_BYTES", 0)
    later = _Later()
    s = FileStorage(path)
    s.snapshot_writer = later
    es = entries(1, 8)
    s.persist(HardState(1, None, 6), es[:6], None)
    s.sync()
    s.persist(HardState(1, None, 7), es[4:8], Snapshot(4, 1, es[3].hash, {"kv": {"a": 1}}))
    s.sync()
    assert len(later.jobs) == 1 and not os.path.exists(os.path.join(path, "snapshot.json"))
    assert _log_indexes(path)[:4] == [1, 2, 3, 4]           # the covered entries are still there
    crashed = FileStorage(path).load()                       # a crash before the snapshot is durable
    assert crashed.snapshot.index == 0 and [e.index for e in crashed.entries] == list(range(1, 9))
    assert crashed.hard_state.commit == 7
    later.run()                                              # the snapshot is durable now
    assert FileStorage(path).load().snapshot.index == 4
    assert _log_indexes(path)[:4] == [1, 2, 3, 4]            # not compacted before the next sync
    s.persist(None, entries(1, 9)[8:], None)
    s.sync()
    assert _log_indexes(path) == [5, 6, 7, 8, 9]
    ld = FileStorage(path).load()
    assert ld.snapshot.index == 4 and [e.index for e in ld.entries] == [5, 6, 7, 8, 9]
    assert ld.snapshot.data == {"kv": {"a": 1}} and ld.hard_state.commit == 7
    s.close()


def test_storage_background_snapshot_compaction_waits_for_the_latest_and_for_size(tmp_path, monkeypatch):
    path = str(tmp_path)
    s, later, es = _pending_snapshot(path, 10, 3, {"n": 3})
    later.jobs[0]()                                          # the first snapshot is durable ...
    later.jobs.pop(0)
    s.persist(None, es[6:], Snapshot(6, 1, es[5].hash, {"n": 6}))   # ... a newer one is not yet
    monkeypatch.setattr(FileStorage, "COMPACT_MIN_BYTES", 0)
    s.sync()
    assert _log_indexes(path)[:3] == [1, 2, 3]               # no compaction past a pending snapshot
    later.run()
    monkeypatch.setattr(FileStorage, "COMPACT_MIN_BYTES", 1 << 30)
    s.sync()
    assert _log_indexes(path)[:3] == [1, 2, 3]               # a small file is not rewritten yet
    monkeypatch.setattr(FileStorage, "COMPACT_MIN_BYTES", 0)
    s.sync()
    assert _log_indexes(path) == [7, 8, 9, 10]
    s.close()


def test_storage_background_snapshot_write_failure_keeps_the_whole_log(tmp_path, monkeypatch):
    import swarmnode.raft.storage as storage_mod
    path = str(tmp_path)
    monkeypatch.setattr(FileStorage, "COMPACT_MIN_BYTES", 0)
    s, later, _ = _pending_snapshot(path, 6, 4, {"n": 4})
    real = storage_mod._atomic_write

    def full(p, data):
        if p.endswith("snapshot.json"):
            raise OSError(28, "No space left on device")
        return real(p, data)
    monkeypatch.setattr(storage_mod, "_atomic_write", full)
    later.run()
    s.sync()
    assert s.snapshot_write_errors == 1 and _log_indexes(path) == [1, 2, 3, 4, 5, 6]
    ld = FileStorage(path).load()
    assert ld.snapshot.index == 0 and [e.index for e in ld.entries] == [1, 2, 3, 4, 5, 6]
    s.close()


def test_storage_installed_snapshot_waits_for_a_background_write(tmp_path):
    """A snapshot that is not a local compaction (installed from the leader: beyond the stored
    log) is written in persist() as before, after the background write still pending."""
    path = str(tmp_path)
    s, later, _ = _pending_snapshot(path, 6, 4, {"n": 4})
    assert len(later.jobs) == 1
    s.persist(HardState(2, None, 20), [Entry(21, 2, {"op": "noop"}, "y21")], Snapshot(20, 2, "h20", {"n": 20}))
    s.sync()
    assert later.jobs == []
    ld = FileStorage(path).load()
    assert ld.snapshot.index == 20 and [e.index for e in ld.entries] == [21]
    s.close()


@pytest.mark.parametrize("seed", range(4))
def test_storage_file_background_snapshots_match_memory_across_crashes(tmp_path, seed):
    """Random writes and local snapshots; now and then a crash that loses the pending background
    snapshot writes. The reloaded state must hold the same hard state and, under whichever
    snapshot it loaded, every entry the in-memory storage holds (and the ones in between)."""
    import random

    rng = random.Random(100 + seed)
    mem, path = MemoryStorage(), str(tmp_path / f"s{seed}")
    later = _Later()
    FileStorage.COMPACT_MIN_BYTES, saved = 2000, FileStorage.COMPACT_MIN_BYTES
    try:
        fs = FileStorage(path)
        fs.snapshot_writer = later
        last, term, snap_index, commit = 0, 1, 0, 0
        for step in range(200):
            r = rng.random()
            if r < 0.15 and last > snap_index:
                i = rng.randint(snap_index + 1, last)
                cur = mem.load().entries
                e = cur[i - snap_index - 1]
                args = (None, cur[i - snap_index:], Snapshot(i, e.term, e.hash, {"n": i}))
                snap_index = i
            else:
                term += rng.random() < 0.2
                first = rng.randint(snap_index + 1, last + 1)
                es = [Entry(k, term, {"op": "noop", "k": k}, f"x{k}t{term}")
                      for k in range(first, first + rng.randint(1, 4))]
                commit = max(commit, rng.randint(0, snap_index))
                hs = HardState(term, rng.choice([None, "m1", "m2"]), commit) if rng.random() < 0.5 else None
                args = (hs, es, None)
                last = es[-1].index
            for s in (mem, fs):
                s.persist(*args)
                s.sync()
            if rng.random() < 0.3:
                later.run()
            if rng.random() < 0.1:
                (later.drop if rng.random() < 0.5 else later.run)()
                fs.close()
                fs = FileStorage(path)
                fs.snapshot_writer = later
            a, b = mem.load(), fs.load()
            assert a.hard_state == b.hard_state and b.snapshot.index <= a.snapshot.index, (seed, step)
            full = {e.index: (e.term, e.hash) for e in b.entries}
            want = {e.index: (e.term, e.hash) for e in a.entries}
            assert {k: v for k, v in full.items() if k > a.snapshot.index} == want, (seed, step)
            assert set(range(b.snapshot.index + 1, a.snapshot.index + 1)) <= set(full), (seed, step)
        fs.close()
    finally:
        FileStorage.COMPACT_MIN_BYTES = saved
