"""`chaos logs NODE [--since WHEN] [-f]` at the CLI boundary, against a fake cluster: what reaches
the Docker layer for each argument form, and usage errors (exit 2, one line) for bad ones. The
Docker test that a real cluster's `chaos logs` prints the agents' lines is in
tests/docker/test_cluster_docker.py.
"""

from __future__ import annotations

import datetime
import time

import pytest

from chaos import cli, errors
from chaos.cmd_cluster import parse_since

NOW = 1_764_464_523.0   # 2025-11-30T00:42:03Z


@pytest.mark.parametrize("text, expected", [
    ("30s", NOW - 30),
    ("1.5s", NOW - 1.5),
    ("5m", NOW - 300),
    ("1h30m", NOW - 5400),
    ("2d", NOW - 2 * 86400),
    ("1h0m5s", NOW - 3605),
    ("2026-11-30T01:02:03Z", datetime.datetime(2026, 11, 30, 1, 2, 3, tzinfo=datetime.timezone.utc).timestamp()),
    ("2026-11-30T02:02:03.250+01:00",
     datetime.datetime(2026, 11, 30, 1, 2, 3, 250000, tzinfo=datetime.timezone.utc).timestamp()),
    ("1764464000", 1764464000.0),
    ("1764464000.5", 1764464000.5),
])
def test_logs_since_forms(text, expected):
    assert parse_since(text, NOW) == pytest.approx(expected)


def test_logs_since_naive_time_is_local_like_docker_logs():
    assert parse_since("2026-11-30T01:02:03", NOW) == datetime.datetime(2026, 11, 30, 1, 2, 3).timestamp()


@pytest.mark.parametrize("text", ["", "5x", "m", "yesterday", "5 m", "-5m", "-5", "0", "nan", "inf",
                                  "2026-13-01T00:00:00Z"])
def test_logs_since_rejects_what_it_cannot_read(text):
    with pytest.raises(ValueError, match="duration"):
        parse_since(text, NOW)


class FakeCluster:
    def __init__(self):
        self.calls = []

    def logs(self, node, tail=None, since=None):
        self.calls.append(("logs", node, tail, since))
        return "line 1\nline 2\n"

    def follow_logs(self, node, tail=None, since=None):
        self.calls.append(("follow", node, tail, since))
        yield "first\n"
        yield "sec"
        yield "ond\n"


@pytest.fixture
def fake(monkeypatch):
    import chaos.cmd_cluster as cmd

    cluster = FakeCluster()
    monkeypatch.setattr(cmd, "connect", lambda *a, **k: object())
    monkeypatch.setattr(cmd, "require_cluster", lambda client, name: cluster)
    return cluster


def test_logs_since_duration_reaches_the_engine_as_epoch_seconds(fake, capsys):
    before = time.time()
    assert cli.main(["logs", "m1", "--since", "30s", "--tail", "5"]) == 0
    after = time.time()
    assert capsys.readouterr().out == "line 1\nline 2\n"
    kind, node, tail, since = fake.calls[0]
    assert (kind, node, tail) == ("logs", "m1", 5)
    assert before - 30 <= since <= after - 30


def test_logs_without_since_asks_for_everything(fake, capsys):
    assert cli.main(["logs", "w2"]) == 0
    assert fake.calls == [("logs", "w2", None, None)]


@pytest.mark.parametrize("flag", ["-f", "--follow"])
def test_logs_follow_streams_every_chunk_in_order(fake, capsys, flag):
    assert cli.main(["logs", "m1", flag, "--since", "2026-11-30T01:02:03Z"]) == 0
    assert capsys.readouterr().out == "first\nsecond\n"
    kind, node, tail, since = fake.calls[0]
    assert (kind, node, tail) == ("follow", "m1", None)
    assert since == parse_since("2026-11-30T01:02:03Z", 0)


def test_logs_bad_since_is_a_usage_error(fake, capsys):
    assert cli.main(["logs", "m1", "--since", "5x"]) == errors.EXIT_USAGE
    err = capsys.readouterr().err
    assert "--since" in err and "'5x' is neither a duration" in err and "Traceback" not in err
    assert fake.calls == []
