"""benchmarks/record.py without Docker: it finds the JSON object a benchmark printed (after
progress lines too), saves it with provenance, and refuses what it cannot vouch for."""

import json
import subprocess
import sys

from .conftest import BENCH, load


def test_record_finds_the_object_after_progress_lines():
    record = load("record")
    assert record.last_json_object('{"a": 1}\n') == {"a": 1}
    assert record.last_json_object('trial 1\ntrial 2\n{\n "a": 2,\n "b": [1]\n}\n') == {"a": 2, "b": [1]}
    assert record.last_json_object("no json here\n") is None
    assert record.last_json_object("[1, 2]\n") is None


def test_record_saves_provenance_and_the_result(tmp_path, monkeypatch):
    record = load("record")
    script = BENCH / "_tmp_record_probe.py"
    script.write_text('print("warming up")\nimport json\nprint(json.dumps({"x_ms": 12.5}))\n')
    try:
        monkeypatch.setattr(record, "Recorder", lambda bench: load("_result").Recorder(bench, results=tmp_path))
        assert record.main([script.name]) == 0
    finally:
        script.unlink()
    saved = list(tmp_path.glob("_tmp_record_probe-*.json"))
    assert len(saved) == 1
    out = json.loads(saved[0].read_text())
    assert out["result"] == {"x_ms": 12.5}
    assert out["script"] == "benchmarks/_tmp_record_probe.py" and out["exit"] == 0
    for key in ("commit", "dirty", "load_1m_before", "load_1m_after", "load_1m_median", "load_1m_max",
                "started_utc", "ended_utc", "seconds"):
        assert key in out, key


def test_record_refuses_a_script_outside_benchmarks_and_output_without_json(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCH / "record.py"), "../README.md"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "not a script in benchmarks/" in proc.stderr
    assert "Traceback" not in proc.stderr
    record = load("record")
    script = BENCH / "_tmp_record_nojson.py"
    script.write_text('print("just text")\n')
    try:
        assert record.main([script.name]) == 2
    finally:
        script.unlink()
