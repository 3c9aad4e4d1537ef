"""Record builders: one tiny pure function per record type, dnslib objects out."""

from __future__ import annotations

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


def a(owner: DNSLabel, ttl: int, ip: str) -> RR:
    """``owner TTL IN A ip``."""
    return RR(owner, QTYPE.A, ttl=ttl, rdata=A(tuple(_packed(socket.AF_INET, ip))))


def aaaa(owner: DNSLabel, ttl: int, ip: str) -> RR:
    """``owner TTL IN AAAA ip``.

    dnslib's own parser rejects the dotted form of IPv4-mapped addresses
    (``::ffff:10.0.0.1``), which is how Python 3.13 writes them; ``inet_pton`` does not.
    """
    return RR(owner, QTYPE.AAAA, ttl=ttl, rdata=AAAA(tuple(_packed(socket.AF_INET6, ip))))


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
    return RR(owner, QTYPE.SRV, ttl=ttl, rdata=SRV(priority, weight, port, target))


def txt(owner: DNSLabel, ttl: int, strings: Iterable[str]) -> RR:
    """``owner TTL IN TXT "s1" "s2" ...``; a string over 255 octets is split in pieces."""
    data: list[bytes] = []
    for text in strings:
        raw = text.encode()
        data.extend(raw[i : i + TXT_STRING_MAX] for i in range(0, len(raw), TXT_STRING_MAX))
    return RR(owner, QTYPE.TXT, ttl=ttl, rdata=TXT(data or [b""]))


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
