"""EDNS(0): sizes, the OPT record we read and the one we write."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import pytest

from srvdns.nameserver.edns import (
    BADVERS,
    OPT_SIZE,
    Edns,
    opt_record,
    parse_opt,
    udp_limit,
)


@pytest.mark.parametrize(
    ("payload", "ceiling", "expected"),
    [(None, 1232, 512), (0, 1232, 512), (300, 1232, 512), (511, 1232, 512), (512, 1232, 512),
     (1000, 1232, 1000), (4096, 1232, 1232), (4096, 4096, 4096), (65535, 65535, 65507)],
)  # fmt: skip
def test_rfc6891_6_2_5_udp_limit(payload: int | None, ceiling: int, expected: int) -> None:
    edns = None if payload is None else Edns(version=0, payload=payload, dnssec_ok=False)
    assert udp_limit(edns, ceiling) == expected


def test_rfc6891_6_1_2_unknown_options_are_ignored() -> None:
    options = b"\x00\x0a\x00\x08cookie!!" + b"\x00\x03\x00\x00" + b"\xfd\xe9\x00\x01x"
    assert parse_opt(1400, 0x8000, options) == Edns(version=0, payload=1400, dnssec_ok=True)


@pytest.mark.parametrize("rdata", [b"\x00", b"\x00\x03\x00", b"\x00\x03\x00\x02x"])
def test_rfc6891_6_1_2_options_must_fill_the_rdata(rdata: bytes) -> None:
    with pytest.raises(ValueError, match="EDNS option"):
        parse_opt(1232, 0, rdata)


def opt_of(wire: bytes) -> dns.message.Message:
    """A reply with no question and only ``wire`` as its additional section."""
    header = b"\x00\x01\x80\x00\x00\x00\x00\x00\x00\x00\x00\x01"
    return dns.message.from_wire(header + wire)


@pytest.mark.parametrize("do", [False, True])
def test_rfc3225_3_do_bit_is_copied(do: bool) -> None:
    record = opt_record(1232, Edns(version=0, payload=4096, dnssec_ok=do))
    assert len(record) == OPT_SIZE
    reply = opt_of(record)
    assert reply.edns == 0
    assert reply.payload == 1232
    assert bool(reply.ednsflags & dns.flags.DO) == do
    assert reply.options == ()


def test_rfc6891_6_1_3_badvers_goes_in_the_extended_rcode() -> None:
    record = opt_record(1400, Edns(version=3, payload=512, dnssec_ok=False), BADVERS)
    reply = opt_of(record)
    assert reply.edns == 0, "we answer with the version we speak"
    assert reply.rcode() == dns.rcode.BADVERS
