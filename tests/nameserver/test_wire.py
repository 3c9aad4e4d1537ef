"""Reading queries off the wire: the question as sent, limits, sections, the OPT record."""

from __future__ import annotations

import struct

import pytest

from srvdns.nameserver import wire
from srvdns.nameserver.edns import Edns
from srvdns.nameserver.wire import FormError, parse_query


def name(*labels: bytes) -> bytes:
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"


def header(qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0, *, flags: int = 0x0100) -> bytes:
    return struct.pack("!6H", 0x1234, flags, qd, an, ns, ar)


def opt(payload: int = 1232, ttl: int = 0, rdata: bytes = b"", owner: bytes = b"\x00") -> bytes:
    return owner + struct.pack("!HHIH", 41, payload, ttl, len(rdata)) + rdata


def a_record(owner: bytes = b"\xc0\x0c") -> bytes:
    return owner + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([10, 0, 0, 1])


WEB = name(b"web", b"service", b"local")
QUESTION = WEB + b"\x00\x21\x00\x01"  # SRV IN


def test_question_is_kept_octet_for_octet() -> None:
    question = name(b"WeB", b"\x00\xff. ", b"local") + b"\x00\x10\x00\x03"
    query = parse_query(header() + question)
    assert query.msg_id == 0x1234
    assert query.flags == 0x0100
    assert query.question.labels == (b"WeB", b"\x00\xff. ", b"local")
    assert (query.question.qtype, query.question.qclass) == (16, 3)
    assert query.question.wire == question
    assert query.question.qname.label == (b"WeB", b"\x00\xff. ", b"local")
    assert query.edns is None


def test_rfc1035_3_1_63_octet_labels_and_255_octet_names_are_accepted() -> None:
    labels = (b"a" * 63, b"b" * 63, b"c" * 63, b"d" * 61)
    assert len(name(*labels)) == 255
    query = parse_query(header() + name(*labels) + b"\x00\x01\x00\x01")
    assert query.question.labels == labels


@pytest.mark.parametrize(
    "qname",
    [
        name(b"a" * 64, b"local"),
        name(b"a" * 63, b"b" * 63, b"c" * 63, b"d" * 62),  # 256 octets
        b"\x40" + b"x" * 64 + b"\x00",  # extended label type (RFC 6891 §5)
        b"\x80" + b"x" * 10 + b"\x00",  # reserved label type
        b"\xc0\x0c",  # compressed: there is nothing before the question to point to
        b"\x03web\x07service",  # ends mid-name
        WEB,  # no QTYPE / QCLASS
    ],
    ids=["label-64", "name-256", "ext-0x40", "ext-0x80", "pointer", "cut-name", "cut-type"],
)
def test_rfc1035_3_1_bad_question_is_formerr(qname: bytes) -> None:
    wire = header() + qname + (b"\x00\x01\x00\x01" if qname is not WEB else b"")
    with pytest.raises(FormError) as caught:
        parse_query(wire)
    assert caught.value.question is None


@pytest.mark.parametrize("qdcount", [0, 2])
def test_rfc9619_qdcount_other_than_1_is_formerr_keeping_edns(qdcount: int) -> None:
    wire = header(qd=qdcount, ar=1) + QUESTION * qdcount + opt(payload=4096)
    with pytest.raises(FormError) as caught:
        parse_query(wire)
    assert caught.value.question is None
    assert caught.value.edns == Edns(version=0, payload=4096, dnssec_ok=False)


def test_rfc6891_6_1_1_two_opts_formerr() -> None:
    with pytest.raises(FormError, match="more than one OPT") as caught:
        parse_query(header(ar=2) + QUESTION + opt() + opt())
    assert caught.value.question is not None
    assert caught.value.edns is None


@pytest.mark.parametrize("section", ["answer", "authority"])
def test_rfc6891_6_1_1_opt_outside_additional_formerr(section: str) -> None:
    counts = {"an": 1} if section == "answer" else {"ns": 1}
    with pytest.raises(FormError, match="outside the additional"):
        parse_query(header(**counts) + QUESTION + opt())


def test_rfc6891_6_1_2_opt_owner_must_be_root() -> None:
    with pytest.raises(FormError, match="root"):
        parse_query(header(ar=1) + QUESTION + opt(owner=WEB))


@pytest.mark.parametrize(
    "rdata",
    [b"\x00\x0a\x00", b"\x00\x0a\x00\x08abcd", b"\x00\x03\x00\x00\x01"],
    ids=["short-header", "overrun", "trailing-octet"],
)
def test_rfc6891_6_1_2_malformed_options_formerr(rdata: bytes) -> None:
    with pytest.raises(FormError):
        parse_query(header(ar=1) + QUESTION + opt(rdata=rdata))


def test_rfc6891_6_1_3_version_flags_and_unknown_options_are_read() -> None:
    options = b"\x00\x0a\x00\x08" + b"c" * 8 + b"\xfd\xe9\x00\x00"  # COOKIE, a private one
    query = parse_query(header(ar=1) + QUESTION + opt(300, (2 << 16) | 0x8000, options))
    assert query.edns == Edns(version=2, payload=300, dnssec_ok=True)


def test_other_records_are_skipped_compressed_or_not() -> None:
    wire = header(an=1, ns=1, ar=3) + QUESTION + a_record() + a_record(WEB)
    wire += a_record(b"\x01x\xc0\x0c") + opt(payload=4000) + a_record()
    query = parse_query(wire + b"trailing octets are ignored")
    assert query.edns is not None
    assert query.edns.payload == 4000


@pytest.mark.parametrize("cut", range(1, 30))
def test_a_record_cut_short_is_formerr_with_the_question(cut: int) -> None:
    record = a_record(WEB) + opt()
    with pytest.raises(FormError) as caught:
        parse_query(header(an=1, ar=1) + QUESTION + record[:-cut])
    assert caught.value.question is not None
    assert caught.value.question.wire == QUESTION


def test_a_record_with_a_64_octet_label_is_formerr() -> None:
    with pytest.raises(FormError):
        parse_query(header(ar=1) + QUESTION + a_record(name(b"x" * 64)))


def test_a_question_asked_again_is_the_same_immutable_question() -> None:
    first = parse_query(header() + QUESTION).question
    again = parse_query(header() + QUESTION + b"trailing octets").question
    assert again is first
    other_case = parse_query(header() + name(b"WEB", b"service", b"local") + QUESTION[-4:])
    assert other_case.question is not first
    assert other_case.question.labels == (b"WEB", b"service", b"local")
    assert other_case.question.qname.label == (b"WEB", b"service", b"local")


def test_a_flood_of_distinct_questions_keeps_the_question_memory_bounded() -> None:
    for n in range(wire._QUESTIONS_MAX + 10):
        query = parse_query(header() + name(b"n%d" % n, b"local") + b"\x00\x01\x00\x01")
        assert query.question.labels == (b"n%d" % n, b"local")
        assert len(wire._QUESTIONS) <= wire._QUESTIONS_MAX


MESSAGES = [
    header() + QUESTION,
    header(ar=1) + QUESTION + opt(),
    header(ar=1) + QUESTION + opt(4096, ttl=0x8000),  # DO
    header(ar=1) + QUESTION + opt(1232, ttl=0x00010000),  # version 1
    header(ar=1) + QUESTION + opt(rdata=b"\x00\x0a\x00\x08" + b"c" * 8),  # a cookie
    header(ar=1) + QUESTION + opt(owner=b"\x01x\x00"),  # not at the root: FORMERR
    header(ar=1) + QUESTION + opt(rdata=b"\x00\x0a\x00\x09" + b"c" * 8),  # overruns
    header(ar=1) + QUESTION + a_record(),  # no OPT at all
    header(ar=2) + QUESTION + opt() + opt(),  # twice: FORMERR
    header(ar=2) + QUESTION + a_record() + opt(512),
    header(an=1, ar=1) + QUESTION + opt() + opt(),  # OPT in the answer section: FORMERR
    header(ar=1) + QUESTION + opt()[:-1],  # cut short: FORMERR
    header(qd=2, ar=1) + QUESTION + QUESTION + opt(),  # two questions: FORMERR
]


def outcome(message: bytes) -> object:
    try:
        return parse_query(message)
    except FormError as exc:
        return ("FORMERR", str(exc), exc.question, exc.edns)


@pytest.mark.parametrize("message", MESSAGES)
def test_a_query_reads_the_same_whether_its_question_and_opt_were_seen_before(
    message: bytes,
) -> None:
    wire._QUESTIONS.clear()
    wire._OPTS.clear()
    first = outcome(message)
    for warmed in MESSAGES:  # every question and OPT record seen, in any order
        outcome(warmed)
    assert outcome(message) == first
    assert outcome(message) == first


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_a_query_reads_alike_from_any_buffer(kind: type) -> None:
    message = header(ar=1) + QUESTION + opt(4096)
    expected = parse_query(message)
    for _ in range(2):  # the question and OPT record then known
        assert parse_query(kind(message)) == expected
