"""The IXFR journal: a zone's recent versions as differences; pure, no I/O.

RFC 1995 §4: an IXFR answer is the differences between the client's version and the
current one.  The journal keeps the current contents and, for each recent change, what
it deleted and added; a client whose serial it still knows gets those differences
condensed into one (RFC 1995 §5 allows condensing), any other one a full transfer.
Records are any hashable values (the transfer code uses owner, TTL and RDATA), the SOA
excluded: each version's SOA is made from its serial.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

R = TypeVar("R", bound=Hashable)

MAX_DELTAS = 200
"""Changes kept by default; a client further behind gets a full transfer."""

MAX_RECORDS = 200_000
"""Deleted plus added records kept by default over all changes (memory bound)."""


def serial_gt(a: int, b: int) -> bool:
    """RFC 1982 §3.2: ``a`` is greater than ``b`` in 32-bit serial number arithmetic."""
    a, b = a % 2**32, b % 2**32
    return a != b and ((a < b and b - a > 2**31) or (a > b and a - b < 2**31))


@dataclass(frozen=True, slots=True)
class Delta(Generic[R]):
    """From version ``old`` to ``new``: records to delete, then records to add."""

    old: int
    new: int
    deleted: frozenset[R]
    added: frozenset[R]

    @property
    def size(self) -> int:
        """Records this change holds."""
        return len(self.deleted) + len(self.added)


class Recorded(enum.Enum):
    """What ``Journal.record`` did with a version."""

    NEW = "new"
    """A new current version; a change was journalled (or the journal started)."""
    SAME = "same"
    """The current version again: nothing to do."""
    CONFLICT = "conflict"
    """The current serial with other contents: refused, the serial must move first."""
    RESTARTED = "restarted"
    """A serial that does not follow the current one: the history was dropped."""


class Journal(Generic[R]):
    """A zone's current version and the changes that led to it, bounded in count and size.

    Versions must come with increasing serials (RFC 1982); the same serial with other
    contents is refused (``Recorded.CONFLICT``), because a secondary holding that serial
    would never learn of the difference.
    """

    def __init__(self, *, max_deltas: int = MAX_DELTAS, max_records: int = MAX_RECORDS) -> None:
        self.max_deltas = max_deltas
        self.max_records = max_records
        self.serial: int | None = None
        self.records: frozenset[R] = frozenset()
        self._deltas: deque[Delta[R]] = deque()
        self._size = 0

    @property
    def deltas(self) -> tuple[Delta[R], ...]:
        """The journalled changes, oldest first."""
        return tuple(self._deltas)

    def record(self, serial: int, records: Iterable[R]) -> Recorded:
        """Make (``serial``, ``records``) the current version, journalling the change."""
        contents = frozenset(records)
        serial %= 2**32
        if self.serial is None:
            self.serial, self.records = serial, contents
            return Recorded.NEW
        if serial == self.serial:
            return Recorded.SAME if contents == self.records else Recorded.CONFLICT
        if not serial_gt(serial, self.serial):
            self._reset(serial, contents)
            return Recorded.RESTARTED
        delta = Delta(self.serial, serial, self.records - contents, contents - self.records)
        self.serial, self.records = serial, contents
        self._deltas.append(delta)
        self._size += delta.size
        while self._deltas and (
            len(self._deltas) > self.max_deltas or self._size > self.max_records
        ):
            self._size -= self._deltas.popleft().size
        return Recorded.NEW

    def changes_since(self, serial: int) -> Delta[R] | None:
        """The condensed change from the client's ``serial`` to the current version.

        An empty delta (``old == new``) when the client is current or ahead (RFC 1995
        §2: it gets only the SOA); None when the journal does not reach back to
        ``serial`` and the client needs a full transfer.
        """
        if self.serial is None:
            return None
        serial %= 2**32
        if serial == self.serial or serial_gt(serial, self.serial):
            return Delta(self.serial, self.serial, frozenset(), frozenset())
        start = next((i for i, d in enumerate(self._deltas) if d.old == serial), None)
        if start is None:
            return None
        deleted: set[R] = set()
        added: set[R] = set()
        for delta in list(self._deltas)[start:]:
            for record in delta.deleted:
                if record in added:
                    added.remove(record)
                else:
                    deleted.add(record)
            for record in delta.added:
                if record in deleted:
                    deleted.remove(record)
                else:
                    added.add(record)
        return Delta(serial, self.serial, frozenset(deleted), frozenset(added))

    def _reset(self, serial: int, contents: frozenset[R]) -> None:
        self.serial, self.records = serial, contents
        self._deltas.clear()
        self._size = 0
