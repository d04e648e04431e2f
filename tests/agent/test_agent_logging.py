"""Process level: what an operator reads first, the agents' own log (stderr; `docker logs` in a
container). Issue 16 item 7: the agents logged nothing at all.

One small cluster (3 managers + 1 worker on loopback, no proxy) at the default level proves each
agent logs, one timestamped line each: its start-up configuration, term and role changes and the
election, the leader it follows, peer links connected, and (worker) its registration; and that
client writes add no line per entry at INFO. Other levels and a bad level are checked on single
processes. Each step awaits its condition with a deadline.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from swarmnode.agent.localcluster import NODE_IMAGE_DIR, LocalCluster, free_ports, http, put_until_ok, wait_for

pytestmark = [pytest.mark.process]

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (m\d|w\d) (DEBUG|INFO|WARNING|ERROR) [a-z_]+: \S")


def _log(c: LocalCluster, node: str) -> str:
    with open(c.logs[node], encoding="utf-8", errors="replace") as f:
        return f.read()


def _await_line(c: LocalCluster, node: str, pattern: str, timeout_s: float = 20) -> re.Match:
    rx = re.compile(pattern, re.M)
    return wait_for(lambda: rx.search(_log(c, node)), timeout_s, what=f"{node} log line /{pattern}/")


@pytest.fixture
def cluster(tmp_path):
    c = LocalCluster(str(tmp_path), managers=3, workers=1, seed=11,
                     extra_env={"CHAOS_DISPATCHER_HEARTBEAT_MS": "300"})
    c.start_all()
    yield c
    c.stop_all()


def test_agent_log_has_startup_config_role_and_term_changes(cluster):
    c = cluster
    leader = wait_for(c.leader, 40, what="a leader")
    term = c.status(leader)["term"]
    for m in c.manager_ids:
        _await_line(c, m, rf"INFO node: starting {m} \(manager\): node_id={m} role=manager .*"
                          rf"election_timeout_min_ms=300 .* log_level=INFO")
        _await_line(c, m, rf"raft: term {term}$")
        _await_line(c, m, rf"manager: leader is {leader} \(term {term}\)$")
        others = [p for p in c.manager_ids if p != m]
        _await_line(c, m, rf"transport: link to {others[0]} connected \(127\.0\.0\.1:\d+\)$")
    _await_line(c, leader, rf"raft: became leader in term {term}$")
    _await_line(c, leader, r"raft: (pre-vote|election) started in term \d+$")
    _await_line(c, "w1", r"node: starting w1 \(worker\): node_id=w1 role=worker ")
    _await_line(c, "w1", rf"worker: dispatcher: leader {leader} \(term {term}\), registered$")

    # client writes: state changes only at INFO, never a line per entry
    before = {m: len(_log(c, m).splitlines()) for m in c.manager_ids}
    for i in range(30):
        code, body = put_until_ok([c.url(leader, f"/kv/k{i}")], i, "log-test", i)
        assert code == 200, body
    for m in c.manager_ids:
        text = _log(c, m)
        added = text.splitlines()[before[m]:]
        assert len(added) <= 3, f"{m} logged {len(added)} lines for 30 writes: {added[:5]}"
        assert not re.search(r"(append|apply|commit) index \d+$", text, re.M)
        lines = [line for line in text.splitlines() if line.strip()]
        bad = [line for line in lines if not LINE.match(line)]
        assert not bad, f"{m}: lines without timestamp/node/level: {bad[:3]}"


def _agent(tmp_path, level: str | None, api_port: int) -> subprocess.Popen:
    """A one-manager cluster (it elects itself) as one process, its log on a pipe."""
    peer_port = free_ports(1)[0]
    env = dict(os.environ, PYTHONPATH=NODE_IMAGE_DIR, CHAOS_NODE_ID="m1", CHAOS_ROLE="manager",
               CHAOS_MANAGERS="m1", CHAOS_PEER_HOST="127.0.0.1", CHAOS_API_HOST="127.0.0.1",
               CHAOS_PEER_PORT=str(peer_port), CHAOS_API_PORT=str(api_port),
               CHAOS_DATA_DIR=str(tmp_path / "m1"))
    env.pop("CHAOS_LOG_LEVEL", None)
    if level is not None:
        env["CHAOS_LOG_LEVEL"] = level
    return subprocess.Popen([sys.executable, "-m", "swarmnode.agent"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_agent_log_level_bad_value_exits_2_with_one_line(tmp_path):
    proc = _agent(tmp_path, "chatty", free_ports(1)[0])
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert err.strip().splitlines() == [
        "swarmnode.agent: configuration error: CHAOS_LOG_LEVEL='chatty': must be one of DEBUG, INFO, WARNING, ERROR"]


@pytest.mark.parametrize("level", ["WARNING", "debug"])
def test_agent_log_level_sets_what_is_logged(tmp_path, level):
    api_port = free_ports(1)[0]
    proc = _agent(tmp_path, level, api_port)
    try:
        def leads_and_applied():
            code, body = http("PUT", f"http://127.0.0.1:{api_port}/kv/a", {"value": 1})
            return code == 200
        wait_for(leads_and_applied, 30, what="m1 leading and applying a write")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    if level == "WARNING":
        assert err == "", err[:2000]      # nothing went wrong: nothing to say at WARNING
    else:
        assert re.search(r" m1 INFO raft: became leader in term \d+$", err, re.M), err[:2000]
        assert re.search(r" m1 DEBUG raft: apply index \d+ term \d+$", err, re.M), err[:2000]


def _await(pred, timeout_s: float, what: str):
    """Await `pred()` on the running loop (polling its own state), with a deadline."""
    import asyncio

    async def go():
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not pred():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
            await asyncio.sleep(0.01)
    return go()


def test_transport_log_reports_a_link_once_up_and_its_loss_not_each_flap(caplog):
    """Peer links: 'connected' once a connection has lasted LINK_STABLE_S, 'lost' when such a
    connection ends; a proxy that accepts and closes at once (its upstream cut) costs no line
    however often the link redials (bounded volume)."""
    import asyncio
    import logging

    from swarmnode.agent.transport import TcpTransport

    caplog.set_level(logging.INFO, logger="swarmnode.transport")

    def link_lines():
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith("link to x ")]

    async def scenario():
        flaps, held = [0], []

        async def flap(reader, writer):
            flaps[0] += 1
            writer.close()

        async def hold(reader, writer):
            held.append(writer)

        flapper = await asyncio.start_server(flap, "127.0.0.1", 0)
        holder = await asyncio.start_server(hold, "127.0.0.1", 0)
        hport = holder.sockets[0].getsockname()[1]
        t = TcpTransport("a", {"x": ("127.0.0.1", flapper.sockets[0].getsockname()[1])}, lambda s, m: None,
                         host="127.0.0.1", port=0, reconnect_min_ms=10, reconnect_max_ms=20)
        try:
            t.send("x", {"k": 1})
            await _await(lambda: flaps[0] >= 30, 20, "30 short connections")
            during_flapping = link_lines()
            t.set_peer_address("x", ("127.0.0.1", hport))
            await _await(lambda: any("connected" in m for m in link_lines()), 10, "'link to x connected'")
            for w in held:
                w.close()
            await _await(lambda: any(" lost after " in m for m in link_lines()), 10, "'link to x lost'")
        finally:
            await t.close()
            flapper.close()
            holder.close()
        return during_flapping

    during_flapping = asyncio.run(scenario())
    assert during_flapping == []
    lines = link_lines()
    assert re.fullmatch(r"link to x connected \(127\.0\.0\.1:\d+\)", lines[0]), lines
    assert re.fullmatch(r"link to x lost after \d+\.\d s", lines[1]), lines


def test_eventlog_lines_levels_and_repeats(caplog):
    import logging

    from swarmnode.agent.eventlog import EventLog

    caplog.set_level(logging.INFO)
    ev = EventLog()
    for e in [{"type": "role", "role": "precandidate", "term": 3},
              {"type": "role", "role": "precandidate", "term": 3},   # an isolated node's next pre-vote
              {"type": "append", "index": 5, "term": 3, "hash": "ab"},
              {"type": "apply", "index": 5, "term": 3, "hash": "ab", "store_digest": "cd"},
              {"type": "commit", "index": 5},
              {"type": "commit", "index": 4, "recovered": True},
              {"type": "append", "index": 4, "term": 3, "hash": "ab", "recovered": True},
              {"type": "snapshot", "index": 100, "term": 3, "hash": "ab", "store_digest": "cd"},
              {"type": "task", "task": "web.1.1", "service": "web", "slot": 1, "worker": "w1", "state": "failed"},
              {"type": "role", "role": "precandidate", "term": 3}]:
        ev(e)
    got = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert got == [
        ("swarmnode.raft", "INFO", "pre-vote started in term 3"),
        ("swarmnode.raft", "INFO", "commit index 4 recovered from storage"),
        ("swarmnode.raft", "INFO", "snapshot at index 100 term 3"),
        ("swarmnode.tasks", "WARNING", "task web.1.1 (web slot 1) on w1: failed"),
    ]


class _StuckStream:
    """stderr whose pipe is full: every write blocks until released."""

    def __init__(self) -> None:
        import threading
        self.release = threading.Event()
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        self.release.wait()
        self.lines.append(text)

    def flush(self) -> None:
        pass


def test_a_blocked_stderr_neither_blocks_the_caller_nor_loses_lines_silently(monkeypatch):
    """The agent logs from its event loop; a full stderr pipe (a starved container engine) must not
    stall it. Lines beyond the bounded queue are dropped and the next written line counts them."""
    import logging
    import time

    from swarmnode.agent import eventlog

    monkeypatch.setattr(eventlog, "LOG_QUEUE_MAX", 50)
    stream = _StuckStream()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        eventlog.setup("w1", "INFO", stream=stream)
        log = logging.getLogger("swarmnode.gossip")
        start = time.monotonic()
        for i in range(200):
            log.info("member w%d alive", i)
        assert time.monotonic() - start < 2.0, "logging waited for the blocked stream"
        assert stream.lines == []
        stream.release.set()
        eventlog.flush()
        text = "".join(stream.lines)
        written = re.findall(r"member w(\d+) alive", text)
        # the first line was taken by the writer thread before the queue filled; then 50 queued
        assert 50 <= len(written) <= 52 and written == sorted(written, key=int)
        dropped = re.search(r"WARNING node: log: (\d+) line\(s\) dropped", text)
        assert dropped and int(dropped.group(1)) + len(written) == 200
        assert all(LINE.match(line) for line in text.splitlines())
    finally:
        eventlog.flush()
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])


def test_queued_lines_are_all_written_at_flush():
    import io
    import logging

    from swarmnode.agent import eventlog

    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        eventlog.setup("m1", "INFO", stream=stream)
        for i in range(500):
            logging.getLogger("swarmnode.raft").info("term %d", i)
        eventlog.flush()
        lines = stream.getvalue().splitlines()
        assert [int(x.rsplit(" ", 1)[1]) for x in lines] == list(range(500))
        assert "dropped" not in stream.getvalue()
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
