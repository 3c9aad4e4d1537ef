"""A fixed-bucket histogram as plain ints, for code that must not touch Prometheus
objects while it works; collectors turn it into a metric family at scrape time."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from prometheus_client.core import HistogramMetricFamily


class Histogram:
    """Counts of observations per bucket (``bounds`` are upper bounds, ascending; one
    more bucket holds everything larger) and their sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        if list(bounds) != sorted(set(bounds)):
            raise ValueError("bucket bounds must be ascending and distinct")
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        """Count one observation (bounds are inclusive, as in Prometheus)."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        """How many observations there were."""
        return sum(self.counts)

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative (le, count) pairs, +Inf last, as ``HistogramMetricFamily`` takes."""
        out: list[tuple[str, float]] = []
        cumulative = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            cumulative += count
            out.append((repr(float(bound)), cumulative))
        out.append(("+Inf", cumulative + self.counts[-1]))
        return out


def add_histogram(family: HistogramMetricFamily, labels: Sequence[str], hist: Histogram) -> None:
    """Add ``hist`` to ``family`` as the series with ``labels``."""
    family.add_metric(list(labels), hist.buckets(), hist.total)
