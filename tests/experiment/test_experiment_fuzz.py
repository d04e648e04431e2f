"""The loader never raises anything but ExperimentError / UsageError, and `chaos validate` exits 2
with no traceback, for any input however malformed (hypothesis-fuzzed)."""

from __future__ import annotations

import string

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos import cli
from chaos.errors import UsageError
from chaos.experiment.loader import load_file, load_text

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                    st.text(max_size=20), st.sampled_from(["leader", "5s", "-1s", "partition", "m1", "1e309"]))
keys = st.sampled_from(["version", "name", "cluster", "workload", "schedule", "managers", "workers", "fault",
                        "at", "for", "until", "max", "target", "isolate", "random", "checks", "expect", "mix",
                        "rate", "from", "to", "kinds", "duration", "count", "role", "x"])
trees = st.recursive(scalars, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                     st.dictionaries(keys, kids, max_size=5)), max_leaves=30)


def _never_crashes(text: str) -> None:
    exp, problems = load_text(text, "f.yaml")
    assert exp is not None or problems, "refused without a problem"
    for p in problems:
        assert p.message


@FAST
@given(trees)
def test_fuzz_random_structures(tree):
    _never_crashes(yaml.safe_dump({"version": 1, "name": "t", **(tree if isinstance(tree, dict) else {"x": tree})}))
    _never_crashes(yaml.safe_dump(tree))


@FAST
@given(st.text(alphabet=string.printable + "{}[]:-&*!|>'\"%@`", max_size=300))
def test_fuzz_random_text(text):
    _never_crashes(text)


@FAST
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_through_the_cli(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("f") / "x.yaml"
    path.write_bytes(data)
    try:
        load_file(path)
    except UsageError:
        pass


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


def test_fuzz_validate_cli_exits_2_without_traceback(tmp_path, capsys):
    cases = {"bytes.yaml": b"\x00\x01\xff", "tab.yaml": b"version: 1\n\tname: x\n", "list.yaml": b"- 1\n- 2\n",
             "empty.yaml": b"", "tag.yaml": b"version: !!python/object:os.system [ls]\n"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        code = cli.main(["validate", str(tmp_path / name)])
        out = capsys.readouterr()
        assert code == 2, (name, out)
        assert "Traceback" not in out.out + out.err
        assert name in out.out + out.err
