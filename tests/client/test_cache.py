"""The TTL cache and its bounded stale answers."""

from __future__ import annotations

import pytest

from srvdns.client.cache import TtlCache

T0 = 1000.0


def test_fresh_for_exactly_the_ttl() -> None:
    cache: TtlCache[str] = TtlCache()
    cache.put("k", "v", 5, T0)
    assert cache.fresh("k", T0) == "v"
    assert cache.fresh("k", T0 + 4.999) == "v"
    assert cache.fresh("k", T0 + 5) is None
    assert cache.fresh("other", T0) is None


def test_ttl_zero_is_never_fresh() -> None:
    cache: TtlCache[str] = TtlCache()
    cache.put("k", "v", 0, T0)
    assert cache.fresh("k", T0) is None


def test_an_empty_answer_is_a_value() -> None:
    cache: TtlCache[tuple[str, ...]] = TtlCache()
    cache.put("k", (), 3, T0)
    assert cache.fresh("k", T0 + 1) == ()


def test_stale_is_bounded() -> None:
    cache: TtlCache[str] = TtlCache(stale_for=60, recheck=0)
    cache.put("k", "v", 5, T0)
    assert cache.stale("k", T0 + 5) == "v"
    assert cache.stale("k", T0 + 64.999) == "v"
    assert cache.stale("k", T0 + 65) is None
    assert cache.stale("k", T0 + 6) is None  # dropped once too old
    assert cache.stale("never", T0) is None


def test_a_stale_answer_is_held_for_the_recheck_time() -> None:
    cache: TtlCache[str] = TtlCache(stale_for=60, recheck=2)
    cache.put("k", "v", 5, T0)
    assert cache.fresh("k", T0 + 10) is None
    assert cache.stale("k", T0 + 10) == "v"
    assert cache.fresh("k", T0 + 11.9) == "v"  # no new query while held
    assert cache.fresh("k", T0 + 12) is None


def test_the_hold_never_passes_the_stale_bound() -> None:
    cache: TtlCache[str] = TtlCache(stale_for=60, recheck=10)
    cache.put("k", "v", 5, T0)
    assert cache.stale("k", T0 + 60) == "v"
    assert cache.fresh("k", T0 + 64.9) == "v"
    assert cache.fresh("k", T0 + 65) is None


def test_a_new_answer_replaces_a_held_one() -> None:
    cache: TtlCache[str] = TtlCache(stale_for=60, recheck=10)
    cache.put("k", "old", 5, T0)
    cache.stale("k", T0 + 6)
    cache.put("k", "new", 1, T0 + 7)
    assert cache.fresh("k", T0 + 7.5) == "new"
    assert cache.fresh("k", T0 + 8) is None


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="negative"):
        TtlCache(stale_for=-1)
