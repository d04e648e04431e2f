"""Every malformed experiment file, however malformed (hypothesis-fuzzed), is refused through the
CLI the same way: `chaos validate` exits 2, names the file with a line:column for every error, and
prints no traceback. A fuzzed file the loader happens to accept must exit 0 instead."""

from __future__ import annotations

import json
import re
import string
import uuid
from pathlib import Path

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos import cli
from chaos.experiment.loader import load_text

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                    st.text(max_size=20), st.sampled_from(["leader", "5s", "-1s", "partition", "m1", "1e309"]))
keys = st.sampled_from(["version", "name", "cluster", "workload", "schedule", "managers", "workers", "fault",
                        "at", "for", "until", "max", "target", "isolate", "random", "checks", "expect", "mix",
                        "rate", "from", "to", "kinds", "duration", "count", "role", "x"])
trees = st.recursive(scalars, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                     st.dictionaries(keys, kids, max_size=5)), max_leaves=30)


def _cli(args: list[str]) -> tuple[int, str]:
    with CliRunner().isolation() as (out, err, *_):
        code = cli.main(args)
        return code, out.getvalue().decode("utf-8", "replace") + err.getvalue().decode("utf-8", "replace")


def _refused_with_location(path: Path) -> None:
    """`chaos validate PATH` exits 2 (or 0 when the file is a valid experiment), prints no traceback,
    and every error it prints, in text and in --json, carries PATH:LINE:COL."""
    code, text = _cli(["validate", str(path)])
    assert "Traceback" not in text, text
    assert code in (0, 2), (code, text)
    if code == 0:
        assert f"{path}: ok" in text, text
        return
    errors = [ln for ln in text.splitlines() if ln.startswith(f"{path}") and ": error: " in ln]
    assert errors, text
    located = re.compile(re.escape(str(path)) + r":\d+:\d+: error: ")
    assert all(located.match(ln) for ln in errors), text
    code, out = _cli(["validate", "--json", str(path)])
    assert code == 2, out
    problems = [p for p in json.loads(out)["problems"] if p["severity"] == "error"]
    assert problems and all(isinstance(p["line"], int) and isinstance(p["col"], int) for p in problems), problems


def _file(tmp_path_factory, data: bytes) -> Path:
    path = tmp_path_factory.getbasetemp() / f"fuzz-{uuid.uuid4().hex[:12]}.yaml"
    path.write_bytes(data)
    return path


@FAST
@given(trees)
def test_fuzz_random_structures(tmp_path_factory, tree):
    text = yaml.safe_dump({"version": 1, "name": "t", **(tree if isinstance(tree, dict) else {"x": tree})})
    _refused_with_location(_file(tmp_path_factory, text.encode()))
    _refused_with_location(_file(tmp_path_factory, yaml.safe_dump(tree).encode()))


@FAST
@given(st.text(alphabet=string.printable + "{}[]:-&*!|>'\"%@`", max_size=300))
def test_fuzz_random_text(tmp_path_factory, text):
    _refused_with_location(_file(tmp_path_factory, text.encode()))


@FAST
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_through_the_cli(tmp_path_factory, data):
    _refused_with_location(_file(tmp_path_factory, data))


def test_fuzz_deep_nesting_and_alias_bomb_and_huge_numbers():
    deep = "version: 1\nname: t\ncluster: " + "[" * 5000 + "]" * 5000 + "\n"
    _, probs = load_text(deep)
    assert probs and "nest" in probs[0].message
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi"))
    _, probs = load_text(bomb)
    assert probs and "alias bomb" in probs[0].message
    _, probs = load_text("version: 1\nname: t\nworkload: {clients: " + "9" * 5000 + "}\n")
    assert probs
    _, probs = load_text("version: 1\nname: t\nworkload: {rate: 1e999}\n")
    assert probs and probs[0].path == "workload.rate"


def test_fuzz_validate_cli_exits_2_without_traceback(tmp_path):
    cases = {"bytes.yaml": b"\x00\x01\xff", "nul.yaml": b"version: 1\nname: t\x00\n", "tab.yaml": b"version: 1\n\tname: x\n",
             "list.yaml": b"- 1\n- 2\n", "empty.yaml": b"", "blank.yaml": b"\n  \n",
             "tag.yaml": b"version: !!python/object:os.system [ls]\n", "latin1.yaml": b"name: caf\xe9\n",
             "deep.yaml": b"version: 1\nname: t\ncluster: " + b"[" * 5000 + b"]" * 5000 + b"\n"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        _refused_with_location(tmp_path / name)
        code, _ = _cli(["validate", str(tmp_path / name)])
        assert code == 2, name
