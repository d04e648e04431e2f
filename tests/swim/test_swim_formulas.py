"""Table tests for the SWIM arithmetic and settings validation (memberlist util.go style).

Owns nothing but tests; imports only swarmnode.swim.
"""

import math

import pytest
from hypothesis import given, strategies as st

from swarmnode.swim import (ConfigError, SwimConfig, health_scaled_ms, pushpull_scaled_ms,
                            retransmit_limit, suspicion_k, suspicion_min_ms, suspicion_timeout_ms)


@pytest.mark.parametrize("n, interval, mult, want", [
    (1, 1000, 4, 4000),      # log10(1) = 0 -> scale floored at 1
    (5, 1000, 4, 4000),      # log10(5) < 1 -> floor
    (10, 1000, 4, 4000),
    (100, 1000, 4, 8000),
    (1000, 1000, 4, 12000),
    (50, 500, 3, 2548),      # 3 * 1.69897 * 500
])
def test_formula_suspicion_min_ms_table(n, interval, mult, want):
    assert suspicion_min_ms(n, interval, mult) == want


@pytest.mark.parametrize("c, k, lo, hi, want", [
    # Lifeguard IV-B: max - (max - min) * log(c + 1) / log(k + 1), floored at min
    (0, 3, 2000, 30000, 30000),
    (1, 3, 2000, 30000, 16000),
    (2, 3, 2000, 30000, 7810),     # 30000 - 28000 * log(3)/log(4)
    (3, 3, 2000, 30000, 2000),
    (4, 3, 2000, 30000, 2000),     # more confirmations than expected: still the minimum
    (0, 0, 2000, 30000, 2000),     # k < 1: minimum from the start
    (5, 0, 2000, 30000, 2000),
])
def test_formula_suspicion_timeout_table(c, k, lo, hi, want):
    assert suspicion_timeout_ms(c, k, lo, hi) == want


@pytest.mark.parametrize("mult, n, want", [
    (4, 1, 4), (4, 9, 4), (4, 10, 8), (4, 99, 8), (4, 100, 12), (4, 1000, 16), (3, 50, 6),
])
def test_formula_retransmit_limit_table(mult, n, want):
    assert retransmit_limit(mult, n) == want


@pytest.mark.parametrize("conf_k, n, want", [(2, 1, 0), (2, 2, 0), (2, 3, 1), (2, 4, 2), (2, 100, 2),
                                               (0, 100, 0)])
def test_formula_suspicion_k_capped_table(conf_k, n, want):
    assert suspicion_k(conf_k, n) == want


@pytest.mark.parametrize("interval, n, want", [(10000, 10, 10000), (10000, 32, 10000),
                                               (10000, 33, 20000), (10000, 64, 20000),
                                               (10000, 200, 40000), (10000, 1000, 60000)])
def test_formula_pushpull_scaled_table(interval, n, want):
    assert pushpull_scaled_ms(interval, n) == want


def test_formula_health_scaled():
    assert [health_scaled_ms(500, s) for s in range(3)] == [500, 1000, 1500]


def _naive_timeout(c, k, lo, hi):
    """Second implementation: interpolate in log2 space, step by step."""
    if k < 1:
        return lo
    t = hi
    frac = math.log2(c + 1) / math.log2(k + 1)
    t = hi - frac * (hi - lo)
    return lo if t < lo else math.floor(t)


@given(st.integers(0, 20), st.integers(0, 10), st.integers(1, 10_000), st.integers(1, 6))
def test_formula_suspicion_timeout_matches_naive_and_is_monotone(c, k, lo, mult):
    hi = lo * mult
    got = suspicion_timeout_ms(c, k, lo, hi)
    assert abs(got - _naive_timeout(c, k, lo, hi)) <= 1
    assert lo <= got <= hi
    assert suspicion_timeout_ms(c + 1, k, lo, hi) <= got      # confirmations only shorten it


def test_config_defaults_and_local_preset_validate():
    SwimConfig().validate()
    local = SwimConfig.local()
    local.validate()
    assert local.probe_interval_ms < SwimConfig().probe_interval_ms


@pytest.mark.parametrize("changes, fragment", [
    ({"probe_timeout_ms": 500}, "probe_timeout_ms must be smaller"),
    ({"probe_interval_ms": 0}, "probe_interval_ms must be > 0"),
    ({"pushpull_interval_ms": 100}, "pushpull_interval_ms must be 0"),
    ({"tombstone_ttl_ms": 1000}, "tombstone_ttl_ms"),
    ({"gossip_fanout": -1}, "non-negative"),
    ({"reap_dead_ms": 10}, "reap_dead_ms"),
])
def test_config_validate_rejects_contradictions(changes, fragment):
    with pytest.raises(ConfigError, match=fragment):
        SwimConfig().replace(**changes)


def test_config_validate_reports_every_error_at_once():
    with pytest.raises(ConfigError) as e:
        SwimConfig().replace(probe_timeout_ms=600, tombstone_ttl_ms=1000)
    assert "probe_timeout_ms" in str(e.value) and "tombstone_ttl_ms" in str(e.value)
