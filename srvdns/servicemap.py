"""A snapshot's services by name, written without copying the whole map.

Every committed write publishes a new snapshot, and a snapshot used to hold a copy of
the whole service map with the written services replaced: a write cost time in
proportion to the registry, not to what it wrote.  The copy, and the release of the map
it replaced, touch every service's name and view; at 10,000 services a registration
took 228 µs of CPU (129 µs now), and more between DNS answers, which push those
objects out of the CPU's caches (``bench/write_cost_in_mix.py --services 10000``).

``ServiceMap`` keeps a base map that the snapshots share and, on top, the services
written since: a write copies the top only.  Once the top holds more than about the
square root of the map's size, the next write folds it into a new base, so that a
lookup stays at most two dict lookups and the folding costs less than a copy per write
did.  Iteration goes in the order a ``dict`` patched in place would have (a service
written again keeps its place, a new one comes last), so whoever walks a snapshot sees
no difference.
"""

from __future__ import annotations

import math
from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import Final, Generic, TypeVar, overload

V = TypeVar("V")
D = TypeVar("D")

_ABSENT: Final = object()

MIN_TOP: Final = 8
"""Services the top holds at least before it is folded into the base."""


class ServiceMap(Mapping[str, V], Generic[V]):
    """An immutable name -> view map; ``written`` returns a new one with changes."""

    __slots__ = ("_base", "_flat", "_len", "_top")

    def __init__(self, base: Mapping[str, V] | None = None) -> None:
        """A map of what ``base`` holds (copied)."""
        self._base: dict[str, V] = dict(base) if base is not None else {}
        self._top: dict[str, V | None] = {}
        """Names written since the base: their views, None for a name removed."""
        self._len = len(self._base)
        self._flat: dict[str, V] | None = self._base

    @classmethod
    def of(cls, mapping: Mapping[str, V]) -> ServiceMap[V]:
        """``mapping`` itself when it is a ServiceMap, else a ServiceMap of it."""
        return mapping if isinstance(mapping, ServiceMap) else cls(mapping)

    def written(self, changes: Mapping[str, V | None]) -> ServiceMap[V]:
        """A copy with each name in ``changes`` set to its view, or removed for None
        (a name not held removed is no change)."""
        base, top = self._base, self._top
        if len(top) + len(changes) > max(MIN_TOP, math.isqrt(self._len)) or any(
            view is not None and top.get(name, _ABSENT) is None for name, view in changes.items()
        ):
            # fold: the top is full, or a name removed since the base comes back (it
            # goes last, as in a dict, not back to its place in the base)
            return ServiceMap._folded(self._merged(), changes)
        new_top = top.copy()
        length = self._len
        for name, view in changes.items():
            current = top.get(name, _ABSENT)
            held = name in base if current is _ABSENT else current is not None
            if view is None:
                if not held:
                    continue
                length -= 1
                if name in base:
                    new_top[name] = None
                else:
                    del new_top[name]
            else:
                if not held:
                    length += 1
                new_top[name] = view
        result: ServiceMap[V] = ServiceMap.__new__(ServiceMap)
        result._base, result._top, result._len = base, new_top, length
        result._flat = None if new_top else base
        return result

    @staticmethod
    def _folded(merged: dict[str, V], changes: Mapping[str, V | None]) -> ServiceMap[V]:
        for name, view in changes.items():
            if view is None:
                merged.pop(name, None)
            else:
                merged[name] = view
        result: ServiceMap[V] = ServiceMap.__new__(ServiceMap)
        result._base, result._top, result._len, result._flat = merged, {}, len(merged), merged
        return result

    def _merged(self) -> dict[str, V]:
        """A new dict of what this map holds, in its order."""
        merged = self._base.copy()
        for name, view in self._top.items():
            if view is None:
                del merged[name]
            else:
                merged[name] = view
        return merged

    def flat(self) -> Mapping[str, V]:
        """What this map holds as one dict (made once, on first use, when there is a
        top): for walks over every service."""
        flat = self._flat
        if flat is None:
            flat = self._flat = self._merged()
        return flat

    @overload
    def get(self, name: str, /) -> V | None: ...
    @overload
    def get(self, name: str, default: D, /) -> V | D: ...
    def get(self, name: str, default: object = None, /) -> object:
        view = self._top.get(name, _ABSENT)
        if view is _ABSENT:
            return self._base.get(name, default)
        return default if view is None else view

    def __getitem__(self, name: str) -> V:
        view = self._top.get(name, _ABSENT)
        if view is _ABSENT:
            return self._base[name]
        if view is None:
            raise KeyError(name)
        return view  # type: ignore[return-value]

    def __contains__(self, name: object) -> bool:
        view = self._top.get(name, _ABSENT)  # type: ignore[call-overload]
        if view is _ABSENT:
            return name in self._base
        return view is not None

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[str]:
        return iter(self.flat())

    # the flat dict's own views: a walk goes at C speed, not through ``__getitem__``
    def keys(self) -> KeysView[str]:
        return self.flat().keys()

    def items(self) -> ItemsView[str, V]:
        return self.flat().items()

    def values(self) -> ValuesView[V]:
        return self.flat().values()

    def __repr__(self) -> str:
        return f"ServiceMap({dict(self.flat())!r})"
