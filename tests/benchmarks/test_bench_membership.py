"""benchmarks/membership.py's `--sim-json` folding without processes: sim_seeds_10k_violations is
given only for exactly 10,000 distinct seeds of the correct core (one file or chunks), counts every
failing seed, and a file it cannot vouch for is refused with exit 2 before anything is measured."""

import json
import subprocess
import sys

import pytest

from .conftest import BENCH, load


@pytest.fixture(scope="module")
def membership():
    return load("membership")


def sim_result(first, seeds, bad=0, live=0, eff=0, bound=0, core="RaftNode", bug="none",
               profile="membership", with_first=True):
    res = {"seeds": seeds, "seeds_with_violations": bad, "liveness_failures": live,
           "efficiency_failures": eff, "bound_exceeded": bound, "core": core, "bug": bug,
           "profile": profile, "failing": [{"seed": first, "replay": "r"}] * (bad + live + eff)}
    if with_first:
        res["first"] = first
    return res


def write(tmp_path, name, doc):
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return str(p)


def chunks(tmp_path, n=10, size=1000, wrapped=True, **bad):
    """n record.py wrappers (argv gives the seed range; the result has no `first`, as the sweep
    run before the key existed) or raw results; the keyword failures go to the last chunk."""
    out = []
    for i in range(n):
        res = sim_result(i * size, size, with_first=not wrapped, **(bad if i == n - 1 else {}))
        doc = {"argv": ["--profile", "membership", "--seeds", str(size), "--first", str(i * size)],
               "result": res} if wrapped else res
        out.append(write(tmp_path, f"c{i}.json", doc))
    return out


def test_ten_chunks_make_the_10k_figure_and_every_failure_counts(membership, tmp_path):
    clean = membership.fold_sim(chunks(tmp_path))
    assert clean["sim_seeds_10k_violations"] == 0 and clean["sim_seeds"] == 10_000
    assert clean["sim_seed_ranges"][0] == [0, 999] and clean["sim_seed_ranges"][-1] == [9000, 9999]
    bad = membership.fold_sim(chunks(tmp_path, bad=1, live=1, bound=1, wrapped=False))
    assert bad["sim_seeds_10k_violations"] == 3 and bad["sim_failing"]


def test_one_file_of_10k_seeds(membership, tmp_path):
    p = write(tmp_path, "one.json", sim_result(0, 10_000, with_first=False))
    assert membership.fold_sim([p])["sim_seeds_10k_violations"] == 0


def test_fewer_seeds_give_no_10k_figure(membership, tmp_path):
    out = membership.fold_sim(chunks(tmp_path, n=9))
    assert out["sim_seeds_10k_violations"] is None and "9000 distinct seeds" in out["sim_note"]
    assert out["sim_failures"] == 0


@pytest.mark.parametrize("doc, msg", [
    ({"argv": ["--seeds", "1000", "--first", "0"], "result": sim_result(0, 1000)}, "overlap"),
    (sim_result(5000, 1000, core="tests.raft.wrong_cores:ConfigOnCommit"), "not the correct core"),
    (sim_result(5000, 1000, bug="learner_votes"), "not the correct core"),
    (sim_result(5000, 1000, profile="default"), "not a raft_sim_safety.py --profile membership"),
    (sim_result(5000, 1000, with_first=False), "first seed is unknown"),
    ({"argv": ["--seeds", "500", "--first", "5000"], "result": sim_result(5000, 1000, with_first=False)},
     "argv says 500 seeds"),
])
def test_a_file_it_cannot_vouch_for_is_refused(membership, tmp_path, doc, msg):
    first = write(tmp_path, "a.json", sim_result(0, 1000))
    with pytest.raises(membership.SimJsonError, match=msg):
        membership.fold_sim([first, write(tmp_path, "b.json", doc)])


def test_bad_sim_json_exits_2_without_traceback_before_measuring(tmp_path):
    p = write(tmp_path, "x.json", {"seeds": 3})
    for arg in (p, str(tmp_path / "missing.json")):
        proc = subprocess.run([sys.executable, str(BENCH / "membership.py"), "--sim-json", arg],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr and "--sim-json" in proc.stderr


def test_sim_only_folds_without_a_cluster(tmp_path):
    files = chunks(tmp_path)
    proc = subprocess.run([sys.executable, str(BENCH / "membership.py"), "--sim-only", "--sim-json", *files],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["sim_seeds_10k_violations"] == 0 and "replace_manager_p99_s" not in out
    proc = subprocess.run([sys.executable, str(BENCH / "membership.py"), "--sim-only"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
