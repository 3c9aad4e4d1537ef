"""A TTL cache that can serve an expired answer for a bounded time when a refresh fails."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    value: V
    expires_at: float
    held_until: float | None = None


class TtlCache(Generic[V]):
    """Answers by key, each fresh for exactly its TTL; every method takes ``now`` (monotonic).

    Serve-stale (the spirit of RFC 8767): when a refresh fails, ``stale`` hands out the
    expired answer if it expired less than ``stale_for`` seconds ago, and holds it as
    fresh for ``recheck`` seconds so that a down server is not asked on every lookup.
    """

    def __init__(self, *, stale_for: float = 60.0, recheck: float = 1.0) -> None:
        if stale_for < 0 or recheck < 0:
            raise ValueError("stale_for and recheck cannot be negative")
        self.stale_for = stale_for
        self.recheck = recheck
        self._entries: dict[Hashable, _Entry[V]] = {}

    def put(self, key: Hashable, value: V, ttl: float, now: float) -> None:
        """Store ``value`` for ``ttl`` seconds from ``now`` (0: never fresh, but may go stale)."""
        self._entries[key] = _Entry(value, now + max(0.0, ttl))

    def fresh(self, key: Hashable, now: float) -> V | None:
        """The value while its TTL lasts (or while a failed refresh holds it), else None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now < entry.expires_at or (entry.held_until is not None and now < entry.held_until):
            return entry.value
        return None

    def stale(self, key: Hashable, now: float) -> V | None:
        """After a failed refresh: the value if it expired less than ``stale_for`` ago, held
        for the next ``recheck`` seconds (never past that bound); else None, and the entry
        is dropped."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        deadline = entry.expires_at + self.stale_for
        if now >= deadline:
            del self._entries[key]
            return None
        self._entries[key] = _Entry(
            entry.value, entry.expires_at, min(now + self.recheck, deadline)
        )
        return entry.value
