"""Forwarding of queries outside every zone to upstream resolvers, for allowed clients.

The handler stays synchronous: it answers REFUSED for a name outside every zone, and the
listeners, when a ``Forwarder`` is configured and the client is allowed, ask
``Forwarder.wants`` whether that query is one to forward, then await
``Forwarder.resolve`` and send its reply.  Every other reply to an allowed client gets
RA set (``with_ra``): recursion is available to that client.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import secrets
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dnslib import QTYPE, RCODE, DNSRecord  # type: ignore[import-untyped]

from srvdns.config import DEFAULT_ALLOW_FROM
from srvdns.nameserver import names
from srvdns.nameserver.stats import DnsStats
from srvdns.nameserver.wire import FormError, parse_query

log = logging.getLogger(__name__)

_RA = 0x80  # in the flags' second octet
_TC = 0x02  # in the flags' first octet
_AA = 0x04  # in the flags' first octet
_QR = 0x80  # in the flags' first octet
_CLASS_IN = 1
_ZONE_TRANSFERS = frozenset({QTYPE.AXFR, QTYPE.IXFR})
_ALLOWED_MEMO = 4096
"""Client addresses whose allow_from verdict is remembered."""


class UpstreamError(Exception):
    """An upstream gave no usable reply (timeout, SERVFAIL, garbage)."""


def with_ra(reply: bytes) -> bytes:
    """``reply`` with RA set."""
    if len(reply) < 4 or reply[3] & _RA:
        return reply
    return reply[:3] + bytes((reply[3] | _RA,)) + reply[4:]


def is_refused(reply: bytes) -> bool:
    """True for a REFUSED reply."""
    return len(reply) >= 4 and reply[3] & 0x0F == RCODE.REFUSED


@dataclass
class _Cached:
    reply: bytes
    stored: float
    expires: float


class Forwarder:
    """Resolves queries through ``upstreams`` ((host, port) pairs).

    ``strategy`` "sequential" tries them in order, "random" in a random order; the next is
    tried after ``timeout`` seconds without a reply, or on SERVFAIL.  Over UDP, a
    truncated upstream reply is asked again over TCP.  Replies are cached (at most
    ``cache_size``) for their smallest TTL, negative ones for min(SOA TTL, SOA minimum).
    Cache hits, failed attempts per upstream and queries no upstream answered are
    counted in ``stats``.
    """

    def __init__(
        self,
        upstreams: Sequence[tuple[str, int]],
        zones: Sequence[str],
        *,
        timeout: float = 2.0,
        strategy: str = "sequential",
        cache_size: int = 10_000,
        allow_from: Sequence[str] = DEFAULT_ALLOW_FROM,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        edns_udp_size: int = 1232,
        stats: DnsStats | None = None,
    ) -> None:
        if not upstreams:
            raise ValueError("forwarding needs at least one upstream")
        self.upstreams = list(upstreams)
        self._origins = [names.lower_labels(_labels(zone)) for zone in zones]
        self.timeout = timeout
        self.strategy = strategy
        self.cache_size = cache_size
        self._networks = [ipaddress.ip_network(cidr, strict=False) for cidr in allow_from]
        self._allowed: dict[str, bool] = {}
        self._cache: OrderedDict[bytes, _Cached] = OrderedDict()
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._edns_udp_size = edns_udp_size
        self.stats = stats if stats is not None else DnsStats()

    def allowed(self, host: str) -> bool:
        """Whether a client at ``host`` may use recursion (``allow_from``)."""
        verdict = self._allowed.get(host)
        if verdict is None:
            try:
                address = ipaddress.ip_address(host.partition("%")[0])
            except ValueError:
                verdict = False
            else:
                if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                    address = address.ipv4_mapped
                verdict = any(address in network for network in self._networks)
            if len(self._allowed) >= _ALLOWED_MEMO:
                self._allowed.clear()
            self._allowed[host] = verdict
        return verdict

    def wants(self, wire: bytes) -> bool:
        """Whether ``wire`` is a query to forward: opcode QUERY, class IN, not a zone
        transfer, a name outside every zone."""
        if len(wire) < 12:
            return False
        try:
            query = parse_query(wire)
        except FormError:
            return False
        if query.flags & 0x7800:
            return False
        question = query.question
        if question.qclass != _CLASS_IN or question.qtype in _ZONE_TRANSFERS:
            return False
        qname = names.lower_labels(question.labels)
        return all(names.relative_to(qname, origin) is None for origin in self._origins)

    async def resolve(self, wire: bytes, *, tcp: bool) -> bytes:
        """The reply to forward to the client for query ``wire``: its ID, RA set, AA clear,
        sized for UDP (TC when it does not fit) unless ``tcp``; SERVFAIL when no upstream
        answers."""
        msg_id = wire[:2]
        key = wire[2:]
        now = self._clock()
        entry = self._cache.get(key)
        reply: bytes | None = None
        if entry is not None:
            if now < entry.expires:
                self.stats.forward_cache_hits += 1
                self._cache.move_to_end(key)
                reply = _age(entry.reply, int(now - entry.stored))
            else:
                del self._cache[key]
        if reply is None:
            try:
                reply = await self._ask_upstreams(wire)
            except UpstreamError as exc:
                self.stats.forward_failures += 1
                log.warning("forwarding failed: %s", exc)
                return _servfail(wire)
            self._store(key, reply, now)
        # the client's ID; AA clear: srvdns is no authority for the name (RFC 1035 §4.1.1)
        reply = with_ra(msg_id + bytes((reply[2] & ~_AA & 0xFF,)) + reply[3:])
        if not tcp and len(reply) > _udp_limit(wire, self._edns_udp_size):
            return _truncated(wire, reply)
        return reply

    def _store(self, key: bytes, reply: bytes, now: float) -> None:
        if self.cache_size <= 0:
            return
        ttl = cache_ttl(reply)
        if ttl is None or ttl <= 0:
            return
        self._cache[key] = _Cached(reply, now, now + ttl)
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    async def _ask_upstreams(self, wire: bytes) -> bytes:
        order = list(self.upstreams)
        if self.strategy == "random":
            self._rng.shuffle(order)
        failures: list[str] = []
        for host, port in order:
            upstream_id = secrets.randbits(16)
            query = struct.pack("!H", upstream_id) + wire[2:]
            try:
                reply = await asyncio.wait_for(self._exchange(host, port, query), self.timeout)
            except (TimeoutError, OSError, UpstreamError) as exc:
                failures.append(f"{host}:{port}: {type(exc).__name__} {exc}".rstrip())
                self.stats.upstream_failed(_hostport(host, port), _reason(exc))
                continue
            if reply[3] & 0x0F == RCODE.SERVFAIL:
                failures.append(f"{host}:{port}: SERVFAIL")
                self.stats.upstream_failed(_hostport(host, port), "servfail")
                continue
            return reply
        raise UpstreamError("no upstream answered: " + "; ".join(failures))

    async def _exchange(self, host: str, port: int, query: bytes) -> bytes:
        reply = await _udp_exchange(host, port, query)
        _check(query, reply)
        if reply[2] & _TC:
            reply = await _tcp_exchange(host, port, query)
            _check(query, reply)
        return reply


def cache_ttl(reply: bytes) -> int | None:
    """How long ``reply`` may be cached: the smallest TTL of its answer and authority
    records; for a negative reply, min(SOA TTL, SOA minimum) (RFC 2308 §5); None when it
    must not be cached (errors other than NXDOMAIN, negative replies without SOA)."""
    try:
        record = DNSRecord.parse(reply)
    except Exception:
        return None
    rcode = record.header.rcode
    if rcode not in (RCODE.NOERROR, RCODE.NXDOMAIN) or record.header.tc:
        return None
    if record.rr and rcode == RCODE.NOERROR:
        return int(min(rr.ttl for rr in (*record.rr, *record.auth)))
    for rr in record.auth:
        if rr.rtype == QTYPE.SOA:
            return int(min(rr.ttl, rr.rdata.times[-1]))
    return None


def _age(reply: bytes, elapsed: int) -> bytes:
    """``reply`` with every TTL (OPT aside) lowered by ``elapsed`` seconds."""
    if elapsed <= 0:
        return reply
    record = DNSRecord.parse(reply)
    for rr in (*record.rr, *record.auth, *record.ar):
        if rr.rtype != QTYPE.OPT:
            rr.ttl = max(0, rr.ttl - elapsed)
    packed: bytes = record.pack()
    return packed


def _udp_limit(wire: bytes, ceiling: int) -> int:
    try:
        edns = parse_query(wire).edns
    except FormError:
        return 512
    if edns is None:
        return 512
    return max(512, min(edns.payload, ceiling))


def _truncated(wire: bytes, reply: bytes) -> bytes:
    """TC=1 with the header and question only (and the client's OPT left out)."""
    question = parse_query(wire).question.wire
    flags = (reply[2] | _TC, reply[3])
    return wire[:2] + bytes(flags) + struct.pack("!4H", 1, 0, 0, 0) + question


def _servfail(wire: bytes) -> bytes:
    try:
        question = parse_query(wire).question.wire
        count = 1
    except FormError:
        question, count = b"", 0
    flags1 = _QR | (wire[2] & 0x79)  # opcode, RD
    flags2 = _RA | RCODE.SERVFAIL | (wire[3] & 0x10)  # CD
    return wire[:2] + bytes((flags1, flags2)) + struct.pack("!4H", count, 0, 0, 0) + question


def _check(query: bytes, reply: bytes) -> None:
    """The reply must answer our query: its ID, QR set, the same question."""
    if len(reply) < 12 or reply[:2] != query[:2] or not reply[2] & _QR:
        raise UpstreamError("reply does not match the query")
    try:
        asked = parse_query(query).question.wire.lower()
    except FormError:
        return
    if reply[12 : 12 + len(asked)].lower() != asked:
        raise UpstreamError("reply is for another question")


class _UdpClient(asyncio.DatagramProtocol):
    def __init__(self, query_id: bytes) -> None:
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._id = query_id

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if data[:2] == self._id and not self.reply.done():
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)


async def _udp_exchange(host: str, port: int, query: bytes) -> bytes:
    """One query over a connected UDP socket of its own (a random source port)."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _UdpClient(query[:2]), remote_addr=(host, port)
    )
    try:
        transport.sendto(query)
        return await protocol.reply
    finally:
        transport.close()


async def _tcp_exchange(host: str, port: int, query: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(struct.pack("!H", len(query)) + query)
        await writer.drain()
        (length,) = struct.unpack("!H", await reader.readexactly(2))
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise UpstreamError("TCP connection closed mid-reply") from exc
    finally:
        writer.close()


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _reason(exc: Exception) -> str:
    """The ``reason`` label of a failed upstream attempt (a small fixed set)."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, UpstreamError):
        return "bad_reply"
    return "network"


def _labels(text: str) -> tuple[bytes, ...]:
    return tuple(label.encode() for label in text.rstrip(".").split(".") if label)
