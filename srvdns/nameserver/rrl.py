"""Response rate limiting (RRL) over UDP: a token bucket per client prefix.

A UDP query's source address can be forged, so an open authoritative server can be
made to send its (larger) answers to a victim.  RRL caps the responses one client
prefix (/24 for IPv4, /56 for IPv6, as BIND, NSD and Knot group them) gets per second.
Past the cap, every ``slip``-th response is sent truncated (TC=1, no records), which
costs a forged victim little and sends a real client to TCP, where a forged address
cannot complete a handshake; the others are dropped.

The listener calls ``RateLimiter.check`` once per datagram, only on listeners with RRL
on; it is a dict lookup and a few float operations.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterable

ALLOW = 0
"""Send the response."""
SLIP = 1
"""Send a truncated, empty response instead (the client may retry over TCP)."""
DROP = 2
"""Send nothing."""

MAX_PREFIXES = 100_000
"""Prefixes tracked at once; beyond it, idle ones (whose bucket is full again) are
forgotten, then the oldest, so a flood from forged addresses cannot grow memory."""

MAX_EXEMPT_CACHE = 65_536


def prefix_of(address: str) -> str:
    """The key of ``address``'s client prefix: its /24 (IPv4) or /56 (IPv6)."""
    if ":" not in address:
        return address.rpartition(".")[0]
    return socket.inet_pton(socket.AF_INET6, address.partition("%")[0])[:7].hex()


class RateLimiter:
    """Token buckets of ``rate`` responses per second, holding at most ``rate * window``,
    one per client prefix; ``exempt`` networks are never limited."""

    def __init__(
        self,
        rate: float,
        *,
        window: float = 1.0,
        slip: int = 2,
        exempt: Iterable[str] = (),
        max_prefixes: int = MAX_PREFIXES,
    ) -> None:
        if rate <= 0 or window <= 0 or slip < 0:
            raise ValueError("rate and window must be positive and slip at least 0")
        self.rate = rate
        self.burst = max(1.0, rate * window)
        self.slip = slip
        self.max_prefixes = max_prefixes
        self._exempt = tuple(ipaddress.ip_network(n, strict=False) for n in exempt)
        self._exempt_cache: dict[str, bool] = {}
        self._buckets: dict[str, list[float]] = {}
        """prefix -> [tokens, last refill time, limited responses so far]"""
        self.limited = 0
        """Responses slipped or dropped since start."""

    def check(self, address: str, now: float) -> int:
        """``ALLOW``, ``SLIP`` or ``DROP`` for one response to ``address`` at ``now``
        (monotonic seconds)."""
        if self._exempt and self._is_exempt(address):
            return ALLOW
        key = prefix_of(address)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_prefixes:
                self._evict(now)
            self._buckets[key] = [self.burst - 1.0, now, 0.0]
            return ALLOW
        tokens = bucket[0] + (now - bucket[1]) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return ALLOW
        bucket[0] = tokens
        bucket[2] += 1.0
        self.limited += 1
        if self.slip and bucket[2] % self.slip == 0:
            return SLIP
        return DROP

    def _is_exempt(self, address: str) -> bool:
        cached = self._exempt_cache.get(address)
        if cached is None:
            if len(self._exempt_cache) >= MAX_EXEMPT_CACHE:
                self._exempt_cache.clear()
            ip = ipaddress.ip_address(address.partition("%")[0])
            cached = any(ip in network for network in self._exempt)
            self._exempt_cache[address] = cached
        return cached

    def _evict(self, now: float) -> None:
        """Forget prefixes whose bucket has refilled (forgetting them changes nothing);
        if that frees too little, the oldest half."""
        full_after = self.burst / self.rate
        idle = [key for key, b in self._buckets.items() if now - b[1] >= full_after]
        for key in idle:
            del self._buckets[key]
        if len(self._buckets) >= self.max_prefixes:
            for key in list(self._buckets)[: len(self._buckets) // 2 + 1]:
                del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


_HEADER = struct.Struct("!HHHHHH")


def truncated_reply(query: bytes) -> bytes | None:
    """The slip response to ``query``: its ID, opcode, RD and question, with QR and TC set
    and no records (RFC 1035 4.1.1; the client retries over TCP).  None for a message
    that is not a query with one well-formed question; those get no reply at all."""
    if len(query) < _HEADER.size:
        return None
    ident, flags, qdcount, _, _, _ = _HEADER.unpack_from(query)
    if flags & 0x8000 or qdcount != 1:
        return None
    end = _question_end(query, _HEADER.size)
    if end is None:
        return None
    reply_flags = 0x8000 | (flags & 0x7900) | 0x0200  # QR, opcode, RD, then TC
    return _HEADER.pack(ident, reply_flags, 1, 0, 0, 0) + query[_HEADER.size : end]


def _question_end(wire: bytes, offset: int) -> int | None:
    """Where the one question starting at ``offset`` ends (name, type, class); None when
    it is malformed or compressed (a query's question never needs a pointer)."""
    total = 0
    while offset < len(wire):
        length = wire[offset]
        offset += 1
        if length == 0:
            end = offset + 4
            return end if end <= len(wire) else None
        if length > 63:
            return None
        total += length + 1
        if total > 255:
            return None
        offset += length
    return None
