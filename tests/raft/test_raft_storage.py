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


def test_storage_file_node_restart_with_snapshots(tmp_path):
    # a single-node cluster on FileStorage, compacting every 5 entries, restarted twice
    import random

    from swarmnode.raft import RaftConfig, RaftNode

    cfg = RaftConfig(election_timeout_min_ticks=2, election_timeout_max_ticks=3, heartbeat_ticks=1,
                     snapshot_threshold=5)

    def boot():
        st = FileStorage(str(tmp_path))
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
    st.close()
    n2, st2 = boot()
    drive(n2, st2)
    assert (n2.term, n2.commit_index, n2.sm.digest(), n2.last_log_index) == want


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
