"""RFC 2782 selection: weights, weight 0, priorities."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import pytest

from srvdns.client.selection import pick_index, rfc2782_order

PICKS = 10_000


@dataclass(frozen=True)
class T:
    name: str
    priority: int
    weight: int


def chi_square(counts: Counter[int], expected: list[float]) -> float:
    total = sum(counts.values())
    return sum((counts[i] - p * total) ** 2 / (p * total) for i, p in enumerate(expected))


# Upper 0.1% points of the chi-square distribution (NIST/SEMATECH table).
CRITICAL_0_001 = {1: 10.828, 2: 13.816, 3: 16.266}


def picks(weights: list[int], seed: int = 2782) -> Counter[int]:
    rng = random.Random(seed)
    return Counter(pick_index(weights, rng) for _ in range(PICKS))


def test_picks_follow_weights() -> None:
    weights = [1, 2, 3, 4]
    counts = picks(weights)
    statistic = chi_square(counts, [w / 10 for w in weights])
    assert statistic < CRITICAL_0_001[3], (statistic, counts)


def test_the_chi_square_test_has_power() -> None:
    # the same picks are far from a uniform choice: the statistic can tell
    counts = picks([1, 2, 3, 4])
    assert chi_square(counts, [0.25] * 4) > 100 * CRITICAL_0_001[3]


def test_first_of_the_order_follows_weights() -> None:
    rng = random.Random(7)
    targets = [T("a", 0, 1), T("b", 0, 3), T("c", 0, 6)]
    counts = Counter("abc".index(rfc2782_order(targets, rng)[0].name) for _ in range(PICKS))
    assert chi_square(counts, [0.1, 0.3, 0.6]) < CRITICAL_0_001[2], counts


def test_weight_zero_has_a_small_chance() -> None:
    # RFC 2782: weight 0 targets together get 1 / (sum + 1), split evenly between them
    counts = picks([0, 0, 8])
    assert chi_square(counts, [1 / 18, 1 / 18, 8 / 9]) < CRITICAL_0_001[2], counts
    assert counts[0] > 0
    assert counts[1] > 0


def test_all_weights_zero_is_uniform() -> None:
    counts = picks([0, 0, 0])
    assert chi_square(counts, [1 / 3] * 3) < CRITICAL_0_001[2], counts


def test_single_target() -> None:
    assert picks([0]) == Counter({0: PICKS})
    assert picks([5]) == Counter({0: PICKS})


def test_no_target() -> None:
    with pytest.raises(ValueError, match="no targets"):
        pick_index([], random.Random())


def test_order_is_by_priority_then_weighted() -> None:
    rng = random.Random(1)
    targets = [T("late", 2, 100), T("b", 1, 0), T("a", 0, 0), T("c", 1, 1000), T("d", 0, 1)]
    for _ in range(200):
        order = rfc2782_order(targets, rng)
        assert sorted(order, key=lambda t: t.name) == sorted(targets, key=lambda t: t.name)
        assert [t.priority for t in order] == [0, 0, 1, 1, 2]


def test_order_is_a_permutation_for_weight_zero_only() -> None:
    rng = random.Random(3)
    targets = [T(str(n), 0, 0) for n in range(5)]
    firsts = Counter(rfc2782_order(targets, rng)[0].name for _ in range(1000))
    assert set(firsts) == {"0", "1", "2", "3", "4"}
