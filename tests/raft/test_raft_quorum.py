"""Quorum arithmetic, table-tested and checked against a naive implementation (STYLE item 4)."""
import random

import pytest

from swarmnode.raft.quorum import LOST, PENDING, WON, committed_index, majority, vote_result


@pytest.mark.parametrize("n,q", [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (7, 4)])
def test_quorum_majority_table(n, q):
    assert majority(n) == q


def test_quorum_majority_rejects_zero():
    with pytest.raises(ValueError):
        majority(0)


@pytest.mark.parametrize("matches,want", [
    ([5], 5), ([5, 0, 0], 0), ([5, 4, 0], 4), ([5, 4, 3], 4), ([9, 9, 1, 1, 1], 1),
    ([9, 8, 7, 1, 1], 7), ([2, 2, 2, 2, 2], 2), ([3, 1, 2, 5], 2),
])
def test_quorum_committed_index_table(matches, want):
    assert committed_index(matches) == want


def _naive_committed(matches):
    # largest index i such that a majority has match >= i
    best = 0
    for i in range(max(matches) + 1):
        if sum(1 for m in matches if m >= i) >= len(matches) // 2 + 1:
            best = i
    return best


def test_quorum_committed_index_matches_naive_random():
    rng = random.Random(7)
    for _ in range(2000):
        ms = [rng.randrange(20) for _ in range(rng.randint(1, 7))]
        assert committed_index(ms) == _naive_committed(ms), ms


@pytest.mark.parametrize("n,granted,rejected,want", [
    (3, 1, 0, PENDING), (3, 2, 0, WON), (3, 1, 2, LOST), (3, 1, 1, PENDING),
    (5, 3, 2, WON), (5, 2, 3, LOST), (5, 2, 2, PENDING), (1, 1, 0, WON), (4, 2, 2, LOST),
])
def test_quorum_vote_result_table(n, granted, rejected, want):
    assert vote_result(n, granted, rejected) == want
