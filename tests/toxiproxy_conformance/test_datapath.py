"""Conformance: Toxiproxy data path and toxic behaviour with timing tolerances (latency +-10 ms,
bandwidth +-10 %), close and reset behaviour, and toxicity drawn per connection and direction.
Black-box over TOXIPROXY_URL. Never sends data through a slicer with the default average_size (it
crashes a real server). Must not import `chaos` or `swarmnode`.
"""

from __future__ import annotations

import select
import socket
import time

import pytest

from .conftest import SEED, connect, recv_exact, recv_until_eof, wait_until

pytestmark = pytest.mark.process

LAT_TOL_S = 0.010
TIMER_TOL_S = 0.100   # a close timed from the client's last send: scheduling on a loaded 2-core machine
ATTEMPTS = 3   # a timing check is retried on a fresh connection (shared CI cores); all misses are reported


def timed(check, attempts=ATTEMPTS):
    """Run a timing check up to `attempts` times; pass on the first success, else fail with every miss."""
    misses = []
    for _ in range(attempts):
        try:
            return check()
        except AssertionError as exc:
            misses.append(str(exc))
    raise AssertionError(f"timing missed {attempts}x: " + " | ".join(misses))


def rtt_bounds(p, n: int, lower: float, upper: float, attempts: int = ATTEMPTS) -> list[float]:
    """Round trips through proxy `p`, n per fresh connection. Every sample of every attempt must be at
    least `lower` -- a toxic never delivers early, and load cannot make it look early, so that bound is
    never retried. The fastest sample of an attempt must be at most `upper`: load only adds delay, so
    a miss is retried on a fresh connection and fails after `attempts` misses, each reported."""
    misses, seen = [], []
    for _ in range(attempts):
        s = connect(p)
        samples = [rtt(s) for _ in range(n)]
        s.close()
        seen += samples
        assert all(x >= lower for x in samples), f"faster than the toxic allows ({lower}): {samples}"
        if min(samples) <= upper:
            return seen
        misses.append(f"min {min(samples):.4f} > {upper}")
    raise AssertionError(f"timing missed {attempts}x: " + " | ".join(misses))


def rtt(s: socket.socket, payload: bytes = b"ping") -> float:
    t0 = time.monotonic()
    s.sendall(payload)
    assert recv_exact(s, len(payload)) == payload
    return time.monotonic() - t0


def test_datapath_plain_echo_and_dial_on_accept(api, echo):
    p = api.create(echo.addr)
    s = connect(p)
    deadline = time.monotonic() + 5
    while echo.accepted < 1 and time.monotonic() < deadline:   # upstream dialled before any byte
        time.sleep(0.005)
    assert echo.accepted == 1
    data = bytes(range(256)) * 2000
    s.sendall(data)
    assert recv_exact(s, len(data)) == data


def test_datapath_bytes_sent_before_upstream_dial_are_delivered(api, echo):
    """Data written in the same instant as the connect (before the proxy's upstream dial has
    completed) is delivered, and so is a close right after it. Under uvloop the compatible server
    once dropped such connections (a read arrived before the upstream existed)."""
    p = api.create(echo.addr)
    failures = 0
    for i in range(200):
        s = connect(p)
        msg = f"early-{i}".encode()
        s.sendall(msg)
        try:
            if recv_exact(s, len(msg)) != msg:
                failures += 1
        except OSError:
            failures += 1
        finally:
            s.close()
    assert failures == 0, f"{failures} of 200 early writes lost"


def test_datapath_upstream_down_gives_connect_then_eof(api):
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    p = api.create(f"127.0.0.1:{port}")
    s = connect(p)
    s.settimeout(5)
    assert s.recv(10) == b""


def test_datapath_half_close_is_not_propagated(api, upstream_factory):
    srv = upstream_factory("reply_after_eof")
    p = api.create(srv.addr)
    s = connect(p)
    s.sendall(b"question")
    s.shutdown(socket.SHUT_WR)
    s.settimeout(5)
    try:
        got = recv_until_eof(s)
    except ConnectionResetError:
        got = b""
    assert got == b""          # direct, the client would get "reply:question"


def test_latency_round_trip_within_tolerance(api, echo):
    p = api.create(echo.addr)
    api.toxic(p["name"], type="latency", attributes={"latency": 100})
    rtt_bounds(p, 3, 0.100 - 0.001, 0.100 + LAT_TOL_S)


def test_latency_is_pipeline_delay_not_throughput_cut(api, echo):
    p = api.create(echo.addr)
    api.toxic(p["name"], type="latency", attributes={"latency": 200})

    def check():
        s = connect(p)
        t0 = time.monotonic()
        s.sendall(b"a")
        time.sleep(0.1)
        t_sent_b = time.monotonic() - t0
        s.sendall(b"b")
        assert recv_exact(s, 1) == b"a"
        t_a = time.monotonic() - t0
        assert recv_exact(s, 1) == b"b"
        t_b = time.monotonic() - t0
        s.close()
        assert abs(t_a - 0.200) <= LAT_TOL_S, t_a
        assert abs(t_b - (t_sent_b + 0.200)) <= LAT_TOL_S, (t_sent_b, t_b)   # not 0.400: not a throughput cut

    timed(check)


def test_latency_jitter_stays_in_range(api, echo):
    p = api.create(echo.addr)
    api.toxic(p["name"], type="latency", stream="upstream", attributes={"latency": 60, "jitter": 30})
    all_samples = []

    def check():
        s = connect(p)
        samples = [rtt(s) for _ in range(12)]
        s.close()
        all_samples.extend(samples)
        # never earlier than latency - jitter: checked on every attempt, not retried away
        assert all(0.030 - 0.001 <= x for x in all_samples), ("early", samples)
        assert sorted(samples)[len(samples) // 2] <= 0.090 + LAT_TOL_S, samples   # load only delays
        assert max(samples) - min(samples) > 0.005, samples   # jitter really varies

    try:
        timed(check)
    finally:
        assert all(0.030 - 0.001 <= x for x in all_samples), ("faster than latency - jitter", all_samples)


def test_latency_added_to_live_connection_applies_and_removal_restores(api, echo):
    p = api.create(echo.addr)
    s = connect(p)
    assert min(rtt(s) for _ in range(3)) < 0.1
    api.toxic(p["name"], type="latency", name="lat", attributes={"latency": 200})
    assert rtt(s) >= 0.199
    assert api.req("DELETE", f"/proxies/{p['name']}/toxics/lat").status_code == 204
    assert min(rtt(s) for _ in range(3)) < 0.1


def test_bandwidth_rate_in_kilobytes_per_second(api, echo):
    p = api.create(echo.addr)
    api.toxic(p["name"], type="bandwidth", stream="upstream", attributes={"rate": 50})

    def check():
        s = connect(p)
        data = b"x" * 20000
        t0 = time.monotonic()
        s.sendall(data)
        assert recv_exact(s, len(data)) == data
        took = time.monotonic() - t0
        s.close()
        assert 0.4 * 0.9 <= took <= 0.4 * 1.1, took

    timed(check)


def test_slow_close_delays_server_close(api, upstream_factory):
    srv = upstream_factory("close_after_reply")
    p = api.create(srv.addr)
    api.toxic(p["name"], type="slow_close", attributes={"delay": 300})

    def check():
        s = connect(p)
        t0 = time.monotonic()
        s.sendall(b"hi")
        assert recv_exact(s, 2) == b"hi"
        s.settimeout(5)
        assert s.recv(10) == b""
        took = time.monotonic() - t0      # the server closes right after its reply
        s.close()
        assert 0.3 - 0.001 <= took <= 0.3 + LAT_TOL_S, took

    timed(check)


def test_slow_close_upstream_does_not_delay_server_close(api, upstream_factory):
    srv = upstream_factory("close_after_reply")
    p = api.create(srv.addr)
    api.toxic(p["name"], type="slow_close", stream="upstream", attributes={"delay": 1000})
    s = connect(p)
    s.sendall(b"hi")
    assert recv_exact(s, 2) == b"hi"
    t0 = time.monotonic()
    s.settimeout(5)
    assert s.recv(10) == b""
    assert time.monotonic() - t0 < 0.5


def test_timeout_closes_after_timeout_and_drops_data(api, echo):
    p = api.create(echo.addr)
    api.toxic(p["name"], type="timeout", stream="upstream", attributes={"timeout": 300})

    def check():
        t0 = time.monotonic()
        s = connect(p)
        s.sendall(b"dropped")
        s.settimeout(5)
        assert recv_until_eof(s) == b""
        took = time.monotonic() - t0
        s.close()
        assert 0.3 - 0.001 <= took <= 0.3 + LAT_TOL_S, took

    timed(check)


def test_timeout_each_arriving_chunk_restarts_the_countdown(api, echo):
    """Spec 2.2 (probed on 2.12.0): the connection closes `timeout` ms after the last chunk that
    reached the toxic. One byte every 200 ms with timeout 500 keeps it open past 2 s; once sending
    stops, EOF comes 0.5 s after the last byte. A server that counts from the stage start closes at
    0.5 s while bytes still flow. An attempt in which this machine stalled the sender for longer than
    the timeout (a legitimate close) is retried on a fresh connection."""
    p = api.create(echo.addr)
    api.toxic(p["name"], type="timeout", stream="upstream", attributes={"timeout": 500})

    def check():
        s = connect(p)
        try:
            t0 = last = time.monotonic()
            max_gap = 0.0
            while last - t0 < 2.0:
                now = time.monotonic()
                max_gap = max(max_gap, now - last)
                try:
                    s.sendall(b"x")
                except OSError as exc:
                    raise AssertionError(f"send failed at {now - t0:.2f} s ({exc}); max gap {max_gap:.3f} s")
                last = time.monotonic()
                readable, _, _ = select.select([s], [], [], max(0.0, last + 0.2 - time.monotonic()))
                if readable:
                    at = time.monotonic() - t0
                    got = s.recv(16)
                    raise AssertionError(f"{'EOF' if not got else got!r} at {at:.2f} s while a byte arrived "
                                         f"every 200 ms (max gap between sends {max_gap:.3f} s)")
            s.settimeout(5)
            assert recv_until_eof(s) == b""
            took = time.monotonic() - last
            assert 0.5 - 0.001 <= took <= 0.5 + TIMER_TOL_S, f"EOF {took:.3f} s after the last byte"
        finally:
            s.close()

    timed(check)


def test_timeout_added_to_live_connection_counts_from_add(api, echo):
    p = api.create(echo.addr)
    early = []

    def check():
        api.req("DELETE", f"/proxies/{p['name']}/toxics/to")   # the previous attempt's (404 at first)
        s = connect(p)
        rtt(s)
        time.sleep(0.2)
        t0 = time.monotonic()
        api.toxic(p["name"], type="timeout", name="to", attributes={"timeout": 300})
        t_added = time.monotonic() - t0
        s.settimeout(5)
        assert recv_until_eof(s) == b""
        took = time.monotonic() - t0
        s.close()
        if took < 0.3 - 0.001:   # closed before the timeout: wrong on any machine, never retried
            early.append(took)
        # the clock starts at add time (somewhere inside the API call), not at connect (0.2 s earlier);
        # load can only delay the close, so a late one is retried
        assert took <= 0.3 + t_added + LAT_TOL_S, (took, t_added)

    try:
        timed(check)
    finally:
        assert not early, f"closed before the 300 ms timeout: {early}"


def test_timeout_zero_holds_until_removed_then_closes(api, echo):
    p = api.create(echo.addr)
    api.toxic(p["name"], type="timeout", name="hole", attributes={"timeout": 0})
    s = connect(p)
    s.sendall(b"into the void")
    s.settimeout(0.4)
    with pytest.raises(socket.timeout):
        s.recv(10)                       # held open, nothing delivered
    assert api.req("DELETE", f"/proxies/{p['name']}/toxics/hole").status_code == 204
    s.settimeout(5)
    assert recv_until_eof(s) == b""      # removing it closes the connection


def test_reset_peer_present_at_accept_gives_econnreset(api, echo):
    p = api.create(echo.addr)
    api.toxic(p["name"], type="reset_peer", stream="upstream", attributes={"timeout": 0})
    s = connect(p)
    s.sendall(b"boom")
    s.settimeout(5)
    with pytest.raises(ConnectionResetError):
        while s.recv(10):
            pass


def test_slicer_splits_with_delay(api, echo):
    p = api.create(echo.addr)
    api.toxic(p["name"], type="slicer", stream="downstream",
              attributes={"average_size": 4, "size_variation": 0, "delay": 50000})

    def check():
        s = connect(p)
        t0 = time.monotonic()
        s.sendall(b"0123456789abcdef")
        arrivals = []
        got = b""
        s.settimeout(5)
        while len(got) < 16:
            d = s.recv(16)
            assert d
            got += d
            arrivals.append((len(got), time.monotonic() - t0))
        s.close()
        assert got == b"0123456789abcdef"
        assert [n for n, _ in arrivals] == [4, 8, 12, 16], arrivals
        for k, (_, t) in enumerate(arrivals):     # 4 pieces at 0, 50, 100, 150 ms
            assert 0.050 * k - 0.001 <= t <= 0.050 * k + LAT_TOL_S, arrivals

    timed(check)


def test_limit_data_delivers_exact_bytes_then_eof(api, echo):
    p = api.create(echo.addr)
    api.toxic(p["name"], type="limit_data", attributes={"bytes": 10})
    s = connect(p)
    s.sendall(b"a" * 20)
    s.settimeout(5)
    assert recv_until_eof(s) == b"a" * 10


def test_limit_data_zero_closes_on_first_data_not_on_connect(api, echo):
    p = api.create(echo.addr)
    api.toxic(p["name"], type="limit_data", stream="upstream", attributes={"bytes": 0})
    s = connect(p)
    s.settimeout(0.3)
    with pytest.raises(socket.timeout):
        s.recv(1)
    s.sendall(b"x")
    s.settimeout(5)
    assert recv_until_eof(s) == b""


def test_noop_passes_data(api, echo):
    p = api.create(echo.addr)
    api.toxic(p["name"], type="noop", stream="upstream")
    api.toxic(p["name"], type="noop", stream="downstream")
    s = connect(p)
    data = b"y" * 100000
    s.sendall(data)
    assert recv_exact(s, len(data)) == data


def test_toxicity_is_drawn_per_connection_not_per_message(api, echo):
    p = api.create(echo.addr)
    api.toxic(p["name"], type="latency", toxicity=0.5, attributes={"latency": 150})
    delayed = 0
    mixed = []
    conns = 24
    for _ in range(conns):
        s = connect(p)
        marks = [rtt(s) >= 0.149 for _ in range(4)]
        if len(set(marks)) > 1:
            mixed.append(marks)
        delayed += marks[0]
        s.close()
    # Per-message draws would mix ~21 of 24 connections; one mix is tolerated as a >149 ms stall of
    # the shared host, not of the draw.
    assert len(mixed) <= 1, f"mixed within one connection (seed {SEED}): {mixed}"
    # Binomial(24, 0.5): outside [3, 21] has probability < 0.0003.
    assert 3 <= delayed <= conns - 3, f"delayed {delayed}/{conns} (seed {SEED})"


def test_toxicity_zero_never_and_one_always(api, echo):
    p = api.create(echo.addr)
    api.toxic(p["name"], type="latency", name="never", toxicity=0, attributes={"latency": 200})
    api.toxic(p["name"], type="latency", name="always", stream="upstream", toxicity=1,
              attributes={"latency": 40})
    for _ in range(4):
        s = connect(p)
        samples = [rtt(s) for _ in range(3)]
        assert min(samples) >= 0.039, samples      # "always" applied to every message
        assert min(samples) < 0.15, samples        # "never" did not (min: a host stall is not a delay)
        s.close()


def test_disable_closes_live_connections_and_refuses_new(api, echo):
    p = api.create(echo.addr)
    s = connect(p)
    rtt(s)
    api.req("PATCH", f"/proxies/{p['name']}", json={"enabled": False})
    s.settimeout(5)
    assert recv_until_eof(s) == b""
    with pytest.raises(OSError):
        connect(p, timeout=2)


def test_timeout_removal_closes_even_where_toxicity_missed(api, echo):
    p = api.create(echo.addr)
    api.toxic(p["name"], type="timeout", name="never", toxicity=0, attributes={"timeout": 0})
    s = connect(p)
    assert rtt(s) < 1.0                     # toxicity 0: data flows
    assert api.req("DELETE", f"/proxies/{p['name']}/toxics/never").status_code == 204
    s.settimeout(5)
    assert recv_until_eof(s) == b""


def test_reset_closes_connections_covered_by_timeout(api, echo):
    p = api.create(echo.addr)
    api.toxic(p["name"], type="timeout", attributes={"timeout": 0})
    before = echo.accepted
    s = connect(p)
    s.sendall(b"held")
    wait_until(lambda: echo.accepted > before)   # the proxy has taken the connection (dialled upstream)
    assert api.req("POST", "/reset").status_code == 204
    s.settimeout(5)
    try:
        assert recv_until_eof(s) == b""
    except ConnectionResetError:
        pass   # "held" may still sit unread in the proxy's socket when it closes: the kernel sends RST
    s2 = connect(p)                          # the proxy itself is fine afterwards
    assert rtt(s2) < 1.0


def test_limit_data_count_survives_toxic_update(api, echo):
    p = api.create(echo.addr)
    api.toxic(p["name"], type="limit_data", name="lim", attributes={"bytes": 10})
    s = connect(p)
    s.sendall(b"123456")
    assert recv_exact(s, 6) == b"123456"
    r = api.req("PATCH", f"/proxies/{p['name']}/toxics/lim", json={"toxicity": 1})
    assert r.status_code == 200
    s.sendall(b"abcdefgh")
    s.settimeout(5)
    assert recv_until_eof(s) == b"abcd"     # 6 + 4 = 10 bytes in total on this connection


def test_upstream_and_downstream_latency_add_up(api, echo):
    p = api.create(echo.addr)
    api.toxic(p["name"], type="latency", stream="upstream", attributes={"latency": 50})
    api.toxic(p["name"], type="latency", stream="downstream", attributes={"latency": 70})
    rtt_bounds(p, 3, 0.120 - 0.001, 0.120 + LAT_TOL_S)


def test_reset_peer_waits_timeout_after_first_data(api, echo):
    p = api.create(echo.addr)
    api.toxic(p["name"], type="reset_peer", stream="upstream", attributes={"timeout": 300})

    def check():
        s = connect(p)
        t0 = time.monotonic()
        s.sendall(b"first")                 # dropped; the reset comes `timeout` ms later
        s.settimeout(5)
        try:
            while s.recv(10):
                pass
            raise AssertionError("closed with FIN, expected RST")
        except ConnectionResetError:
            took = time.monotonic() - t0
        s.close()
        assert 0.3 - 0.001 <= took <= 0.3 + LAT_TOL_S, took

    timed(check)
