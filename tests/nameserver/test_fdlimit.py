"""The TCP connection budget under various open-file limits (``fdlimit.tcp_budget``)."""

from __future__ import annotations

import logging
import resource

import pytest

from srvdns.nameserver import fdlimit
from srvdns.nameserver.fdlimit import ACCEPT_BATCH, TcpBudget, tcp_budget

INFINITY = resource.RLIM_INFINITY


class Limits:
    """A stand-in for getrlimit/setrlimit; ``settable`` False makes setrlimit fail."""

    def __init__(self, soft: int, hard: int, *, settable: bool = True) -> None:
        self.soft, self.hard, self.settable = soft, hard, settable

    def get(self, which: int) -> tuple[int, int]:
        assert which == resource.RLIMIT_NOFILE
        return self.soft, self.hard

    def set(self, which: int, limits: tuple[int, int]) -> None:
        if not self.settable:
            raise ValueError("not allowed")
        self.soft, self.hard = limits


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> Limits:
    fake = Limits(1024, 1024)
    monkeypatch.setattr(fdlimit.resource, "getrlimit", fake.get)
    monkeypatch.setattr(fdlimit.resource, "setrlimit", fake.set)
    return fake


def test_a_limit_that_holds_the_cap_is_left_alone(limits: Limits) -> None:
    limits.soft, limits.hard = 4096, 4096
    assert tcp_budget(1000) == TcpBudget(1000, ACCEPT_BATCH)
    assert limits.soft == 4096


def test_the_soft_limit_is_raised_towards_the_hard_one(limits: Limits) -> None:
    limits.soft, limits.hard = 1024, 524288
    assert tcp_budget(1000) == TcpBudget(1000, ACCEPT_BATCH)
    assert limits.soft == 1000 + fdlimit.RESERVED + 3 * ACCEPT_BATCH
    assert limits.hard == 524288


def test_an_unlimited_hard_limit(limits: Limits) -> None:
    limits.soft, limits.hard = 1024, INFINITY
    assert tcp_budget(5000).max_connections == 5000
    assert limits.soft == 5000 + fdlimit.RESERVED + 3 * ACCEPT_BATCH


def test_a_low_hard_limit_shrinks_the_cap_with_a_warning(
    limits: Limits, caplog: pytest.LogCaptureFixture
) -> None:
    limits.soft, limits.hard = 128, 200
    with caplog.at_level(logging.WARNING, logger="srvdns.nameserver.fdlimit"):
        budget = tcp_budget(1000)
    assert limits.soft == 200
    assert budget == TcpBudget(96, 18)  # 200 - 50 reserved = 150; batch 150 // 8; 3 batches
    assert "tcp_max_connections = 1000 does not fit the open-file limit (200" in caplog.text


def test_a_limit_that_cannot_be_raised(limits: Limits) -> None:
    limits.soft, limits.hard, limits.settable = 1024, 4096, False
    budget = tcp_budget(1000)
    assert limits.soft == 1024
    assert budget.max_connections + 3 * budget.accept_batch + fdlimit.RESERVED <= 1024


@pytest.mark.parametrize("soft", [1, 4, 16, 40])
def test_tiny_limits_still_allow_one_connection(limits: Limits, soft: int) -> None:
    limits.soft = limits.hard = soft
    budget = tcp_budget(1000)
    assert budget.max_connections >= 1
    assert budget.accept_batch >= 1
