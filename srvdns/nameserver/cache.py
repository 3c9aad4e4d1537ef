"""The answer cache: packed replies keyed by the query's own octets after the ID.

A reply is a function of the query's octets after the message ID (flags, counts, the
question as sent - case included - and the OPT record), the transport, the snapshot and
``now``.  So the key is ``wire[2:]``, and a hit is one dict lookup, two identity checks
and ``wire[:2] + tail``: the query is not parsed at all, the ID is patched in, and the
flags (RD, CD), the question's case and the OPT echo are already right in ``tail``.
Keying on the case as sent (rather than the lower-cased name) is what makes that safe:
name compression in a reply depends on the question's case, so a reply packed for one
spelling is not octet for octet the reply to another.

A store holds the replies of one snapshot, ``Store.catalog``.  When the handler finds
another snapshot current, the store catches up first (``Store.sync``): it drops the
positive answers about the services the patches in between replaced (the snapshot's
``lineage`` names them) and every other answer (negative ones carry the SOA serial, so
they are the whole snapshot's); when the lineage does not reach back that far, or the
snapshot is a whole new one, it drops everything.  So a write to one service flushes
nothing else, and a hit after a write costs no check of its own.  An entry held is
valid while ``now`` is before ``until``: the first moment a heartbeat lease of the
service lapses or the whole seconds left on one (its TTL cap) tick down.  Services
without leases never expire by time.

Each entry holds a few replies, each packed with its own random record order; a hit
sends one of them at random (DESIGN.md: answers are shuffled so clients spread load).
The first reply is packed by the miss; the next few hits each put another order together
from its records' octets (``packing.Arrangement``: no packing at all), so that a cold cache
costs one packing per question and a write little more.  Only the newest answers still
collecting orders hold an arrangement (``orders.Arrangements``): one asked once holds
nothing but its reply.  The plain SRV, A and AAAA answers about a service are not packed
at all: they are written straight into octets (``serviceoctets``), and their further
orders are the same octets joined in another order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Final

from srvdns.catalog import Catalog, ServiceView
from srvdns.model import Instance
from srvdns.nameserver.stats import DnsStats

ORDERS: Final = 4
"""Replies packed per entry when an answer has more than one record to order."""

MAX_ENTRIES: Final = 100_000
MAX_BYTES: Final = 64 * 1024 * 1024
"""Entries and reply octets per transport; the cache starts over when either is reached
(a flood of distinct queries, e.g. random-case names, costs misses, never memory)."""

MAX_KEY: Final = 512
"""Queries longer than this (many EDNS options) are answered but not cached."""

FOREVER: Final = math.inf


class Store(dict[bytes, "Entry"]):
    """Entries by query octets after the ID, with the reply octets they hold counted,
    all valid for ``catalog``; the keys of positive answers about one service are also
    kept by service, and those of all other answers apart, for ``sync``.

    A hit counts in its entry (``Entry.hits``: cheaper than any shared counter); the
    store hands those counts to ``stats`` whenever entries leave it, the store itself
    included (a reload replaces the handler and its stores), so none is lost.
    """

    def __init__(self, stats: DnsStats | None = None) -> None:
        super().__init__()
        self.size = 0
        self.catalog = Catalog()
        """The snapshot whose replies the entries are (an empty one until the first sync)."""
        self._by_service: dict[str, set[bytes]] = {}
        self._whole: set[bytes] = set()
        self._stats = stats
        if stats is not None:
            stats.live[id(self)] = self

    def sync(self, catalog: Catalog) -> None:
        """Keep only the entries ``catalog`` gives the same replies as ``self.catalog``
        (see the module's docstring), and hold ``catalog``'s from now on."""
        changed = catalog.changed_since(self.catalog.serial)
        if changed is None:
            self._empty()
        else:
            for key in list(self._whole):
                self.discard(key)
            for name in changed:
                for key in list(self._by_service.get(name, ())):
                    self.discard(key)
        self.catalog = catalog

    def put(self, key: bytes, entry: Entry) -> None:
        """Add ``entry``, first emptying the store if it is full."""
        if len(self) >= MAX_ENTRIES or self.size >= MAX_BYTES:
            self._empty()
        self.discard(key)
        self[key] = entry
        self.size += entry.size
        if entry.service is None:
            self._whole.add(key)
        else:
            self._by_service.setdefault(entry.service, set()).add(key)

    def discard(self, key: bytes) -> None:
        """Drop the entry of ``key`` if there is one."""
        entry = self.pop(key, None)
        if entry is None:
            return
        self.size -= entry.size
        if entry.service is None:
            self._whole.discard(key)
        else:
            keys = self._by_service[entry.service]
            keys.discard(key)
            if not keys:
                del self._by_service[entry.service]
        if entry.hits:
            self._retire((entry,))

    def hits(self) -> Iterable[tuple[int, int]]:
        """(slot, hits) of the entries held."""
        return ((entry.slot, entry.hits) for entry in self.values() if entry.hits)

    def _empty(self) -> None:
        self._retire(self.values())
        self.clear()
        self._by_service.clear()
        self._whole.clear()
        self.size = 0

    def _retire(self, entries: Iterable[Entry]) -> None:
        """Add the hits of ``entries``, which are leaving, to ``stats``."""
        if self._stats is not None:
            retired = self._stats.hits
            for entry in entries:
                retired[entry.slot] += entry.hits
                entry.hits = 0

    def __del__(self) -> None:
        self._retire(self.values())


class Entry:
    """Cached replies without their two ID octets, and until when they hold."""

    __slots__ = ("again", "hits", "pending", "service", "slot", "tails", "until")

    def __init__(
        self, tails: tuple[bytes, ...], service: str | None, until: float, slot: int = 0
    ) -> None:
        self.tails = tails
        self.service = service
        """Set for positive answers about one service: they depend on it alone."""
        self.until = until
        self.again: Callable[[], bytes] | None = None
        """Set while hits should pack more orders: packs the reply in another order."""
        self.pending = 0
        """How many more orders to pack."""
        self.slot = slot
        """The ``stats.DnsStats`` slot of the replies' kind."""
        self.hits = 0
        """Replies sent from this entry, not yet added to the stats (see ``Store``)."""

    @property
    def size(self) -> int:
        """Octets of the replies held."""
        return sum(len(tail) for tail in self.tails)


def lease_horizon(instances: Iterable[Instance], now: float) -> float:
    """The first moment after ``now`` an answer about ``instances`` can change by time
    alone: a lease lapses, or the whole seconds left on one (``capped_ttl``) tick down.
    FOREVER when none of them has a running lease."""
    until = FOREVER
    for instance in instances:
        expires = instance.lease_expires
        if expires is None or expires <= now:
            continue
        # floor(expires - t) == k for t in (expires - k - 1, expires - k]; taking the
        # entry as stale from expires - k on is conservative by one instant.
        until = min(until, expires - math.floor(expires - now))
    return until


def service_horizon(view: ServiceView | None, now: float) -> float:
    """``lease_horizon`` of every instance of a service (panic mode counts them all)."""
    return FOREVER if view is None else lease_horizon(view.instances, now)
