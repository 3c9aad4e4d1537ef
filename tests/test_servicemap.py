"""ServiceMap: a snapshot's services, written as a dict patched in place would be."""

from __future__ import annotations

import random

import pytest

from srvdns.servicemap import MIN_TOP, ServiceMap


def _check(held: ServiceMap[int], expected: dict[str, int], names: list[str]) -> None:
    assert list(held.items()) == list(expected.items())  # the same order too
    assert list(held) == list(expected)
    assert list(held.values()) == list(expected.values())
    assert len(held) == len(expected)
    assert held == expected
    for name in names:
        assert held.get(name) == expected.get(name)
        assert held.get(name, -1) == expected.get(name, -1)
        assert (name in held) == (name in expected)
        if name in expected:
            assert held[name] == expected[name]
        else:
            with pytest.raises(KeyError):
                held[name]


@pytest.mark.parametrize("size", [0, 5, 100, 2000])
def test_written_maps_hold_what_a_dict_patched_in_place_holds(size: int) -> None:
    rng = random.Random(size)
    names = [f"s{n}" for n in range(size + 20)]
    expected = {name: n for n, name in enumerate(names[:size])}
    held: ServiceMap[int] = ServiceMap(expected)
    snapshots: list[tuple[ServiceMap[int], dict[str, int]]] = []
    for step in range(400):
        changes: dict[str, int | None] = {}
        for _ in range(rng.choice([1, 1, 1, 2, 5])):
            name = rng.choice(names)
            changes[name] = None if rng.random() < 0.3 else step
        for name, value in changes.items():
            if value is None:
                expected.pop(name, None)
            else:
                expected[name] = value
        held = held.written(changes)
        _check(held, expected, names)
        if step % 50 == 0:
            snapshots.append((held, dict(expected)))
    for snapshot, then in snapshots:  # a write never changes a map written before
        _check(snapshot, then, names)


def test_a_removed_service_that_comes_back_goes_last_as_in_a_dict() -> None:
    held: ServiceMap[int] = ServiceMap({"a": 1, "b": 2, "c": 3})
    held = held.written({"a": None}).written({"a": 4})
    assert list(held.items()) == [("b", 2), ("c", 3), ("a", 4)]


def test_a_write_replaces_in_place_and_adds_last() -> None:
    held: ServiceMap[int] = ServiceMap({"a": 1, "b": 2})
    held = held.written({"a": 5, "z": 6})
    assert list(held.items()) == [("a", 5), ("b", 2), ("z", 6)]


def test_removing_a_name_not_held_changes_nothing() -> None:
    held: ServiceMap[int] = ServiceMap({"a": 1})
    assert list(held.written({"x": None}).items()) == [("a", 1)]
    assert len(held.written({"x": None})) == 1


def test_a_write_copies_the_written_services_only_until_the_top_is_folded() -> None:
    base = {f"s{n}": n for n in range(10_000)}
    held: ServiceMap[int] = ServiceMap(base)
    first = held
    for n in range(50):  # under the fold limit (100 for 10,000 services)
        held = held.written({f"s{n}": -n})
    assert held._base is first._base  # shared, not copied
    for n in range(50, 200):
        held = held.written({f"s{n}": -n})
    assert held._base is not first._base  # folded on the way
    assert len(held._top) <= 100
    assert held.get("s150") == -150
    assert held.get("s9999") == 9999


def test_small_maps_fold_after_a_few_writes() -> None:
    held: ServiceMap[int] = ServiceMap({"a": 1})
    for n in range(MIN_TOP + 1):
        held = held.written({f"n{n}": n})
    assert len(held._top) <= MIN_TOP
    assert len(held) == MIN_TOP + 2


def test_of_keeps_a_service_map_and_wraps_anything_else() -> None:
    held: ServiceMap[int] = ServiceMap({"a": 1})
    assert ServiceMap.of(held) is held
    assert list(ServiceMap.of({"a": 1}).items()) == [("a", 1)]
