"""How late the event loop runs: a timer that should fire every ``period`` notes how late it is."""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Callable
from typing import Final

CLOCK_STEP: Final = 0.001
"""The coarsest event loop clock there is (uvloop's: whole milliseconds)."""


class LagMonitor:
    """Measures the event loop's lag: how much later than asked a timer callback runs.

    A loop busy with work (or blocked) delays every timer and every I/O callback alike:
    DNS answers, API calls, and the health checks' own timeouts.  ``lag`` is the latest
    sample, ``max_lag()`` the largest of the last ``window`` seconds, and ``stall_since(t)``
    tells whether the loop stalled while something started at ``t`` was in flight (the
    loop then treats a timeout as its own fault, not the target's).
    """

    def __init__(
        self,
        period: float = 0.05,
        window: float = 10.0,
        *,
        clock: Callable[[], float] | None = None,
        on_sample: Callable[[float], None] | None = None,
    ) -> None:
        self.period = period
        self.window = window
        self.lag = 0.0
        self._clock = clock
        self._on_sample = on_sample
        self._samples: collections.deque[tuple[float, float]] = collections.deque()
        self._last_tick: float | None = None

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def record(self, now: float, lag: float) -> None:
        """Note that at ``now`` the timer ran ``lag`` seconds late."""
        self.lag = lag
        self._last_tick = now
        self._samples.append((now, lag))
        horizon = now - self.window
        while self._samples and self._samples[0][0] < horizon:
            self._samples.popleft()
        if self._on_sample is not None:
            self._on_sample(lag)

    def max_lag(self) -> float:
        """The largest lag of the last ``window`` seconds (including a stall going on now)."""
        return max([lag for _, lag in self._samples] + [self._ongoing()], default=0.0)

    def stall_since(self, started: float) -> float:
        """The largest lag seen since ``started`` (loop clock), including one going on now."""
        seen = [lag for at, lag in self._samples if at >= started]
        return max([*seen, self._ongoing()], default=0.0)

    def _ongoing(self) -> float:
        if self._last_tick is None:
            return 0.0
        return max(0.0, self._now() - self._last_tick - self.period)

    async def run(self) -> None:
        """Sample forever (cancel to stop)."""
        loop = asyncio.get_running_loop()
        period = self.period
        # on a grid of the period, so that other timers on that grid (the health loop's)
        # fire in the same wake-up of the loop; counted in periods, not computed from the
        # clock each time, where a clock exactly on a grid point (uvloop's counts whole
        # milliseconds) can floor to the point just passed and sample it again
        point = math.floor(loop.time() / period) + 1
        while True:
            expected = point * period
            now = loop.time()
            while now < expected:
                # a timer on a clock of whole milliseconds may fire up to one early: wait
                # out the rest (at least one step of that clock, or it fires at once again)
                await asyncio.sleep(max(expected - now, CLOCK_STEP))
                now = loop.time()
            self.record(now, now - expected)
            point = max(point + 1, math.floor(now / period) + 1)
