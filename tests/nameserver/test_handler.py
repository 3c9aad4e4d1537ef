"""The pipeline's protocol rules: rcodes, flags, EDNS(0), truncation, bad input."""

from __future__ import annotations

import logging
import struct

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from srvdns.catalog import Catalog, CatalogHolder
from srvdns.model import Service
from srvdns.nameserver.handler import Handler

from .dnstest import (
    NEGATIVE_SOA,
    Case,
    ask,
    catalog,
    instance,
    lines,
    make_handler,
    parse_reply,
    query,
    zones,
)

QR = 0x8000


def header(wire: bytes) -> tuple[int, int, int, int, int, int]:
    return struct.unpack_from("!HHHHHH", wire)


# --- flags


def test_authoritative_answer_flags() -> None:
    reply = ask(make_handler(), "web.service.local", "A")
    assert reply.id == 4242
    assert reply.flags & dns.flags.QR
    assert reply.flags & dns.flags.AA
    assert reply.flags & dns.flags.RD, "RD is copied"
    assert not reply.flags & dns.flags.RA, "no recursion offered"
    assert not reply.flags & dns.flags.TC


def test_rd_clear_stays_clear() -> None:
    message = dns.message.from_wire(query("web.service.local"))
    message.flags &= ~dns.flags.RD
    reply = parse_reply(make_handler().handle(message.to_wire()))
    assert not reply.flags & dns.flags.RD


def test_negative_answers_carry_the_soa_with_the_negative_ttl() -> None:
    nxdomain = ask(make_handler(), "nope.service.local", "A")
    nodata = ask(make_handler(), "web.service.local", "MX")
    assert (nxdomain.rcode(), nodata.rcode()) == (dns.rcode.NXDOMAIN, dns.rcode.NOERROR)
    assert lines(nxdomain.authority) == lines(nodata.authority) == [NEGATIVE_SOA]
    assert nxdomain.flags & nodata.flags & dns.flags.AA


def test_question_case_is_echoed_exactly() -> None:
    reply = ask(make_handler(), "wEb.SeRvIcE.lOcAl", "A")
    assert reply.question[0].name.to_text() == "wEb.SeRvIcE.lOcAl."
    assert {rrset.name.to_text() for rrset in reply.answer} == {"wEb.SeRvIcE.lOcAl."}


# --- no reply at all


def test_responses_get_no_reply() -> None:
    wire = bytearray(query("web.service.local"))
    wire[2] |= QR >> 8
    assert make_handler().handle(bytes(wire)) is None


@pytest.mark.parametrize("wire", [b"", b"\x12", b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00"])
def test_shorter_than_a_header_gets_no_reply(wire: bytes) -> None:
    assert make_handler().handle(wire) is None


# --- FORMERR, NOTIMP, BADVERS, SERVFAIL


def test_unparseable_message_gets_formerr_with_id_opcode_and_rd() -> None:
    wire = struct.pack("!HHHHHH", 0xBEEF, 0x0100, 1, 0, 0, 0) + b"\x07garbage"
    reply = make_handler().handle(wire)
    assert reply is not None
    msg_id, flags, qd, an, ns, ar = header(reply)
    assert msg_id == 0xBEEF
    assert flags == QR | 0x0100 | dns.rcode.FORMERR
    assert (qd, an, ns, ar) == (0, 0, 0, 0)


def test_formerr_echoes_a_question_that_parses() -> None:
    good = query("web.service.local")
    msg_id, flags, _, _, _, _ = header(good)
    wire = struct.pack("!HHHHHH", msg_id, flags, 1, 1, 0, 0) + good[12:] + b"\xc0"
    reply = parse_reply(make_handler().handle(wire))
    assert reply.rcode() == dns.rcode.FORMERR
    assert [q.to_text() for q in reply.question] == ["web.service.local. IN A"]


@pytest.mark.parametrize("qdcount", [0, 2])
def test_qdcount_other_than_one_is_formerr(qdcount: int) -> None:
    one = query("web.service.local")
    question = one[12:]
    body = question * qdcount
    wire = struct.pack("!HHHHHH", 7, 0x0100, qdcount, 0, 0, 0) + body
    reply = parse_reply(make_handler().handle(wire))
    assert reply.rcode() == dns.rcode.FORMERR
    assert reply.id == 7
    assert not reply.question


def test_more_than_one_opt_is_formerr() -> None:
    wire = query("web.service.local", edns=0)
    opt = wire[-11:]
    assert opt[:3] == b"\x00\x00\x29"
    msg_id, flags, qd, an, ns, ar = header(wire)
    doubled = struct.pack("!HHHHHH", msg_id, flags, qd, an, ns, ar + 1) + wire[12:] + opt
    reply = parse_reply(make_handler().handle(doubled))
    assert reply.rcode() == dns.rcode.FORMERR
    assert reply.edns == -1


@pytest.mark.parametrize(
    "opcode", [1, 2, 4, 5, 15], ids=["IQUERY", "STATUS", "NOTIFY", "UPDATE", "15"]
)
def test_opcodes_other_than_query_are_notimp(opcode: int) -> None:
    wire = bytearray(query("service.local", "SOA"))
    wire[2] = (wire[2] & 0x87) | (opcode << 3)
    reply = parse_reply(make_handler().handle(bytes(wire)))
    assert reply.rcode() == dns.rcode.NOTIMP
    assert reply.opcode() == opcode
    assert not reply.flags & dns.flags.AA
    assert not reply.answer


def test_edns_version_above_0_is_badvers() -> None:
    reply = ask(make_handler(), "web.service.local", "A", edns=1)
    assert reply.rcode() == dns.rcode.BADVERS
    assert reply.edns == 0, "we answer with the version we speak"
    assert not reply.answer
    assert [q.to_text() for q in reply.question] == ["web.service.local. IN A"]


class BrokenHolder(CatalogHolder):
    @property
    def current(self) -> Catalog:
        raise RuntimeError("boom")

    @current.setter
    def current(self, value: Catalog) -> None:
        pass


def test_an_unexpected_exception_is_servfail_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    handler = Handler(zones(), BrokenHolder())
    with caplog.at_level(logging.ERROR, logger="srvdns.nameserver.handler"):
        reply = parse_reply(handler.handle(query("web.service.local", edns=0)))
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert reply.id == 4242
    assert [q.to_text() for q in reply.question] == ["web.service.local. IN A"]
    assert reply.edns == 0
    assert not reply.flags & dns.flags.AA
    assert len(caplog.records) == 1
    assert caplog.records[0].exc_info is not None


# --- EDNS(0)


def test_no_opt_without_edns() -> None:
    assert ask(make_handler(), "web.service.local", "A").edns == -1


def test_opt_echoed_with_our_size_and_the_do_bit() -> None:
    reply = ask(make_handler(), "web.service.local", "A", edns=0, payload=4096, dnssec=True)
    assert reply.edns == 0
    assert reply.payload == 1232
    assert reply.ednsflags & dns.flags.DO
    plain = ask(make_handler(edns_udp_size=1400), "web.service.local", "A", edns=0)
    assert plain.payload == 1400
    assert not plain.ednsflags & dns.flags.DO


def test_opt_in_negative_and_refused_answers() -> None:
    assert ask(make_handler(), "nope.service.local", "A", edns=0).edns == 0
    assert ask(make_handler(), "example.org", "A", edns=0).edns == 0


# --- truncation


def big(count: int) -> Catalog:
    members = tuple(instance("big", f"big-{n:02}", f"10.1.0.{n}") for n in range(1, count + 1))
    return catalog([Service("big", members)])


@pytest.mark.parametrize(
    ("count", "edns", "payload", "udp_size", "limit"),
    [
        (8, -1, 0, 1232, 512),
        (8, 0, 300, 1232, 512),
        (16, 0, 4096, 1232, 1232),
        (14, 0, 1000, 1232, 1000),
        (14, 0, 4096, 1000, 1000),
    ],
)
def test_udp_drops_additional_records_first_without_tc(
    count: int, edns: int, payload: int, udp_size: int, limit: int
) -> None:
    handler = make_handler(big(count), edns_udp_size=udp_size)
    wire = handler.handle(query("big.service.local", "SRV", edns=edns, payload=payload))
    reply = parse_reply(wire)
    assert wire is not None
    assert len(wire) <= limit
    assert not reply.flags & dns.flags.TC
    assert len(reply.answer) == count
    assert len(reply.additional) < count
    assert (reply.edns == 0) == (edns == 0)


def test_udp_answer_that_does_not_fit_is_tc_with_the_question_only() -> None:
    handler = make_handler(big(20))
    for edns in (-1, 0):
        wire = handler.handle(query("big.service.local", "SRV", edns=edns, payload=512))
        reply = parse_reply(wire)
        assert wire is not None
        assert len(wire) <= 512
        assert reply.flags & dns.flags.TC
        assert reply.flags & dns.flags.AA
        assert not reply.answer
        assert not reply.authority
        assert not reply.additional
        assert [q.to_text() for q in reply.question] == ["big.service.local. IN SRV"]
        assert reply.edns == edns


def test_tcp_gets_the_full_answer() -> None:
    reply = ask(make_handler(big(60)), "big.service.local", "SRV", tcp=True)
    assert not reply.flags & dns.flags.TC
    assert len(reply.answer) == len(reply.additional) == 60


def test_small_answers_are_not_truncated() -> None:
    case = Case(
        "primary.web.service.local",
        "SRV",
        answer=["primary.web.service.local. 5 IN SRV 0 10 8080 web-1.instance.web.service.local."],
        additional=["web-1.instance.web.service.local. 5 IN A 10.0.0.1"],
    )
    case.check(ask(make_handler(), case.qname, case.qtype))


# --- anything a network can deliver


@settings(max_examples=300, database=None, deadline=None)
@given(st.binary(min_size=0, max_size=600))
def test_random_bytes_never_raise(wire: bytes) -> None:
    check_reply(wire)


@settings(max_examples=300, database=None, deadline=None)
@given(st.data())
def test_mutated_queries_never_raise(data: st.DataObject) -> None:
    wire = bytearray(query("web-1.instance.web.service.local", "SRV", edns=0))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(wire) - 1))
        wire[position] = data.draw(st.integers(0, 255))
    wire = wire[: data.draw(st.integers(0, len(wire)))]
    check_reply(bytes(wire))


_HANDLER = make_handler()


def check_reply(wire: bytes) -> None:
    reply = _HANDLER.handle(wire)
    if reply is None:
        assert len(wire) < 12 or wire[2] & 0x80
        return
    assert reply[:2] == wire[:2]
    assert reply[2] & 0x80
    assert reply[3] & 0x0F != dns.rcode.SERVFAIL, "bad input is never an internal error"
    if (reply[2] >> 3) & 0x0F != dns.opcode.UPDATE:  # dnspython reads those as RFC 2136
        assert dns.message.from_wire(reply).id == struct.unpack_from("!H", wire)[0]
