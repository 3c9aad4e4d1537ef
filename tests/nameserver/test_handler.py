"""The pipeline's protocol rules: rcodes, flags, EDNS(0), truncation, names, bad input."""

from __future__ import annotations

import io
import logging
import random
import struct
from typing import Any

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from srvdns.catalog import Catalog, CatalogHolder
from srvdns.model import Service
from srvdns.nameserver.handler import Handler

from .dnstest import (
    NEGATIVE_SOA,
    NOW,
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
TC = 0x0200
HEADER = struct.Struct("!6H")


def handler(snapshot: Catalog | None = None, *, seed: int = 1, **options: Any) -> Handler:
    """A handler on the fixture zones with the protocol options of ``Handler``."""
    return Handler(
        zones(),
        CatalogHolder(snapshot if snapshot is not None else catalog()),
        clock=lambda: NOW,
        rng=random.Random(seed),
        **options,
    )


def header(wire: bytes) -> tuple[int, int, int, int, int, int]:
    return HEADER.unpack_from(wire)


def encode(*labels: bytes) -> bytes:
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"


def raw_query(
    qname: bytes, qtype: int = 1, qclass: int = 1, *, flags: int = 0x0100, tail: bytes = b""
) -> bytes:
    counts = (1, 0, 0, 1 if tail else 0)
    return HEADER.pack(0x5151, flags, *counts) + qname + struct.pack("!HH", qtype, qclass) + tail


def question_of(wire: bytes) -> bytes:
    """The question section of a message with one question and an uncompressed name."""
    end = 12
    while wire[end]:
        end += wire[end] + 1
    return wire[12 : end + 5]


def big(count: int, **kw: Any) -> Catalog:
    members = tuple(
        instance("big", f"big-{n:02}", f"10.1.{n // 250}.{n % 250}", **kw)
        for n in range(1, count + 1)
    )
    return catalog([Service("big", members)])


# --- header flags (RFC 1035 §4.1.1, RFC 6840 §5.9)


def test_rfc1035_4_1_1_authoritative_answer_flags() -> None:
    reply = ask(make_handler(), "web.service.local", "A")
    assert reply.id == 4242
    assert reply.flags & dns.flags.QR
    assert reply.flags & dns.flags.AA
    assert reply.flags & dns.flags.RD, "RD is copied"
    assert not reply.flags & dns.flags.RA, "no recursion offered"
    assert not reply.flags & dns.flags.TC


def test_rfc1035_4_1_1_rd_clear_stays_clear() -> None:
    message = dns.message.from_wire(query("web.service.local"))
    message.flags &= ~dns.flags.RD
    reply = parse_reply(make_handler().handle(message.to_wire()))
    assert not reply.flags & dns.flags.RD


def test_rfc6840_5_9_cd_is_copied_and_ad_is_never_set() -> None:
    message = dns.message.from_wire(query("web.service.local", edns=0, dnssec=True))
    message.flags |= dns.flags.CD | dns.flags.AD
    reply = parse_reply(make_handler().handle(message.to_wire()))
    assert reply.flags & dns.flags.CD
    assert not reply.flags & dns.flags.AD, "nothing here is validated"
    plain = parse_reply(make_handler().handle(query("web.service.local")))
    assert not plain.flags & (dns.flags.CD | dns.flags.AD)


def test_rfc2308_3_negative_answers_carry_the_soa_with_the_negative_ttl() -> None:
    nxdomain = ask(make_handler(), "nope.service.local", "A")
    nodata = ask(make_handler(), "web.service.local", "MX")
    assert (nxdomain.rcode(), nodata.rcode()) == (dns.rcode.NXDOMAIN, dns.rcode.NOERROR)
    assert lines(nxdomain.authority) == lines(nodata.authority) == [NEGATIVE_SOA]
    assert nxdomain.flags & nodata.flags & dns.flags.AA


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
    wire = HEADER.pack(0xBEEF, 0x0100, 1, 0, 0, 0) + b"\x07garbage"
    reply = make_handler().handle(wire)
    assert reply is not None
    msg_id, flags, qd, an, ns, ar = header(reply)
    assert msg_id == 0xBEEF
    assert flags == QR | 0x0100 | dns.rcode.FORMERR
    assert (qd, an, ns, ar) == (0, 0, 0, 0)


def test_formerr_echoes_a_question_that_parses() -> None:
    good = query("web.service.local")
    msg_id, flags, _, _, _, _ = header(good)
    wire = HEADER.pack(msg_id, flags, 1, 1, 0, 0) + good[12:] + b"\xc0"
    reply = parse_reply(make_handler().handle(wire))
    assert reply.rcode() == dns.rcode.FORMERR
    assert [q.to_text() for q in reply.question] == ["web.service.local. IN A"]


@pytest.mark.parametrize("qdcount", [0, 2])
def test_rfc9619_qdcount_other_than_one_is_formerr(qdcount: int) -> None:
    one = query("web.service.local", edns=0)
    question, opt = one[12:-11], one[-11:]
    wire = HEADER.pack(7, 0x0100, qdcount, 0, 0, 1) + question * qdcount + opt
    reply = parse_reply(make_handler().handle(wire))
    assert reply.rcode() == dns.rcode.FORMERR
    assert reply.id == 7
    assert not reply.question
    assert reply.edns == 0, "the OPT record was fine, so the reply has one (RFC 6891 §7)"


def test_rfc6891_6_1_1_two_opts_formerr() -> None:
    wire = query("web.service.local", edns=0)
    opt = wire[-11:]
    assert opt[:3] == b"\x00\x00\x29"
    msg_id, flags, qd, an, ns, ar = header(wire)
    doubled = HEADER.pack(msg_id, flags, qd, an, ns, ar + 1) + wire[12:] + opt
    reply = parse_reply(make_handler().handle(doubled))
    assert reply.rcode() == dns.rcode.FORMERR
    assert reply.edns == -1
    assert [q.to_text() for q in reply.question] == ["web.service.local. IN A"]


@pytest.mark.parametrize("section", ["answer", "authority"])
def test_rfc6891_6_1_1_opt_outside_the_additional_section_formerr(section: str) -> None:
    wire = query("web.service.local", edns=0)
    question, opt = wire[12:-11], wire[-11:]
    counts = (1, 1, 0, 0) if section == "answer" else (1, 0, 1, 0)
    reply = parse_reply(make_handler().handle(HEADER.pack(9, 0x0100, *counts) + question + opt))
    assert reply.rcode() == dns.rcode.FORMERR
    assert reply.edns == -1


def test_rfc6891_6_1_2_opt_with_a_non_root_owner_formerr() -> None:
    wire = query("web.service.local", edns=0)
    opt = wire[-11:]
    bad = wire[:-11] + b"\x01x\x00" + opt[1:]
    assert parse_reply(make_handler().handle(bad)).rcode() == dns.rcode.FORMERR


@pytest.mark.parametrize(
    "opcode", [1, 2, 4, 5, 15], ids=["IQUERY", "STATUS", "NOTIFY", "UPDATE", "15"]
)
def test_rfc1035_4_1_1_opcodes_other_than_query_are_notimp(opcode: int) -> None:
    wire = bytearray(query("service.local", "SOA"))
    wire[2] = (wire[2] & 0x87) | (opcode << 3)
    reply = parse_reply(make_handler().handle(bytes(wire)))
    assert reply.rcode() == dns.rcode.NOTIMP
    assert reply.opcode() == opcode
    assert not reply.flags & dns.flags.AA
    assert not reply.answer


def test_notimp_wins_over_a_malformed_body() -> None:
    wire = HEADER.pack(3, 4 << 11, 0, 5, 0, 0) + b"\xff" * 7  # NOTIFY, nothing parses
    reply = make_handler().handle(wire)
    assert reply is not None
    assert header(reply) == (3, QR | 4 << 11 | dns.rcode.NOTIMP, 0, 0, 0, 0)


def test_rfc6891_6_1_3_edns_version_above_0_is_badvers() -> None:
    reply = ask(make_handler(), "web.service.local", "A", edns=1, dnssec=True)
    assert reply.rcode() == dns.rcode.BADVERS
    assert reply.edns == 0, "we answer with the version we speak"
    assert reply.ednsflags & dns.flags.DO
    assert not reply.answer
    assert not reply.flags & dns.flags.AA
    assert [q.to_text() for q in reply.question] == ["web.service.local. IN A"]


class BrokenHolder(CatalogHolder):
    @property
    def current(self) -> Catalog:
        raise RuntimeError("boom")

    @current.setter
    def current(self, value: Catalog) -> None:
        pass


def test_an_unexpected_exception_is_servfail_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    broken = Handler(zones(), BrokenHolder())
    with caplog.at_level(logging.ERROR, logger="srvdns.nameserver.handler"):
        reply = parse_reply(broken.handle(query("web.service.local", edns=0)))
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert reply.id == 4242
    assert [q.to_text() for q in reply.question] == ["web.service.local. IN A"]
    assert reply.edns == 0
    assert not reply.flags & dns.flags.AA
    assert len(caplog.records) == 1
    assert caplog.records[0].exc_info is not None


# --- classes and CHAOS


@pytest.mark.parametrize("qclass", [dns.rdataclass.HS, dns.rdataclass.NONE, dns.rdataclass.ANY, 42])
def test_rfc1035_3_2_4_classes_other_than_in_and_ch_are_refused(qclass: int) -> None:
    wire = raw_query(encode(b"web", b"service", b"local"), 1, qclass)
    reply = handler().handle(wire)
    assert reply is not None
    assert header(reply)[1] == QR | 0x0100 | dns.rcode.REFUSED
    assert question_of(reply) == question_of(wire)


@pytest.mark.parametrize("qtype", ["AXFR", "IXFR"])
def test_zone_transfers_are_refused(qtype: str) -> None:
    reply = ask(make_handler(), "service.local", qtype, tcp=True)
    assert reply.rcode() == dns.rcode.REFUSED
    assert not reply.flags & dns.flags.AA


@pytest.mark.parametrize(
    ("qname", "text"),
    [
        ("version.bind", "srvdns 9.9"),
        ("VERSION.Server", "srvdns 9.9"),
        ("id.server", "node-7"),
        ("HostName.BIND", "node-7"),
    ],
)
@pytest.mark.parametrize("qtype", ["TXT", "ANY"])
def test_chaos_txt_version_and_identity(qname: str, text: str, qtype: str) -> None:
    ch = handler(version="srvdns 9.9", identity="node-7")
    reply = ask(ch, qname, qtype, rdclass="CH")  # type: ignore[arg-type]
    assert reply.rcode() == dns.rcode.NOERROR
    assert not reply.flags & dns.flags.AA, "synthesised, as NSD and Knot send it"
    assert [rrset.to_text() for rrset in reply.answer] == [f'{qname}. 0 CH TXT "{text}"']
    assert [q.to_text() for q in reply.question] == [f"{qname}. CH {qtype}"]


@pytest.mark.parametrize(
    ("qname", "qtype", "options"),
    [
        ("version.bind", "TXT", {"identity": "node-7"}),
        ("id.server", "TXT", {"version": "srvdns 9.9"}),
        ("hostname.bind", "TXT", {}),
        ("version.bind", "A", {"version": "srvdns 9.9"}),
        ("authors.bind", "TXT", {"version": "srvdns 9.9", "identity": "node-7"}),
        ("web.service.local", "TXT", {"version": "srvdns 9.9"}),
        ("bind", "TXT", {"version": "srvdns 9.9"}),
    ],
)
def test_chaos_refused(qname: str, qtype: str, options: dict[str, str]) -> None:
    reply = ask(handler(**options), qname, qtype, rdclass="CH")  # type: ignore[arg-type]
    assert reply.rcode() == dns.rcode.REFUSED
    assert not reply.flags & dns.flags.AA
    assert not reply.answer


# --- names: case, binary labels, limits


def random_case(rng: random.Random, text: str) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in text)


@pytest.mark.parametrize(
    ("qname", "qtype"),
    [
        ("_web._tcp.service.local", "SRV"),
        ("web.service.local", "A"),
        ("nope.service.local", "A"),
        ("service.local", "NS"),
        ("web.example.org", "A"),
    ],
)
def test_rfc4343_0x20_random_case_is_echoed_every_time(qname: str, qtype: str) -> None:
    rng = random.Random(qname)
    server = handler()
    baseline = parse_reply(server.handle(query(qname, qtype)))
    for n in range(150):
        mixed = random_case(rng, qname)
        wire = query(mixed, qtype, msg_id=n)
        raw = server.handle(wire)
        assert raw is not None
        assert question_of(raw) == question_of(wire)
        reply = parse_reply(raw)
        assert reply.rcode() == baseline.rcode()
        assert {rrset.name.to_text() for rrset in reply.answer} <= {f"{mixed}."}
        assert sorted(r.to_text() for rrset in reply.answer for r in rrset) == sorted(
            r.to_text() for rrset in baseline.answer for r in rrset
        )
        assert lines(reply.authority) == lines(baseline.authority)
        assert len(reply.additional) == len(baseline.additional)


@pytest.mark.parametrize(
    "label",
    [b"\x00", b"we\x00b", b"a.b", b"web.", b" ", b"sp ace", b"\xff", b"\xffWeB", b"\\", b'"'],
)
@pytest.mark.parametrize(
    ("suffix", "rcode"),
    [
        ((b"service", b"local"), dns.rcode.NXDOMAIN),
        ((b"web", b"service", b"local"), dns.rcode.NXDOMAIN),
        ((b"example", b"org"), dns.rcode.REFUSED),
    ],
)
def test_binary_labels_get_proper_answers_and_exact_echo(
    label: bytes, suffix: tuple[bytes, ...], rcode: int
) -> None:
    wire = raw_query(encode(label, *suffix))
    raw = handler().handle(wire)
    assert raw is not None
    assert question_of(raw) == question_of(wire)
    reply = parse_reply(raw)
    assert reply.rcode() == rcode
    assert reply.question[0].name.labels[0] == label
    if rcode == dns.rcode.NXDOMAIN:
        assert reply.flags & dns.flags.AA
        assert lines(reply.authority) == [NEGATIVE_SOA]


def test_a_binary_label_on_the_answer_owner_too() -> None:
    snapshot = catalog([Service("svc", (instance("svc", "svc-1", "10.9.9.9"),))])
    wire = raw_query(encode(b"SvC", b"service", b"local"), 1)
    reply = parse_reply(handler(snapshot).handle(wire))
    assert [rrset.to_text() for rrset in reply.answer] == ["SvC.service.local. 5 IN A 10.9.9.9"]


def test_rfc1035_3_1_255_octet_name_and_63_octet_labels_work() -> None:
    qname = encode(b"a" * 63, b"b" * 63, b"c" * 47, b"d" * 63, b"service", b"local")
    assert len(qname) == 255
    raw = handler().handle(raw_query(qname))
    assert raw is not None
    assert question_of(raw)[:-4] == qname
    reply = parse_reply(raw)
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert lines(reply.authority) == [NEGATIVE_SOA]


@pytest.mark.parametrize(
    "qname",
    [
        encode(b"a" * 64, b"service", b"local"),
        encode(b"a" * 63, b"b" * 63, b"c" * 48, b"d" * 63, b"service", b"local"),  # 256
        b"\x41" + b"x" * 65 + b"\x00",
    ],
    ids=["label-64", "name-256", "extended-label"],
)
def test_rfc1035_3_1_over_long_names_are_formerr(
    qname: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="srvdns.nameserver.handler"):
        reply = handler().handle(raw_query(qname))
    assert reply is not None
    assert header(reply) == (0x5151, QR | 0x0100 | dns.rcode.FORMERR, 0, 0, 0, 0)
    assert not caplog.records


# --- EDNS(0)


def test_rfc6891_7_no_opt_without_edns() -> None:
    assert ask(make_handler(), "web.service.local", "A").edns == -1


def test_rfc6891_6_2_3_opt_echoed_with_our_size_and_the_do_bit() -> None:
    reply = ask(make_handler(), "web.service.local", "A", edns=0, payload=4096, dnssec=True)
    assert reply.edns == 0
    assert reply.payload == 1232
    assert reply.ednsflags & dns.flags.DO
    plain = ask(make_handler(edns_udp_size=1400), "web.service.local", "A", edns=0)
    assert plain.payload == 1400
    assert not plain.ednsflags & dns.flags.DO


def test_rfc3225_3_do_gets_the_answer_of_an_unsigned_zone() -> None:
    for qname, qtype in (("web.service.local", "SRV"), ("nope.service.local", "A")):
        signed = ask(handler(), qname, qtype, edns=0, dnssec=True)
        unsigned = ask(handler(), qname, qtype, edns=0)
        assert signed.ednsflags & dns.flags.DO
        assert not signed.flags & dns.flags.AD
        for section in ("answer", "authority", "additional"):
            assert lines(getattr(signed, section)) == lines(getattr(unsigned, section))
        types = {rrset.rdtype for rrset in signed.answer + signed.authority}
        assert not types & {dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3}


def test_rfc6891_6_1_2_unknown_options_are_ignored_not_echoed() -> None:
    options = [
        dns.edns.GenericOption(dns.edns.NSID, b""),
        dns.edns.GenericOption(dns.edns.COOKIE, b"12345678"),
        dns.edns.GenericOption(65001, b"private"),
    ]
    message = dns.message.make_query("web.service.local", "A", use_edns=0, options=options)
    reply = parse_reply(make_handler().handle(message.to_wire()))
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer
    assert reply.edns == 0
    assert reply.options == ()


def test_rfc6891_opt_in_negative_refused_and_chaos_answers() -> None:
    assert ask(make_handler(), "nope.service.local", "A", edns=0).edns == 0
    assert ask(make_handler(), "example.org", "A", edns=0).edns == 0
    assert ask(handler(version="v"), "version.bind", "TXT", rdclass="CH", edns=0).edns == 0


# --- sizes, truncation and compression


def test_rfc1035_4_1_4_names_are_compressed() -> None:
    raw = handler(big(10)).handle(query("big.service.local", "SRV"), tcp=True)
    assert raw is not None
    reply = parse_reply(raw)
    assert len(reply.answer) == len(reply.additional) == 10
    answers = raw[12 + len(question_of(raw)) :]
    assert answers[:2] == b"\xc0\x0c", "the first owner points at the question"
    uncompressed = io.BytesIO()
    for rrset in (*reply.answer, *reply.additional):
        rrset.to_wire(uncompressed)
    assert len(answers) < len(uncompressed.getvalue()) * 0.6


def limits(edns: int, payload: int, udp_size: int) -> int:
    return 512 if edns < 0 else min(max(payload, 512), udp_size)


@pytest.mark.parametrize("count", [1, 5, 8, 9, 10, 16, 25, 30, 60])
@pytest.mark.parametrize(
    ("edns", "payload", "udp_size"),
    [(-1, 0, 1232), (0, 0, 1232), (0, 300, 1232), (0, 700, 1232), (0, 1232, 1232),
     (0, 4096, 1232), (0, 1000, 1000), (0, 1500, 4096), (0, 4096, 4096)],
)  # fmt: skip
def test_rfc2181_9_additional_gives_way_first_then_tc(
    count: int, edns: int, payload: int, udp_size: int
) -> None:
    server = handler(big(count), edns_udp_size=udp_size)
    wire = query("big.service.local", "SRV", edns=edns, payload=payload)
    raw = server.handle(wire)
    full = server.handle(wire, tcp=True)
    assert raw is not None
    assert full is not None
    limit = limits(edns, payload, udp_size)
    assert len(raw) <= limit
    reply = parse_reply(raw)
    assert (reply.edns == 0) == (edns == 0)
    assert question_of(raw) == question_of(wire)
    address_size = 16  # compressed owner, fixed fields, 4 octets
    answers_only = len(full) - count * address_size
    if answers_only > limit:
        # RFC 1035 §4.2.1: the answer itself does not fit: TC, the question only.
        assert reply.flags & dns.flags.TC
        assert (reply.answer, reply.authority, reply.additional) == ([], [], [])
        return
    assert not reply.flags & dns.flags.TC
    assert sum(len(rrset) for rrset in reply.answer) == count
    kept = len(reply.additional)
    assert kept == count or len(raw) + address_size > limit, "as many as fit are kept"
    targets = {r.target for rrset in reply.answer for r in rrset}
    assert {rrset.name for rrset in reply.additional} <= targets


def test_rfc1035_4_2_1_udp_answer_that_does_not_fit_is_tc_with_the_question_only() -> None:
    server = make_handler(big(20))
    for edns in (-1, 0):
        wire = server.handle(query("big.service.local", "SRV", edns=edns, payload=512))
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


def test_rfc7766_8_tcp_gets_the_full_answer() -> None:
    reply = ask(make_handler(big(60)), "big.service.local", "SRV", tcp=True)
    assert not reply.flags & dns.flags.TC
    assert len(reply.answer) == len(reply.additional) == 60


def test_tcp_answer_over_65535_octets_is_tc() -> None:
    raw = handler(big(1400)).handle(query("big.service.local", "SRV"), tcp=True)
    assert raw is not None
    assert len(raw) <= 65535
    reply = parse_reply(raw)
    assert reply.flags & dns.flags.TC
    assert not reply.answer


def test_large_tcp_answers_compress_correctly_past_16k() -> None:
    raw = handler(big(600)).handle(query("big.service.local", "SRV"), tcp=True)
    assert raw is not None
    assert len(raw) > 0x4000
    reply = parse_reply(raw)
    targets = {r.target for rrset in reply.answer for r in rrset}
    assert {rrset.name for rrset in reply.additional} == targets
    assert len(targets) == 600


def test_small_answers_are_not_truncated() -> None:
    case = Case(
        "primary.web.service.local",
        "SRV",
        answer=["primary.web.service.local. 5 IN SRV 0 10 8080 web-1.instance.web.service.local."],
        additional=["web-1.instance.web.service.local. 5 IN A 10.0.0.1"],
    )
    case.check(ask(make_handler(), case.qname, case.qtype))


# --- udp_answer_limit


def test_udp_answer_limit_sends_a_random_subset_without_tc() -> None:
    server = handler(big(20), udp_answer_limit=3)
    seen = set()
    for n in range(30):
        reply = ask(server, "big.service.local", "SRV", msg_id=n)
        assert not reply.flags & dns.flags.TC
        assert len(reply.answer) == 3
        targets = {r.target for rrset in reply.answer for r in rrset}
        assert {a.name for a in reply.additional} == targets, "additional follow the answers"
        seen.add(frozenset(targets))
    assert len(seen) > 20
    assert len(ask(server, "big.service.local", "A").answer) == 3


def test_udp_answer_limit_leaves_tcp_and_small_rrsets_alone() -> None:
    server = handler(big(20), udp_answer_limit=3)
    reply = ask(server, "big.service.local", "SRV", tcp=True)
    assert len(reply.answer) == len(reply.additional) == 20
    small = ask(handler(udp_answer_limit=3), "web.service.local", "SRV")
    assert len(small.answer) == len(small.additional) == 3


def test_udp_answer_limit_then_truncation_rules() -> None:
    server = handler(big(60), udp_answer_limit=8)
    reply = ask(server, "big.service.local", "SRV")
    assert not reply.flags & dns.flags.TC
    assert len(reply.answer) == 8
    targets = {r.target for rrset in reply.answer for r in rrset}
    assert 0 < len(reply.additional) < 8
    assert {a.name for a in reply.additional} <= targets


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


_HANDLER = handler(version="v", identity="i", udp_answer_limit=2)


def check_reply(wire: bytes) -> None:
    for tcp in (False, True):
        reply = _HANDLER.handle(wire, tcp=tcp)
        if reply is None:
            assert len(wire) < 12 or wire[2] & 0x80
            return
        assert len(reply) <= 65535 if tcp else 512
        assert reply[:2] == wire[:2]
        assert reply[2] & 0x80
        assert reply[3] & 0x0F != dns.rcode.SERVFAIL, "bad input is never an internal error"
        if header(reply)[2] == 1:
            assert question_of(reply) == question_of(wire)
        if (reply[2] >> 3) & 0x0F != dns.opcode.UPDATE:  # dnspython reads those as RFC 2136
            assert dns.message.from_wire(reply).id == struct.unpack_from("!H", wire)[0]
