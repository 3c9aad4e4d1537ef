"""Further record orders of a cached answer, put together from its records' octets."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Final

from srvdns.nameserver.authority import Answer, Reordering
from srvdns.nameserver.packing import Arrangement, ArrangingPacker

ARRANGEMENTS: Final = 1024
"""Arrangements held at once (``Arrangements``): a few KiB each for a large answer."""

Pack = Callable[[Answer, "list[ArrangingPacker] | None"], bytes]
"""Packs an answer's records into the reply (its packer appended to the list if given,
when every record fitted: see ``Handler._reply``)."""


class Arrangements:
    """The ``Arrangement`` of each answer still collecting orders, at most ``limit``,
    the oldest dropped first.

    Held by the cached entries themselves until their next hit, arrangements cost tens
    of MiB at 100,000 instances: a first pass over every question leaves one in every
    entry until it is asked again.  Under write churn an answer's next hits follow its
    miss within milliseconds, so the few hundred newest ones are all that are used; an
    answer whose arrangement was dropped packs its next order anew and keeps that one's.
    """

    __slots__ = ("_held", "_limit")

    def __init__(self, limit: int = ARRANGEMENTS) -> None:
        self._held: dict[Reorder, Arrangement] = {}
        self._limit = limit

    def put(self, key: Reorder, arrangement: Arrangement) -> None:
        """Hold ``arrangement`` for ``key``, dropping the oldest held if full."""
        held = self._held
        if key not in held and len(held) >= self._limit:
            if not held:
                return
            del held[next(iter(held))]
        held[key] = arrangement

    def get(self, key: Reorder) -> Arrangement | None:
        """The arrangement held for ``key``, if it still is."""
        return self._held.get(key)

    def discard(self, key: object) -> None:
        """Drop what is held for ``key``, if anything (its answer has all its orders)."""
        self._held.pop(key, None)  # type: ignore[call-overload]

    def __len__(self) -> int:
        return len(self._held)


class Reorder:
    """Another order of one answer's records, packed as the first was: its records'
    octets put together again in the order drawn when an arrangement is held
    (``packing.Arrangement``), else the answer of that draw packed anew and that order's
    arrangement kept for the next call.

    An object, not a closure over the first reply: a cached entry holds it until its
    last order, and it holds no octets (``Arrangements`` does, boundedly).
    """

    __slots__ = ("_arrangements", "_first", "_pack", "_reorder", "_rng")

    def __init__(
        self,
        pack: Pack,
        reorder: Reordering,
        rng: random.Random,
        arrangements: Arrangements,
    ) -> None:
        self._pack = pack
        self._reorder = reorder
        self._rng = rng
        self._arrangements = arrangements
        self._first: tuple[ArrangingPacker, bytes] | None = None

    def first(self, packer: ArrangingPacker, reply: bytes) -> None:
        """``reply``, which ``packer`` wrote, is the answer's first order: its arrangement
        is kept once the reply is cached (``keep``)."""
        self._first = (packer, reply)

    def keep(self) -> None:
        """The answer is cached: hold the first order's arrangement for the next call."""
        first, self._first = self._first, None
        order = self._reorder.first_order()  # taken even if unused: it holds nothing after
        if first is not None and order is not None:
            self._hold(*first, *order)

    def _hold(
        self,
        packer: ArrangingPacker,
        reply: bytes,
        answer: Sequence[int],
        additional: Sequence[int],
    ) -> None:
        arrangement = packer.arrangement(reply, answer, additional)
        if arrangement is not None:
            self._arrangements.put(self, arrangement)

    def __call__(self) -> bytes:
        reorder = self._reorder
        answer, additional = reorder.draw(self._rng)
        arrangement = self._arrangements.get(self)
        if arrangement is not None:
            moved = arrangement.reordered(answer, additional)
            if moved is not None:
                return moved
        kept: list[ArrangingPacker] = []
        reply = self._pack(reorder.answer(answer, additional), kept)
        if kept:  # the draw's lists change with the next draw: the arrangement's do not
            self._hold(kept[0], reply, list(answer), list(additional))
        return reply
