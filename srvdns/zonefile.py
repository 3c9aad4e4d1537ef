"""RRsets as RFC 1035 master-file text, loadable by BIND, NSD and Knot; pure."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from dnslib import QTYPE, RR, DNSBuffer, DNSLabel  # type: ignore[import-untyped]

from srvdns.nameserver.zonecontent import RRset

_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
"""Octets written as they are in a label; any other is escaped (RFC 1035 §5.1)."""


def render(
    origin: str,
    rrsets: Sequence[RRset],
    *,
    default_ttl: int,
    comments: Iterable[str] = (),
) -> str:
    """The master file of the zone ``origin``: ``comments`` as ``;`` lines, ``$ORIGIN``,
    ``$TTL``, then one line per record with its explicit TTL, in the order given.

    Owner names are written relative to the origin (``@`` for the apex); names in RDATA
    are absolute.  Unknown types use the RFC 3597 generic form.
    """
    apex = _labels(origin)
    rows = [
        (_owner(rrset.owner, apex), str(rrset.ttl), _type(rrset.rdtype), rdata(rr))
        for rrset in rrsets
        for rr in rrset.records
    ]
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(3)]
    lines = [f"; {line}".rstrip() for line in comments]
    lines += [f"$ORIGIN {name_text(apex)}", f"$TTL {default_ttl}"]
    for owner, ttl, rdtype, data in rows:
        lines.append(
            f"{owner:<{widths[0]}} {ttl:>{widths[1]}} IN {rdtype:<{widths[2]}} {data}".rstrip()
        )
    return "\n".join(lines) + "\n"


def rdata(rr: RR) -> str:
    """The RDATA of a record in presentation format."""
    data = rr.rdata
    match rr.rtype:
        case QTYPE.A:
            return str(ipaddress.IPv4Address(bytes(data.data)))
        case QTYPE.AAAA:
            return str(ipaddress.IPv6Address(bytes(data.data)))
        case QTYPE.NS:
            return name_text(data.label.label)
        case QTYPE.SRV:
            return f"{data.priority} {data.weight} {data.port} {name_text(data.target.label)}"
        case QTYPE.TXT:
            return " ".join(character_string(bytes(text)) for text in data.data)
        case QTYPE.SOA:
            times = " ".join(str(t) for t in data.times)
            return f"{name_text(data.mname.label)} {name_text(data.rname.label)} {times}"
    buffer = DNSBuffer()
    data.pack(buffer)
    raw = bytes(buffer.data)
    return f"\\# {len(raw)} {raw.hex()}".rstrip()


def name_text(labels: Sequence[bytes]) -> str:
    """An absolute domain name, special and non-printable octets escaped."""
    return "".join(_label(label) + "." for label in labels) or "."


def character_string(text: bytes) -> str:
    """A quoted <character-string>: '"' and '\\' escaped, octets outside ASCII as \\DDD."""
    out = []
    for octet in text:
        if octet in (0x22, 0x5C):
            out.append("\\" + chr(octet))
        elif 0x20 <= octet < 0x7F:
            out.append(chr(octet))
        else:
            out.append(f"\\{octet:03d}")
    return '"' + "".join(out) + '"'


def _label(label: bytes) -> str:
    out = []
    for octet in label:
        if octet in _PLAIN:
            out.append(chr(octet))
        elif 0x20 < octet < 0x7F:
            out.append("\\" + chr(octet))
        else:
            out.append(f"\\{octet:03d}")
    return "".join(out)


def _labels(name: str) -> tuple[bytes, ...]:
    return tuple(label.encode() for label in name.rstrip(".").split(".") if label)


def _owner(owner: DNSLabel, apex: tuple[bytes, ...]) -> str:
    labels = tuple(owner.label)
    if labels == apex:
        return "@"
    cut = len(labels) - len(apex)
    if cut > 0 and tuple(label.lower() for label in labels[cut:]) == apex:
        return name_text(labels[:cut])[:-1]
    return name_text(labels)


def _type(rdtype: int) -> str:
    return str(QTYPE.get(rdtype, f"TYPE{rdtype}"))
