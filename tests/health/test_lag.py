"""srvdns.health.lag: the event loop's lag, and stalls while a check was in flight."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from srvdns.health.lag import LagMonitor


def test_samples_window_and_stalls() -> None:
    now = [0.0]
    seen: list[float] = []
    monitor = LagMonitor(period=0.05, window=1.0, clock=lambda: now[0], on_sample=seen.append)
    for tick in range(1, 21):
        now[0] = tick * 0.05
        monitor.record(now[0], 0.001)
    monitor.record(1.5, 0.4)  # a stall of 400 ms
    now[0] = 1.5
    assert monitor.lag == 0.4
    assert seen[-1] == 0.4
    assert monitor.max_lag() == 0.4
    assert monitor.stall_since(1.2) == 0.4
    assert monitor.stall_since(1.6) == 0.0
    now[0] = 3.0  # no tick for 1.5 s: the loop is stalled right now
    assert monitor.stall_since(2.9) > 1.4
    monitor.record(3.0, 1.45)
    now[0] = 3.05
    assert monitor.max_lag() == 1.45  # older samples left the window


async def test_a_blocked_loop_shows_as_lag() -> None:
    monitor = LagMonitor(period=0.01)
    task = asyncio.create_task(monitor.run())
    await asyncio.sleep(0.03)
    started = asyncio.get_running_loop().time()
    time.sleep(0.15)  # block the loop
    await asyncio.sleep(0.03)
    task.cancel()
    assert monitor.max_lag() > 0.1
    assert monitor.stall_since(started) > 0.1


class _MillisecondLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock counts whole milliseconds, as uvloop's does."""

    def time(self) -> float:
        return math.floor(time.monotonic() * 1000) / 1000


def _samples_in(run: Callable[[Coroutine[Any, Any, int]], int], seconds: float) -> int:
    async def count() -> int:
        seen: list[float] = []
        monitor = LagMonitor(period=0.05, on_sample=seen.append)
        task = asyncio.create_task(monitor.run())
        await asyncio.sleep(seconds)
        task.cancel()
        return len(seen)

    return run(count())


def test_one_sample_per_period_on_a_clock_of_whole_milliseconds() -> None:
    """A timer may fire up to a millisecond early on such a clock: the monitor waits out
    the rest instead of sampling again and again until the clock gets there."""
    loop = _MillisecondLoop()
    try:
        samples = _samples_in(loop.run_until_complete, 0.5)
    finally:
        loop.close()
    assert 7 <= samples <= 11, samples


def test_one_sample_per_period_on_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")
    samples = _samples_in(uvloop.run, 0.5)
    assert 7 <= samples <= 11, samples
