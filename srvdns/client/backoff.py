"""Exponential backoff with jitter: how long to wait before the next retry; pure."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry ``n`` (0-based) waits ``min(cap, base * factor ** n)`` less up to ``jitter`` of it.

    The jitter ("equal jitter" for the default 0.5) spreads clients that failed together
    so that they do not retry together, while every wait stays at least
    ``(1 - jitter)`` of the nominal one.
    """

    base: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.base <= 0 or self.factor < 1 or self.cap < self.base:
            raise ValueError("backoff needs base > 0, factor >= 1 and cap >= base")
        if not 0 <= self.jitter <= 1:
            raise ValueError("backoff jitter is a fraction between 0 and 1")

    def nominal(self, attempt: int, cap: float | None = None) -> float:
        """The wait before retry ``attempt`` without jitter, at most ``cap`` if given."""
        limit = self.cap if cap is None else min(self.cap, cap)
        # attempt is bounded so that factor ** attempt cannot overflow
        return min(limit, self.base * self.factor ** min(attempt, 64))

    def delay(self, attempt: int, rng: random.Random, cap: float | None = None) -> float:
        """The wait before retry ``attempt``: in ``[(1 - jitter) * nominal, nominal]``."""
        nominal = self.nominal(attempt, cap)
        return nominal - nominal * self.jitter * rng.random()
