"""The backoff schedule and its jitter bounds."""

from __future__ import annotations

import random

import pytest

from srvdns.client.backoff import Backoff


def test_nominal_schedule_doubles_up_to_the_cap() -> None:
    backoff = Backoff(base=0.5, factor=2, cap=5)
    assert [backoff.nominal(n) for n in range(6)] == [0.5, 1, 2, 4, 5, 5]
    assert backoff.nominal(10_000) == 5  # no overflow


def test_a_smaller_cap_wins() -> None:
    backoff = Backoff(base=0.5, cap=30)
    assert backoff.nominal(5, cap=3) == 3
    assert backoff.nominal(0, cap=0.1) == pytest.approx(0.1)


@pytest.mark.parametrize("jitter", [0.0, 0.25, 0.5, 1.0])
def test_delays_stay_within_the_jitter_bounds(jitter: float) -> None:
    backoff = Backoff(base=0.1, factor=3, cap=10, jitter=jitter)
    rng = random.Random(42)
    for attempt in range(8):
        nominal = backoff.nominal(attempt)
        delays = [backoff.delay(attempt, rng) for _ in range(2000)]
        assert all((1 - jitter) * nominal <= d <= nominal for d in delays)
        spread = max(delays) - min(delays)
        assert spread == pytest.approx(jitter * nominal, rel=0.02, abs=1e-12)


def test_jitter_spreads_clients_that_failed_together() -> None:
    backoff = Backoff()
    delays = {round(backoff.delay(3, random.Random(seed)), 6) for seed in range(50)}
    assert len(delays) == 50


@pytest.mark.parametrize(
    "options",
    [{"base": 0}, {"factor": 0.5}, {"base": 2, "cap": 1}, {"jitter": -0.1}, {"jitter": 1.5}],
)
def test_bad_settings(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(**options)
