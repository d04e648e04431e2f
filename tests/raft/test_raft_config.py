"""RaftConfig.validate rejects contradictions, all at once (STYLE item 6)."""
import dataclasses

import pytest

from swarmnode.raft import BUGS, ConfigError, RaftConfig, config_from_ms


def test_config_defaults_are_valid():
    c = RaftConfig().validate()
    assert c.pre_vote and c.check_quorum and not c.bugs


@pytest.mark.parametrize("changes,fragment", [
    ({"heartbeat_ticks": 15}, "larger than heartbeat"),
    ({"election_timeout_max_ticks": 15}, "max_ticks must be larger"),
    ({"max_entries_per_message": 0}, "positive"),
    ({"snapshot_threshold": -1}, "positive"),
    ({"bugs": frozenset({"nope"})}, "unknown bugs"),
    ({"pre_vote": 1}, "bool"),
])
def test_config_validate_rejects(changes, fragment):
    with pytest.raises(ConfigError, match=fragment):
        dataclasses.replace(RaftConfig(), **changes).validate()


def test_config_validate_reports_every_error_together():
    with pytest.raises(ConfigError) as e:
        RaftConfig(max_entries_per_message=0, snapshot_threshold=0, bugs=frozenset({"x"})).validate()
    msg = str(e.value)
    assert "max_entries_per_message" in msg and "snapshot_threshold" in msg and "unknown bugs" in msg


def test_config_from_ms_rounds_up_to_ticks():
    c = config_from_ms(10, 45, 150, 301)
    assert (c.heartbeat_ticks, c.election_timeout_min_ticks, c.election_timeout_max_ticks) == (5, 15, 31)


def test_config_with_bug_switches_exactly_one():
    for b in BUGS:
        assert RaftConfig().with_bug(b).bugs == frozenset({b})
    assert RaftConfig().with_bug("none").bugs == frozenset()
