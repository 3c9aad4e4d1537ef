"""Circuit breaker transitions."""

from __future__ import annotations

import pytest
from client.support import Clock

from srvdns.client.breaker import Breakers, State

KEY = ("a.instance.web.service.local.", 80)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breakers(clock: Clock) -> Breakers:
    return Breakers(clock, threshold=3, cooldown=10)


def test_opens_after_threshold_consecutive_failures(breakers: Breakers) -> None:
    for _ in range(2):
        breakers.failed(KEY)
        assert breakers.state(KEY) is State.CLOSED
        assert breakers.acquire(KEY)
    breakers.failed(KEY)
    assert breakers.state(KEY) is State.OPEN
    assert not breakers.available(KEY)
    assert not breakers.acquire(KEY)


def test_a_success_resets_the_count(breakers: Breakers) -> None:
    breakers.failed(KEY)
    breakers.failed(KEY)
    breakers.succeeded(KEY)
    breakers.failed(KEY)
    breakers.failed(KEY)
    assert breakers.state(KEY) is State.CLOSED


def test_half_open_after_cooldown_lets_one_trial_through(breakers: Breakers, clock: Clock) -> None:
    for _ in range(3):
        breakers.failed(KEY)
    clock.advance(9.99)
    assert breakers.state(KEY) is State.OPEN
    clock.advance(0.01)
    assert breakers.state(KEY) is State.HALF_OPEN
    assert breakers.available(KEY)
    assert breakers.acquire(KEY)  # the trial
    assert not breakers.available(KEY)
    assert not breakers.acquire(KEY)  # only one
    assert breakers.state(KEY) is State.HALF_OPEN


def test_a_successful_trial_closes(breakers: Breakers, clock: Clock) -> None:
    for _ in range(3):
        breakers.failed(KEY)
    clock.advance(10)
    assert breakers.acquire(KEY)
    breakers.succeeded(KEY)
    assert breakers.state(KEY) is State.CLOSED
    assert breakers.acquire(KEY)
    assert breakers.acquire(KEY)


def test_a_failed_trial_opens_again_for_a_full_cooldown(breakers: Breakers, clock: Clock) -> None:
    for _ in range(3):
        breakers.failed(KEY)
    clock.advance(10)
    assert breakers.acquire(KEY)
    breakers.failed(KEY)  # one failure is enough in half-open
    assert breakers.state(KEY) is State.OPEN
    clock.advance(9.9)
    assert breakers.state(KEY) is State.OPEN
    clock.advance(0.1)
    assert breakers.state(KEY) is State.HALF_OPEN


def test_a_trial_that_never_reports_is_given_up_after_a_cooldown(
    breakers: Breakers, clock: Clock
) -> None:
    for _ in range(3):
        breakers.failed(KEY)
    clock.advance(10)
    assert breakers.acquire(KEY)
    clock.advance(9)
    assert not breakers.acquire(KEY)
    clock.advance(1)
    assert breakers.acquire(KEY)


def test_late_failures_do_not_extend_an_open_circuit(breakers: Breakers, clock: Clock) -> None:
    for _ in range(3):
        breakers.failed(KEY)
    clock.advance(5)
    breakers.failed(KEY)  # a request that started before the circuit opened
    clock.advance(5)
    assert breakers.state(KEY) is State.HALF_OPEN


def test_circuits_are_per_instance(breakers: Breakers) -> None:
    for _ in range(3):
        breakers.failed(KEY)
    other = ("b.instance.web.service.local.", 80)
    assert breakers.state(other) is State.CLOSED
    assert breakers.acquire(other)


def test_bad_settings(clock: Clock) -> None:
    with pytest.raises(ValueError, match="threshold"):
        Breakers(clock, threshold=0)
