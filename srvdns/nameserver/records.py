"""Record builders: one tiny pure function per record type, dnslib objects out.

The records of service answers (A, AAAA, SRV, TXT) are built on every answer-cache
miss, and dnslib checks each field of each record through a property as it is set and
again reads it through one.  So these are built as ``PlainRR`` and the ``Plain*`` rdata
classes below: subclasses of dnslib's own whose ``__slots__`` shadow those properties.
They are still ``RR``/``A``/``AAAA``/``SRV``/``TXT`` instances (every dnslib path - packing,
printing, comparing, transfers - works on them), but their values are checked once,
here, with the same errors dnslib would raise.  The RDATA of an address or of a set of
metadata strings is built once and shared by every record that carries it (see
``a_data``): records here, like names, are never changed once built.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Iterable

from dnslib import (  # type: ignore[import-untyped]
    AAAA,
    NS,
    QTYPE,
    RR,
    SOA,
    SRV,
    TXT,
    A,
    DNSLabel,
)

_IN = 1
"""CLASS IN."""
_A, _AAAA, _SRV, _TXT = QTYPE.A, QTYPE.AAAA, QTYPE.SRV, QTYPE.TXT
_U16_MAX = 0xFFFF
_U32_MAX = 0xFFFFFFFF

TXT_STRING_MAX = 255
"""RFC 1035 §3.3: a <character-string> holds at most 255 octets."""

NAME_MAX = 255
"""RFC 1035 §3.1: a domain name is at most 255 octets on the wire."""


def name(text: str) -> DNSLabel:
    """A domain name from dotted text ("web.service.local"); no IDNA, no escapes."""
    text = text.rstrip(".")
    return DNSLabel(tuple(label.encode() for label in text.split(".")) if text else ())


def fits(name: DNSLabel) -> bool:
    """Whether a name is short enough to exist (RFC 1035 §3.1: 255 octets on the wire)."""
    return sum(len(label) + 1 for label in name.label) + 1 <= NAME_MAX


def is_ipv6(ip: str) -> bool:
    """Whether a canonical address literal is IPv6 (the registry stores canonical text)."""
    return ":" in ip


def _out_of_range(attr: str, value: object, maximum: int) -> ValueError:
    """The error of dnslib's own check (``ranges.range_property``)."""
    return ValueError(f"Attribute '{attr}' must be between 0-{maximum} [{value}]")


def _same(self: object, other: object, base: type, attrs: tuple[str, ...]) -> bool:
    """dnslib's equality (the fields of ``attrs``), with any ``base`` instance - a
    dnslib-built one included - as a peer, not only objects of the very same type."""
    return isinstance(other, base) and all(
        getattr(self, attr) == getattr(other, attr) for attr in attrs
    )


class PlainRR(RR):  # type: ignore[misc]
    """An ``RR`` whose fields are plain slots: no check on each set and get."""

    __slots__ = ("rclass", "rdata", "rname", "rtype", "ttl")

    def __init__(self, rname: DNSLabel, rtype: int, ttl: int, rdata: object) -> None:
        self.rname = rname
        self.rtype = rtype
        self.rclass = _IN
        self.ttl = ttl
        self.rdata = rdata

    def __eq__(self, other: object) -> bool:
        return _same(self, other, RR, ("rname", "rclass", "rtype", "rdata"))

    __hash__ = None  # type: ignore[assignment]


class PlainA(A):  # type: ignore[misc]
    """A's RDATA; ``wire`` holds the four octets as sent."""

    __slots__ = ("data", "wire")

    def __init__(self, wire: bytes) -> None:
        self.wire = wire
        self.data = tuple(wire)

    def __eq__(self, other: object) -> bool:
        return _same(self, other, A, ("data",))

    __hash__ = None  # type: ignore[assignment]


class PlainAAAA(AAAA):  # type: ignore[misc]
    """AAAA's RDATA; ``wire`` holds the sixteen octets as sent."""

    __slots__ = ("data", "wire")

    def __init__(self, wire: bytes) -> None:
        self.wire = wire
        self.data = tuple(wire)

    def __eq__(self, other: object) -> bool:
        return _same(self, other, AAAA, ("data",))

    __hash__ = None  # type: ignore[assignment]


class PlainSRV(SRV):  # type: ignore[misc]
    """SRV's RDATA (RFC 2782) with plain fields."""

    __slots__ = ("port", "priority", "target", "weight")

    def __init__(self, priority: int, weight: int, port: int, target: DNSLabel) -> None:
        self.priority = priority
        self.weight = weight
        self.port = port
        self.target = target

    def __eq__(self, other: object) -> bool:
        return _same(self, other, SRV, ("priority", "weight", "port", "target"))

    __hash__ = None  # type: ignore[assignment]


class PlainTXT(TXT):  # type: ignore[misc]
    """TXT's RDATA from strings already cut to 255 octets (``_pieces``)."""

    __slots__ = ("data",)

    def __init__(self, data: list[bytes]) -> None:
        self.data = data

    def __eq__(self, other: object) -> bool:
        return _same(self, other, TXT, ("data",))

    __hash__ = None  # type: ignore[assignment]


def _check_ttl(ttl: int) -> None:
    """dnslib's check of a TTL: an int of 0 to 2**32 - 1."""
    if not (isinstance(ttl, int) and 0 <= ttl <= _U32_MAX):
        raise _out_of_range("ttl", ttl, _U32_MAX)


def a(owner: DNSLabel, ttl: int, ip: str) -> RR:
    """``owner TTL IN A ip``."""
    _check_ttl(ttl)
    return PlainRR(owner, _A, ttl, a_data(ip))


def aaaa(owner: DNSLabel, ttl: int, ip: str) -> RR:
    """``owner TTL IN AAAA ip``.

    dnslib's own parser rejects the dotted form of IPv4-mapped addresses
    (``::ffff:10.0.0.1``), which is how Python 3.13 writes them; ``inet_pton`` does not.
    """
    _check_ttl(ttl)
    return PlainRR(owner, _AAAA, ttl, aaaa_data(ip))


def rrs(owner: DNSLabel, rtype: int, ttl: int, rdatas: Iterable[object]) -> list[RR]:
    """``owner TTL IN rtype rdata`` for each of ``rdatas``, built by ``a_data``,
    ``aaaa_data`` or ``srv_data``: the records of one RRset, the TTL checked once rather
    than per record (an answer-cache miss builds a service's RRset on every write)."""
    if not (isinstance(ttl, int) and 0 <= ttl <= _U32_MAX):  # ``_check_ttl``, inline
        raise _out_of_range("ttl", ttl, _U32_MAX)
    return [PlainRR(owner, rtype, ttl, rdata) for rdata in rdatas]


@functools.lru_cache(maxsize=4096)
def a_data(ip: str) -> PlainA:
    """An A record's RDATA, parsed once per address: the same few addresses are in
    every answer about a service, and RDATA is never changed once built."""
    return PlainA(_packed(socket.AF_INET, ip))


@functools.lru_cache(maxsize=4096)
def aaaa_data(ip: str) -> PlainAAAA:
    """An AAAA record's RDATA, parsed once per address (see ``a_data``)."""
    return PlainAAAA(_packed(socket.AF_INET6, ip))


def _packed(family: int, ip: str) -> bytes:
    """The address's octets.  ``inet_pton`` is strict (no leading zeros, no short forms)
    and a few times faster than ``ipaddress``, which answers on a cache miss; what it
    refuses goes to ``ipaddress`` for the same ValueError as ever."""
    try:
        return socket.inet_pton(family, ip)
    except OSError:
        cls = ipaddress.IPv4Address if family == socket.AF_INET else ipaddress.IPv6Address
        return cls(ip).packed


def address(owner: DNSLabel, ttl: int, ip: str) -> RR:
    """An A or AAAA record, whichever fits the address."""
    return aaaa(owner, ttl, ip) if is_ipv6(ip) else a(owner, ttl, ip)


def srv(owner: DNSLabel, ttl: int, priority: int, weight: int, port: int, target: DNSLabel) -> RR:
    """``owner TTL IN SRV priority weight port target`` (RFC 2782)."""
    _check_ttl(ttl)
    return PlainRR(owner, _SRV, ttl, srv_data(priority, weight, port, target))


def srv_data(priority: int, weight: int, port: int, target: DNSLabel) -> PlainSRV:
    """An SRV record's RDATA (see ``srv``), to share between records (see ``rrs``)."""
    for attr, value in (("priority", priority), ("weight", weight), ("port", port)):
        if not (isinstance(value, int) and 0 <= value <= _U16_MAX):
            raise _out_of_range(attr, value, _U16_MAX)
    if not isinstance(target, DNSLabel):
        target = DNSLabel(target)
    return PlainSRV(priority, weight, port, target)


def txt(owner: DNSLabel, ttl: int, strings: Iterable[str]) -> RR:
    """``owner TTL IN TXT "s1" "s2" ...``; a string over 255 octets is split in pieces."""
    if not (isinstance(ttl, int) and 0 <= ttl <= _U32_MAX):
        raise _out_of_range("ttl", ttl, _U32_MAX)
    if isinstance(strings, tuple):
        return PlainRR(owner, _TXT, ttl, _txt_data(strings))
    return PlainRR(owner, _TXT, ttl, PlainTXT(_pieces(strings)))


@functools.lru_cache(maxsize=4096)
def _txt_data(strings: tuple[str, ...]) -> PlainTXT:
    """A TXT record's RDATA, worked out once per set of strings (see ``a_data``)."""
    return PlainTXT(_pieces(strings))


def _pieces(strings: Iterable[str]) -> list[bytes]:
    """The <character-string>s of ``strings``, each cut in pieces of 255 octets."""
    data: list[bytes] = []
    for text in strings:
        raw = text.encode()
        data.extend(raw[i : i + TXT_STRING_MAX] for i in range(0, len(raw), TXT_STRING_MAX))
    return data or [b""]


def ns(owner: DNSLabel, ttl: int, host: DNSLabel) -> RR:
    """``owner TTL IN NS host``."""
    return RR(owner, QTYPE.NS, ttl=ttl, rdata=NS(host))


def soa(
    owner: DNSLabel,
    ttl: int,
    mname: DNSLabel,
    rname: DNSLabel,
    times: tuple[int, int, int, int, int],
) -> RR:
    """``owner TTL IN SOA mname rname serial refresh retry expire minimum``."""
    return RR(owner, QTYPE.SOA, ttl=ttl, rdata=SOA(mname, rname, times))
