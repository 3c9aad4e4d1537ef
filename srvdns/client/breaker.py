"""Per-instance circuit breakers: closed, open for a cool-down, half-open for one trial."""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass


class State(enum.Enum):
    """Where one instance's circuit is."""

    CLOSED = "closed"
    """Requests go through; consecutive failures are counted."""
    OPEN = "open"
    """``threshold`` consecutive failures: no requests until the cool-down has passed."""
    HALF_OPEN = "half-open"
    """The cool-down has passed: one trial request may go; its outcome decides."""


@dataclass(slots=True)
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    trial_at: float | None = None


class Breakers:
    """The circuits of every instance, by key; ``clock`` is a monotonic clock in seconds.

    ``threshold`` consecutive failures open a circuit for ``cooldown`` seconds; after it,
    the circuit is half-open and ``acquire`` lets exactly one trial through (another one
    only if the trial reports nothing within a further cool-down).  A success closes the
    circuit; a failed trial opens it for another cool-down.  Safe to share between threads.
    """

    def __init__(
        self, clock: Callable[[], float], *, threshold: int = 3, cooldown: float = 10.0
    ) -> None:
        if threshold < 1 or cooldown < 0:
            raise ValueError("a breaker needs threshold >= 1 and cooldown >= 0")
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._circuits: dict[Hashable, _Circuit] = {}
        self._lock = threading.Lock()

    def state(self, key: Hashable) -> State:
        """The state of ``key``'s circuit now."""
        with self._lock:
            circuit = self._circuits.get(key)
            return State.CLOSED if circuit is None else self._state(circuit, self._clock())

    def available(self, key: Hashable) -> bool:
        """Whether ``acquire(key)`` would let a request through now (nothing is claimed)."""
        with self._lock:
            return self._available(self._circuits.get(key), self._clock())

    def acquire(self, key: Hashable) -> bool:
        """Let one request to ``key`` through, claiming the trial of a half-open circuit."""
        with self._lock:
            now = self._clock()
            circuit = self._circuits.get(key)
            if not self._available(circuit, now):
                return False
            if circuit is not None and self._state(circuit, now) is State.HALF_OPEN:
                circuit.trial_at = now
            return True

    def succeeded(self, key: Hashable) -> None:
        """A request to ``key`` worked: close its circuit."""
        with self._lock:
            self._circuits.pop(key, None)

    def failed(self, key: Hashable) -> None:
        """A request to ``key`` failed: count it; open the circuit at the threshold, or again
        when the trial of a half-open circuit failed."""
        with self._lock:
            now = self._clock()
            circuit = self._circuits.setdefault(key, _Circuit())
            state = self._state(circuit, now)
            if state is State.OPEN:
                return  # a request that started before the circuit opened
            circuit.failures += 1
            if state is State.HALF_OPEN or circuit.failures >= self.threshold:
                circuit.opened_at = now
                circuit.trial_at = None

    def _state(self, circuit: _Circuit, now: float) -> State:
        if circuit.opened_at is None:
            return State.CLOSED
        if now < circuit.opened_at + self.cooldown:
            return State.OPEN
        return State.HALF_OPEN

    def _available(self, circuit: _Circuit | None, now: float) -> bool:
        if circuit is None:
            return True
        state = self._state(circuit, now)
        if state is State.HALF_OPEN:
            return circuit.trial_at is None or now >= circuit.trial_at + self.cooldown
        return state is State.CLOSED
