"""DNS counters kept as plain Python ints and lists, read by ``metrics`` at scrape time.

The answer cache's hit path must stay about one increment, so nothing here is a
Prometheus object and nothing formats a label while serving.  Every reply kind - a
(transport, qtype, rcode) triple - gets a small integer *slot* the first time the
handler packs such a reply; a cache entry remembers the slot of its reply, and a hit
is ``hits[entry.slot] += 1``.  Labels are made from the slots only when scraped.

One ``DnsStats`` lives as long as the process: handlers and forwarders built by a
config reload get the same object, so counters never go back.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Protocol

from dnslib import QTYPE, RCODE  # type: ignore[import-untyped]

from srvdns.nameserver.edns import BADVERS

QTYPES: frozenset[int] = frozenset(
    getattr(QTYPE, name)
    for name in (
        "A",
        "AAAA",
        "ANY",
        "AXFR",
        "CAA",
        "CNAME",
        "DNSKEY",
        "DS",
        "HTTPS",
        "IXFR",
        "MX",
        "NAPTR",
        "NS",
        "PTR",
        "SOA",
        "SRV",
        "SVCB",
        "TXT",
    )
)
"""Query types with a label of their own; any other counts as ``OTHER``, so that a client
asking for random types cannot grow the number of series."""

OTHER = -1
"""The qtype slot key of every type outside ``QTYPES`` (and of a question not read)."""

LATENCY_SHIFT = 13
"""Latency bucket ``i`` holds durations below ``2 ** (LATENCY_SHIFT + i)`` ns: bucket 0
is below 8.192 us, bucket 14 below 134 ms.  ``(ns >> LATENCY_SHIFT).bit_length()`` is
the bucket of ``ns``: no search, no float, no clamp."""

LATENCY_BUCKETS = 15
"""Buckets exported with a finite upper bound; the rest count towards +Inf only."""


class HitSource(Protocol):
    """An answer cache store (``cache.Store``): it counts hits in its entries."""

    def hits(self) -> Iterable[tuple[int, int]]:
        """(slot, hits) not yet added to ``DnsStats.hits``."""
        ...


def qtype_name(qtype: int, *, fold: bool = True) -> str:
    """The mnemonic of ``qtype``; with ``fold``, ``OTHER`` for a type outside ``QTYPES``
    (the metric label), else ``TYPE<n>`` for one without a mnemonic (RFC 3597)."""
    if qtype == OTHER or (fold and qtype not in QTYPES):
        return "OTHER"
    return str(QTYPE.get(qtype, f"TYPE{qtype}"))


def rcode_name(rcode: int) -> str:
    """The ``rcode`` label: the mnemonic (BADVERS for the extended rcode 16)."""
    if rcode == BADVERS:
        return "BADVERS"
    return str(RCODE.get(rcode, f"RCODE{rcode}"))


def latency_bound(bucket: int) -> float:
    """Upper bound in seconds of latency bucket ``bucket``."""
    return float(2 ** (LATENCY_SHIFT + bucket)) / 1e9


class DnsStats:
    """Everything the DNS side counts; all of it is updated on the event loop thread."""

    def __init__(self) -> None:
        self.kinds: list[tuple[bool, int, int]] = []
        """Slot -> (tcp, qtype key, rcode)."""
        self._slots: dict[tuple[bool, int, int], int] = {}
        self.hits: list[int] = []
        """Replies sent from the answer cache, per slot, of entries that left their
        store; the entries still held count their own (``live``)."""
        self.live: weakref.WeakValueDictionary[int, HitSource] = weakref.WeakValueDictionary()
        """The answer cache stores in use (by a number of their own: a store is a dict,
        which cannot be a set member)."""
        self.misses: list[int] = []
        """Replies packed for the query (not from the answer cache), per slot."""
        self.moved: dict[tuple[bool, int, int], int] = {}
        """Corrections by reply kind: a forwarded query was counted REFUSED by the
        handler and is moved to the rcode of the reply it finally got."""
        self.ignored = [0, 0]
        """Messages given no reply (responses, runts), by transport (0 UDP, 1 TCP)."""
        self.latency = [0] * 64
        """Answer durations per bucket (see ``LATENCY_SHIFT``); 64 covers any int64 ns."""
        self.latency_ns = 0
        """Sum of the durations counted in ``latency``."""
        self.forwarded = [0, 0]
        """Queries handed to the forwarder, by transport."""
        self.forward_cache_hits = 0
        """Forwarded queries answered from the forwarder's own cache."""
        self.forward_failures = 0
        """Forwarded queries that no upstream answered (the client got SERVFAIL)."""
        self.forward_dropped = 0
        """UDP queries to forward dropped because too many were in flight."""
        self.upstream_failures: dict[tuple[str, str], int] = {}
        """Failed attempts by (upstream "host:port", reason)."""
        self.udp_send_dropped = 0
        """UDP replies the socket would not take (EAGAIN)."""

    def slot(self, tcp: bool, qtype: int, rcode: int) -> int:
        """The slot of a reply kind, made on first use (``qtype`` is folded to OTHER)."""
        key = (tcp, qtype if qtype in QTYPES else OTHER, rcode)
        found = self._slots.get(key)
        if found is None:
            found = self._slots[key] = len(self.kinds)
            self.kinds.append(key)
            self.hits.append(0)
            self.misses.append(0)
        return found

    def packed(self, tcp: bool, qtype: int, rcode: int) -> int:
        """Count one reply packed for its query (a cache miss); returns its slot."""
        slot = self.slot(tcp, qtype, rcode)
        self.misses[slot] += 1
        return slot

    def move(self, tcp: bool, qtype: int, old_rcode: int, new_rcode: int | None) -> None:
        """A query already counted with ``old_rcode`` got a reply with ``new_rcode``
        instead (None: no reply at all, so it is not counted any more)."""
        if old_rcode == new_rcode:
            return
        folded = qtype if qtype in QTYPES else OTHER
        changes = [(old_rcode, -1)] if new_rcode is None else [(old_rcode, -1), (new_rcode, 1)]
        for rcode, delta in changes:
            key = (tcp, folded, rcode)
            self.moved[key] = self.moved.get(key, 0) + delta

    def observe_ns(self, ns: int) -> None:
        """Count one answer duration in nanoseconds (the listeners inline this)."""
        self.latency[(ns >> LATENCY_SHIFT).bit_length()] += 1
        self.latency_ns += ns

    def upstream_failed(self, upstream: str, reason: str) -> None:
        """Count one failed attempt at an upstream."""
        key = (upstream, reason)
        self.upstream_failures[key] = self.upstream_failures.get(key, 0) + 1

    def all_hits(self) -> list[int]:
        """Cache hits per slot: those of entries still held plus those that left."""
        hits = [0] * len(self.kinds)
        for store in list(self.live.values()):
            for slot, count in store.hits():
                hits[slot] += count
        for slot, count in enumerate(self.hits):
            hits[slot] += count
        return hits

    def queries(self, hits: list[int] | None = None) -> dict[tuple[bool, int, int], int]:
        """Replies sent by kind, hits, misses and corrections together (``hits``: what
        ``all_hits`` returned, when the caller has it already)."""
        totals: dict[tuple[bool, int, int], int] = {}
        hits = self.all_hits() if hits is None else hits
        for slot, key in enumerate(self.kinds):
            totals[key] = hits[slot] + self.misses[slot]
        for key, delta in self.moved.items():
            totals[key] = totals.get(key, 0) + delta
        return totals

    def cache_totals(self, *, tcp: bool, hits: list[int] | None = None) -> tuple[int, int]:
        """(hits, misses) of one transport's answer cache (``hits``: see ``queries``)."""
        all_hits = self.all_hits() if hits is None else hits
        hits_sum = misses = 0
        for slot, key in enumerate(self.kinds):
            if key[0] == tcp:
                hits_sum += all_hits[slot]
                misses += self.misses[slot]
        return hits_sum, misses
