"""When each check runs: a heap of due times with a random first offset and jitter; pure.

Times are the event loop's monotonic clock.  A check added when the loop starts (or
restarts) first runs at a random point inside its interval, so ten thousand checks
loaded together spread evenly instead of firing at once; a check registered while the
loop runs is due at once, so a new instance reaches DNS as soon as it answers.  After a
run the next one is due one interval after the previous due time, shortened by up to
``jitter`` of the interval (never lengthened: a dead instance is still noticed within
one interval plus one timeout), and never before the run finished.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


_Slot = tuple[float, int, K]
"""(due, sequence number, key): a plain tuple, so that the heap compares in C."""


class Schedule(Generic[K]):
    """Due times of keys; each key is due at most once at a time (a later ``at`` wins)."""

    def __init__(self, *, jitter: float = 0.1, rng: random.Random | None = None) -> None:
        if not 0 <= jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        self._jitter = jitter
        self._rng = rng if rng is not None else random.Random()
        self._heap: list[_Slot[K]] = []
        self._planned: dict[K, _Slot[K]] = {}
        self._seq = itertools.count()

    def __len__(self) -> int:
        """How many keys are due at some time."""
        return len(self._planned)

    def __contains__(self, key: object) -> bool:
        return key in self._planned

    def first_due(self, now: float, interval: float, *, spread: bool) -> float:
        """When a newly added check first runs: at a random point of its interval
        (``spread``, at start-up) or now."""
        return now + self._rng.uniform(0.0, interval) if spread else now

    def next_due(self, due: float, interval: float, finished: float) -> float:
        """When a check due at ``due`` that finished at ``finished`` runs next."""
        step = interval * (1.0 - self._jitter * self._rng.random())
        return max(due + step, finished)

    def at(self, key: K, due: float) -> None:
        """Make ``key`` due at ``due`` (replacing an earlier plan for it)."""
        slot = (due, next(self._seq), key)
        planned = self._planned
        planned[key] = slot
        heap = self._heap
        heapq.heappush(heap, slot)
        if len(heap) > 64 and len(heap) > 4 * len(planned):
            self._compact()

    def due_at(self, key: K) -> float | None:
        """When ``key`` is due, or None."""
        slot = self._planned.get(key)
        return None if slot is None else slot[0]

    def discard(self, key: K) -> None:
        """Forget ``key``'s plan, if any."""
        self._planned.pop(key, None)

    def next_time(self) -> float | None:
        """The earliest due time, or None when nothing is planned."""
        while self._heap and not self._live(self._heap[0]):
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float, limit: int | None = None) -> list[K]:
        """Every key due at or before ``now`` (the ``limit`` earliest, when given),
        earliest first; they are no longer planned."""
        out: list[K] = []
        heap = self._heap
        planned = self._planned
        most = len(heap) if limit is None else limit
        while heap and heap[0][0] <= now and len(out) < most:
            slot = heapq.heappop(heap)
            key = slot[2]
            if planned.get(key) is slot:
                del planned[key]
                out.append(key)
        return out

    def _live(self, slot: _Slot[K]) -> bool:
        return self._planned.get(slot[2]) is slot

    def _compact(self) -> None:
        """Drop the superseded slots (they stay in the heap until popped); ``at`` calls
        this when they dominate (the test is inline there: it runs once per check)."""
        self._heap = [slot for slot in self._heap if self._live(slot)]
        heapq.heapify(self._heap)
