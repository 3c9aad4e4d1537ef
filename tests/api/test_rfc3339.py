"""``rfc3339`` gives exactly what ``datetime`` gives, rounding and all."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

import pytest

from srvdns.api.schemas import rfc3339


def by_datetime(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


EDGES = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    -0.0000004,
    -0.0000005,  # rounds half to even: to the second before, not after
    -0.0000006,
    0.9999994,
    0.9999995,  # rounds up into the next second
    0.9999996,
    0.0015,
    1_700_000_000.0005,
    1_700_000_000.9995,
    1_700_000_000.9999995,
    253_402_300_799.999,  # the last millisecond of year 9999
    -62_135_596_800.0,  # the first second of year 1
]


@pytest.mark.parametrize("timestamp", EDGES)
def test_edges(timestamp: float) -> None:
    assert rfc3339(timestamp) == by_datetime(timestamp)


def test_random_times_in_and_across_seconds() -> None:
    rng = random.Random(3339)
    near = [1.7e9 + rng.randrange(10**6) / 1e6 + rng.choice([0, 5e-7, -5e-7]) for _ in range(5000)]
    anywhere = [rng.uniform(-2e9, 4e9) for _ in range(5000)]
    for timestamp in sorted(near) + anywhere + near:  # cached seconds, then new ones
        assert rfc3339(timestamp) == by_datetime(timestamp), timestamp


@pytest.mark.parametrize(
    ("timestamp", "error"),
    [(math.nan, ValueError), (math.inf, OverflowError), (1e20, OverflowError)],
)
def test_what_datetime_refuses_is_refused(timestamp: float, error: type[Exception]) -> None:
    with pytest.raises(error):
        by_datetime(timestamp)
    with pytest.raises(error):
        rfc3339(timestamp)
