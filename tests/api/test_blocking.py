"""srvdns.api.blocking: Go durations, the wait of a blocking query, its jitter."""

from __future__ import annotations

import random

import pytest

from srvdns.api.blocking import (
    DEFAULT_WAIT,
    MAX_WAIT,
    block,
    format_go_duration,
    index_headers,
    parse_go_duration,
    parse_index,
    parse_wait,
)
from srvdns.registry.registry import Registry


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("10s", 10.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        ("2h45m", 9900.0),
        ("250us", 0.00025),
        ("100µs", 0.0001),
        ("1000000ns", 0.001),
        (".5s", 0.5),
    ],
)
def test_parse_go_duration(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "-1s", "1d", "ten", "1s 2s", "s"])
def test_parse_go_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_go_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (10, "10s"),
        (90, "1m30s"),
        (0.5, "500ms"),
        (1.5, "1.5s"),
        (3600, "1h0m0s"),
        (0.0015, "1.5ms"),
        (300, "5m0s"),
    ],
)
def test_format_go_duration(seconds: float, text: str) -> None:
    assert format_go_duration(seconds) == text
    assert parse_go_duration(text) == pytest.approx(seconds)


def test_wait_and_index() -> None:
    assert parse_wait(None) == parse_wait("") == DEFAULT_WAIT == 300
    assert parse_wait("30s") == 30
    assert parse_wait("1h") == MAX_WAIT == 600  # Consul caps the wait at 10 minutes
    assert parse_index("42") == 42
    for bad in ("", "-1", "1.5", "x"):
        with pytest.raises(ValueError, match="not an unsigned integer"):
            parse_index(bad)


def test_index_headers_never_say_zero() -> None:
    assert index_headers(0)["X-Consul-Index"] == "1"
    assert index_headers(7) == {
        "X-Consul-Index": "7",
        "X-Consul-KnownLeader": "true",
        "X-Consul-LastContact": "0",
    }


async def test_block_adds_up_to_a_sixteenth_of_jitter(registry: Registry, monkeypatch) -> None:
    waited: list[float] = []

    async def fake_wait(index: int, timeout: float) -> int:
        waited.append(timeout)
        return index

    monkeypatch.setattr(registry, "wait_for_index", fake_wait)
    rng = random.Random(7)
    for _ in range(50):
        await block(registry, 5, 16.0, rng)
    assert all(16.0 <= t <= 17.0 for t in waited)
    assert max(waited) - min(waited) > 0.5  # spread, not a constant
    waited.clear()
    assert await block(registry, None, 16.0) == registry.holder.current.index
    assert await block(registry, 0, 16.0) == registry.holder.current.index
    assert waited == []  # no index, or index 0: no blocking
