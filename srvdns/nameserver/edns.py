"""EDNS(0) (RFC 6891): read the query's OPT record, write the reply's, size the reply."""

from __future__ import annotations

import struct
from dataclasses import dataclass

CLASSIC_UDP_SIZE = 512
"""RFC 1035 §4.2.1: the UDP payload every client accepts, and the floor of EDNS sizes."""

TCP_SIZE = 65535
"""RFC 1035 §4.2.2: a TCP message is framed by a two-octet length."""

MAX_UDP_SIZE = 65507
"""The most a UDP datagram carries over IPv4 (65535 less the IP and UDP headers)."""

BADVERS = 16
"""RFC 6891 §6.1.3: the extended RCODE for an unsupported EDNS version."""

OPT_SIZE = 11
"""The octets of the OPT record we send: root owner, fixed fields, no options."""

_DO = 1 << 15
_OPT_RR = struct.Struct("!BHHIH")
_OPTION = struct.Struct("!HH")


@dataclass(frozen=True, slots=True)
class Edns:
    """What the client's OPT record says; its options are read past and ignored."""

    version: int
    payload: int
    """The requestor's UDP payload size."""
    dnssec_ok: bool


def parse_opt(payload: int, ttl: int, rdata: bytes) -> Edns:
    """The EDNS parameters of an OPT record from its CLASS, TTL and RDATA fields.

    RFC 6891 §6.1.2: options are {code, length, data} triples filling the RDATA; an
    option we do not know is ignored (§6.1.2, and never echoed).  Raises ValueError
    when the options do not exactly fill the RDATA.
    """
    offset = 0
    while offset < len(rdata):
        if offset + _OPTION.size > len(rdata):
            raise ValueError("a truncated EDNS option")
        _, length = _OPTION.unpack_from(rdata, offset)
        offset += _OPTION.size + length
        if offset > len(rdata):
            raise ValueError("an EDNS option runs past the OPT record")
    return Edns(version=(ttl >> 16) & 0xFF, payload=payload, dnssec_ok=bool(ttl & _DO))


def opt_record(udp_size: int, edns: Edns, rcode: int = 0) -> bytes:
    """The reply's OPT record: version 0, our UDP size, the upper 8 bits of ``rcode``.

    RFC 3225 §3: "the DO bit of the query MUST be copied in the response" - we sign
    nothing, so the reply is that of an unsigned zone with DO echoed, as NSD and Knot
    do.  No options: unknown ones are not echoed (RFC 6891 §6.1.2).
    """
    ttl = ((rcode >> 4) << 24) | (_DO if edns.dnssec_ok else 0)
    return _OPT_RR.pack(0, 41, udp_size, ttl, 0)


def udp_limit(edns: Edns | None, ceiling: int) -> int:
    """The largest UDP reply to send.

    RFC 6891 §6.2.5: a payload size below 512 is treated as 512; without EDNS the
    limit is 512 (RFC 1035 §4.2.1).  Never more than our own ``ceiling``, nor than a
    datagram holds.
    """
    if edns is None:
        return CLASSIC_UDP_SIZE
    ceiling = min(max(ceiling, CLASSIC_UDP_SIZE), MAX_UDP_SIZE)
    return min(max(edns.payload, CLASSIC_UDP_SIZE), ceiling)
