"""RFC 2782 target selection: lowest priority first, weighted random within a priority; pure."""

from __future__ import annotations

import random
from collections.abc import Sequence
from itertools import groupby
from typing import Protocol, TypeVar


class Weighted(Protocol):
    """Anything with an SRV priority and weight."""

    @property
    def priority(self) -> int: ...
    @property
    def weight(self) -> int: ...


T = TypeVar("T", bound=Weighted)


def pick_index(weights: Sequence[int], rng: random.Random) -> int:
    """The index of one of ``weights`` (all targets of one priority), chosen per RFC 2782.

    RFC 2782: "arrange all SRV RRs (that have not been ordered yet) in any order, except
    that all those with weight 0 are placed at the beginning of the list.  Compute the sum
    of the weights ... choose a uniform random number between 0 and the sum ... select the
    RR whose running sum value is the first in the selected order which is greater than or
    equal to the random number selected."  So a target of weight w > 0 is chosen with
    probability w / (T + 1) and the weight 0 ones, together, with 1 / (T + 1), where T is
    the sum of the weights.  When no weight is 0 the number is drawn from 1..T instead, so
    that weights are honoured exactly (drawing 0 would favour the first target); when
    every weight is 0 the choice is uniform.
    """
    if not weights:
        raise ValueError("no targets to choose from")
    total = sum(weights)
    zeros = [i for i, weight in enumerate(weights) if weight == 0]
    if total == 0:
        return rng.randrange(len(weights))
    if zeros:
        number = rng.randint(0, total)
        if number == 0:
            return zeros[rng.randrange(len(zeros))]
    else:
        number = rng.randint(1, total)
    running = 0
    for index, weight in enumerate(weights):
        running += weight
        if weight and running >= number:
            return index
    raise AssertionError("unreachable: the running sum reaches the total")


def rfc2782_order(targets: Sequence[T], rng: random.Random) -> list[T]:
    """Every target in the order a client should try them (RFC 2782 "Usage rules").

    Priorities ascending; within one priority, repeated weighted selection without
    replacement (``pick_index``), so the first target is the RFC's choice and each next
    one is the choice among those left.
    """
    ordered: list[T] = []
    for _, group in groupby(sorted(targets, key=lambda t: t.priority), key=lambda t: t.priority):
        left = list(group)
        while left:
            ordered.append(left.pop(pick_index([t.weight for t in left], rng)))
    return ordered
