"""benchmarks/raft_sim_outcomes.py --compare: runs that differ only by where the trees live and by
line numbers in a core-exception trace are identical; any other difference is still one."""

from .conftest import load


def _run(detail, kind="core-exception", t=5209.244):
    return {"violation_count": 1, "violation_kinds": [kind],
            "violations": [{"kind": kind, "node": "m1", "time_ms": t, "detail": detail}]}


TRACE = ('KeyError: \'m3\' | File "{root}/node_image/swarmnode/raft/core.py", line {n}, in _send_append '
         '<- File "{root}/tests/raft/wrong_cores.py", line 7, in step')


def _doc(run):
    return {"runs": {"core-membership|none|x:Y|2": run}}


def test_compare_ignores_tree_paths_and_line_numbers_in_traces():
    o = load("raft_sim_outcomes")
    a = _doc(_run(TRACE.format(root="/tmp/before", n=621)))
    b = _doc(_run(TRACE.format(root="/srv/tree-x", n=624)))
    out = o.compare(a, b)
    assert (out["identical"], out["different"]) == (1, 0)
    assert out["identical_but_trace_text"] == ["core-membership|none|x:Y|2"]


def test_compare_still_reports_a_different_exception_time_or_kind():
    o = load("raft_sim_outcomes")
    a = _doc(_run(TRACE.format(root="/tmp/before", n=621)))
    for b in (_run(TRACE.format(root="/tmp/before", n=621).replace("KeyError", "ValueError")),
              _run(TRACE.format(root="/tmp/before", n=621), t=5210.0),
              _run(TRACE.format(root="/tmp/before", n=621).replace("_send_append", "_send_snapshot")),
              _run(TRACE.format(root="/tmp/a", n=1), kind="commit-without-majority")):
        out = o.compare(a, _doc(b))
        assert (out["identical"], out["different"]) == (0, 1), b
