"""srvdns.health.schedule: spread first runs, jitter that never lengthens, heap order."""

from __future__ import annotations

import random
import statistics

import pytest

from srvdns.health.schedule import Schedule


def test_first_runs_spread_over_the_interval_at_start_and_at_once_later() -> None:
    schedule: Schedule[int] = Schedule(rng=random.Random(7))
    firsts = [schedule.first_due(100.0, 10.0, spread=True) for _ in range(10_000)]
    assert min(firsts) >= 100.0
    assert max(firsts) <= 110.0
    # ten thousand checks do not fire together: about a thousand per second of the interval
    per_second = [sum(1 for t in firsts if 100 + s <= t < 101 + s) for s in range(10)]
    assert all(900 < n < 1100 for n in per_second), per_second
    assert schedule.first_due(100.0, 10.0, spread=False) == 100.0


def test_jitter_only_shortens_the_interval() -> None:
    schedule: Schedule[int] = Schedule(jitter=0.2, rng=random.Random(1))
    steps = [schedule.next_due(50.0, 10.0, finished=50.1) - 50.0 for _ in range(5000)]
    assert min(steps) >= 8.0
    assert max(steps) <= 10.0
    assert statistics.mean(steps) == pytest.approx(9.0, abs=0.05)
    # a run that took longer than its interval is not followed by a burst
    assert schedule.next_due(50.0, 1.0, finished=53.0) == 53.0


def test_no_jitter_keeps_a_fixed_rate() -> None:
    schedule: Schedule[int] = Schedule(jitter=0.0)
    assert schedule.next_due(50.0, 2.0, finished=50.5) == 52.0


def test_pop_due_in_order_and_replan() -> None:
    schedule: Schedule[str] = Schedule()
    schedule.at("b", 2.0)
    schedule.at("a", 1.0)
    schedule.at("c", 3.0)
    schedule.at("b", 5.0)  # replanned: the earlier slot no longer counts
    assert len(schedule) == 3
    assert "b" in schedule
    assert schedule.next_time() == 1.0
    assert schedule.pop_due(2.5) == ["a"]
    assert schedule.due_at("b") == 5.0
    schedule.discard("c")
    assert schedule.next_time() == 5.0
    assert schedule.pop_due(10.0) == ["b"]
    assert schedule.next_time() is None
    assert len(schedule) == 0
    schedule.at("c", 1.0)  # a discarded key can be planned again
    assert schedule.pop_due(1.0) == ["c"]


def test_pop_due_takes_at_most_limit_earliest_first() -> None:
    schedule: Schedule[int] = Schedule()
    for n in (5, 3, 1, 4, 2):
        schedule.at(n, float(n))
    schedule.at(1, 9.0)  # a superseded slot does not count toward the limit
    assert schedule.pop_due(5.0, limit=2) == [2, 3]
    assert schedule.pop_due(5.0, limit=2) == [4, 5]
    assert schedule.pop_due(5.0, limit=2) == []
    assert schedule.pop_due(9.0, limit=0) == []
    assert schedule.pop_due(9.0) == [1]


def test_superseded_slots_are_compacted() -> None:
    schedule: Schedule[int] = Schedule()
    for n in range(1000):
        schedule.at(n % 10, float(n))
    assert len(schedule) == 10
    assert len(schedule._heap) < 100
    assert schedule.pop_due(2000.0) == list(range(10))


def test_bad_jitter() -> None:
    with pytest.raises(ValueError, match="jitter"):
        Schedule(jitter=1.0)
