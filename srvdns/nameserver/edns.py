"""EDNS(0) (RFC 6891): read the query's OPT record, write the reply's, size the reply."""

from __future__ import annotations

from dataclasses import dataclass

from dnslib import EDNS0, QTYPE, RR, DNSRecord  # type: ignore[import-untyped]

CLASSIC_UDP_SIZE = 512
"""RFC 1035 §4.2.1: the UDP payload every client accepts, and the floor of EDNS sizes."""

TCP_SIZE = 65535
"""RFC 1035 §4.2.2: a TCP message is framed by a two-octet length."""

BADVERS = 16
"""RFC 6891 §6.1.3: the extended RCODE for an unsupported EDNS version."""

_DO = 1 << 15


class MultipleOptError(ValueError):
    """RFC 6891 §6.1.1: a query with more than one OPT RR gets FORMERR."""


@dataclass(frozen=True, slots=True)
class Edns:
    """What the client's OPT record says."""

    version: int
    payload: int
    """The requestor's UDP payload size."""
    dnssec_ok: bool


def get_edns(query: DNSRecord) -> Edns | None:
    """The query's EDNS parameters, or None without an OPT record.

    Raises MultipleOptError: "If a query message with more than one OPT RR is received,
    a FORMERR (RCODE=1) MUST be returned" (RFC 6891 §6.1.1).
    """
    opts = [rr for rr in query.ar if rr.rtype == QTYPE.OPT]
    if not opts:
        return None
    if len(opts) > 1:
        raise MultipleOptError("more than one OPT record")
    opt = opts[0]
    ttl = int(opt.ttl)
    return Edns(version=(ttl >> 16) & 0xFF, payload=int(opt.rclass), dnssec_ok=bool(ttl & _DO))


def opt(udp_size: int, edns: Edns, rcode: int = 0) -> RR:
    """The reply's OPT record: version 0, our UDP size, the upper 8 bits of ``rcode``.

    RFC 3225 §3: the DO bit is copied from the query to the response.
    """
    return EDNS0(
        udp_len=udp_size,
        ext_rcode=rcode >> 4,
        version=0,
        flags="do" if edns.dnssec_ok else "",
    )


def udp_limit(edns: Edns | None, ceiling: int) -> int:
    """The largest UDP reply to send.

    RFC 6891 §6.2.5: a payload size below 512 is treated as 512; without EDNS the
    limit is 512 (RFC 1035 §4.2.1).  Never more than our own ``ceiling``.
    """
    if edns is None:
        return CLASSIC_UDP_SIZE
    return min(max(edns.payload, CLASSIC_UDP_SIZE), max(ceiling, CLASSIC_UDP_SIZE))
