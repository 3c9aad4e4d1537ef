"""What the registry counts about its writes and snapshots, as plain numbers.

Updated on the event loop thread only (where a write is published); read by
``registry.metrics`` at scrape time.
"""

from __future__ import annotations

from srvdns.histogram import Histogram

WRITE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Seconds: a SQLite commit takes about a millisecond; a queue of writes or a slow
disk, up to seconds."""

SNAPSHOT_BUCKETS = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
"""Seconds: patching a snapshot takes microseconds; building 100,000 instances, seconds."""


class RegistryStats:
    """Write latency and errors by operation; snapshot build and patch times."""

    def __init__(self) -> None:
        self.writes: dict[str, Histogram] = {}
        """Operation -> seconds from the call to the committed change being published."""
        self.errors: dict[tuple[str, str], int] = {}
        """(operation, error class) -> writes that failed."""
        self.snapshots: dict[str, Histogram] = {}
        """"build" (a whole registry) or "patch" (changed services) -> seconds."""

    def write(self, operation: str, seconds: float, error: BaseException | None) -> None:
        """Count one write that took ``seconds`` and failed with ``error`` (None: ok)."""
        hist = self.writes.get(operation)
        if hist is None:
            hist = self.writes[operation] = Histogram(WRITE_BUCKETS)
        hist.observe(seconds)
        if error is not None:
            key = (operation, type(error).__name__)
            self.errors[key] = self.errors.get(key, 0) + 1

    def snapshot(self, kind: str, seconds: float) -> None:
        """Count one snapshot made by ``kind`` ("build" or "patch")."""
        hist = self.snapshots.get(kind)
        if hist is None:
            hist = self.snapshots[kind] = Histogram(SNAPSHOT_BUCKETS)
        hist.observe(seconds)
