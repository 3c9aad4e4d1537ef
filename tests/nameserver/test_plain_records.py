"""The slotted records of service answers against the dnslib records they stand for."""

from __future__ import annotations

import ipaddress
import random
import socket

import pytest
from dnslib import (  # type: ignore[import-untyped]
    AAAA,
    QTYPE,
    RD,
    RR,
    SRV,
    TXT,
    A,
    DNSBuffer,
    DNSError,
    DNSHeader,
    DNSLabel,
    DNSQuestion,
    DNSRecord,
)

from srvdns.nameserver import records
from srvdns.nameserver.packing import Packer
from srvdns.nameserver.wire import parse_query

from .dnstest import query

OWNER = records.name("Web.service.local")
TARGET = records.name("web-1.instance.web.service.local")


def dnslib_pairs() -> list[tuple[RR, RR]]:
    """(built here, built by dnslib's own validating constructors) for each hot type."""
    return [
        (
            records.a(OWNER, 5, "10.0.0.1"),
            RR(OWNER, QTYPE.A, ttl=5, rdata=A("10.0.0.1")),
        ),
        (
            records.aaaa(OWNER, 4_294_967_295, "2001:db8::1"),
            RR(OWNER, QTYPE.AAAA, ttl=4_294_967_295, rdata=AAAA("2001:db8::1")),
        ),
        (
            records.srv(OWNER, 0, 1, 65535, 8080, TARGET),
            RR(OWNER, QTYPE.SRV, ttl=0, rdata=SRV(1, 65535, 8080, TARGET)),
        ),
        (
            records.a(TARGET, 7, "192.168.1.254"),
            RR(TARGET, QTYPE.A, ttl=7, rdata=A("192.168.1.254")),
        ),
        (
            records.txt(OWNER, 5, ["a=1", "b=" + "x" * 300]),
            RR(OWNER, QTYPE.TXT, ttl=5, rdata=TXT([b"a=1", b"b=" + b"x" * 253, b"x" * 47])),
        ),
    ]


def test_plain_records_are_dnslib_records_with_the_same_fields() -> None:
    for plain, built in dnslib_pairs():
        assert isinstance(plain, RR)
        assert isinstance(plain.rdata, type(built.rdata))
        assert (plain.rname, plain.rtype, plain.rclass, plain.ttl) == (
            built.rname,
            built.rtype,
            built.rclass,
            built.ttl,
        )
        assert plain.toZone() == built.toZone()


def test_plain_records_compare_equal_to_dnslib_ones_either_way() -> None:
    for plain, built in dnslib_pairs():
        assert plain == built
        assert built == plain
        assert plain.rdata == built.rdata
        assert built.rdata == plain.rdata
        assert not (plain != built)  # noqa: SIM202 - dnslib's own __ne__
    a, aaaa = records.a(OWNER, 5, "10.0.0.1"), records.a(OWNER, 5, "10.0.0.2")
    assert a != aaaa
    assert records.srv(OWNER, 5, 0, 1, 80, TARGET) != RR(
        OWNER, QTYPE.SRV, ttl=5, rdata=SRV(0, 1, 81, TARGET)
    )
    assert a.rdata != AAAA("::1")


def test_plain_records_pack_as_dnslib_packs_dnslib_ones() -> None:
    plain = DNSRecord(DNSHeader(id=1), rr=[p for p, _ in dnslib_pairs()]).pack()
    built = DNSRecord(DNSHeader(id=1), rr=[b for _, b in dnslib_pairs()]).pack()
    assert plain == built


def test_a_reply_of_plain_records_is_octet_for_octet_that_of_dnslib_records() -> None:
    parsed = parse_query(query("Web.service.local", "SRV"))

    def reply(index: int) -> bytes:
        packer = Packer(parsed.msg_id, 0x8400, parsed.question, limit=65535)
        pairs = dnslib_pairs()
        assert packer.add_all(1, [pairs[2][index], pairs[0][index], pairs[4][index]])
        assert packer.add_all(3, [pairs[3][index]])
        assert packer.add_all(3, [pairs[1][index]])
        return packer.finish()

    assert reply(0) == reply(1)


def test_the_direct_path_packs_what_dnslib_s_generic_packing_does() -> None:
    # the same record with its RDATA as opaque octets (dnslib's ``RD``) takes dnslib's
    # generic path: owner, fixed fields, RDATA, the RDLENGTH patched in afterwards
    parsed = parse_query(query("Web.service.local", "A"))
    for pair in dnslib_pairs():
        for rr in pair:
            rdata = DNSBuffer()
            rr.rdata.pack(rdata)
            opaque = RR(rr.rname, rr.rtype, ttl=rr.ttl, rdata=RD(bytes(rdata.data)))
            direct = Packer(parsed.msg_id, 0x8400, parsed.question, limit=65535)
            generic = Packer(parsed.msg_id, 0x8400, parsed.question, limit=65535)
            assert direct.add(1, rr)
            assert generic.add(1, opaque)
            assert direct.finish() == generic.finish()


@pytest.mark.parametrize("ttl", [-1, 2**32, 1.5, "5"])
def test_a_ttl_out_of_range_is_dnslib_s_error(ttl: object) -> None:
    with pytest.raises(ValueError, match="must be between") as plain:
        records.a(OWNER, ttl, "10.0.0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be between") as built:
        RR(OWNER, QTYPE.A, ttl=ttl, rdata=A("10.0.0.1"))
    assert str(plain.value) == str(built.value)
    for build in (records.aaaa, records.address):
        with pytest.raises(ValueError, match="'ttl' must be between 0-4294967295"):
            build(OWNER, ttl, "::1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'ttl' must be between 0-4294967295"):
        records.txt(OWNER, ttl, ["a=1"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'ttl' must be between 0-4294967295"):
        records.rrs(OWNER, QTYPE.A, ttl, [records.a_data("10.0.0.1")])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [("port", 65536), ("port", -1), ("priority", 70000), ("weight", -5), ("port", "80")],
)
def test_srv_fields_out_of_range_are_dnslib_s_errors(field: str, value: object) -> None:
    fields: dict[str, object] = {"priority": 0, "weight": 1, "port": 8080, field: value}
    with pytest.raises(ValueError, match="must be between") as plain:
        records.srv(OWNER, 5, fields["priority"], fields["weight"], fields["port"], TARGET)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be between") as built:
        SRV(fields["priority"], fields["weight"], fields["port"], TARGET)
    assert str(plain.value) == str(built.value)
    with pytest.raises(ValueError, match="must be between") as data:
        records.srv_data(fields["priority"], fields["weight"], fields["port"], TARGET)  # type: ignore[arg-type]
    assert str(data.value) == str(built.value)
    with pytest.raises(ValueError, match="'ttl' must be between"):
        records.srv(OWNER, -1, 0, 1, 80, TARGET)


def test_an_rrset_of_shared_rdata_is_the_records_built_one_by_one() -> None:
    srv_data = [records.srv_data(0, 1, 80, TARGET), records.srv_data(1, 0, 81, TARGET)]
    rrset = records.rrs(OWNER, QTYPE.SRV, 7, srv_data)
    assert rrset == [
        records.srv(OWNER, 7, 0, 1, 80, TARGET),
        records.srv(OWNER, 7, 1, 0, 81, TARGET),
    ]
    assert [rr.rdata for rr in rrset] == srv_data
    addresses = records.rrs(OWNER, QTYPE.AAAA, 0, [records.aaaa_data("2001:db8::1")])
    assert addresses == [records.aaaa(OWNER, 0, "2001:db8::1")]
    assert [str(rr) for rr in addresses] == [str(records.aaaa(OWNER, 0, "2001:db8::1"))]


@pytest.mark.parametrize("ip", ["10.0.0.256", "10.0.0", "010.0.0.1", "::1", "web", ""])
def test_a_bad_ipv4_address_is_a_value_error(ip: str) -> None:
    with pytest.raises(ipaddress.AddressValueError):
        records.a(OWNER, 5, ip)


@pytest.mark.parametrize("ip", ["2001:db8::g", "1:2:3:4:5:6:7:8:9", "10.0.0.1", ":::"])
def test_a_bad_ipv6_address_is_a_value_error(ip: str) -> None:
    with pytest.raises(ipaddress.AddressValueError):
        records.aaaa(OWNER, 5, ip)


def test_a_bad_address_fails_every_time_and_a_good_one_is_parsed_once() -> None:
    for _ in range(3):
        with pytest.raises(ipaddress.AddressValueError):
            records.a(OWNER, 5, "10.0.0.300")
    first, second = records.a(OWNER, 5, "10.9.8.7"), records.a(TARGET, 9, "10.9.8.7")
    assert first.rdata is second.rdata
    assert first.rdata.wire == socket.inet_pton(socket.AF_INET, "10.9.8.7")
    assert first.rdata.data == (10, 9, 8, 7)


def test_srv_target_given_as_text_becomes_a_name() -> None:
    rr = records.srv(OWNER, 5, 0, 1, 80, "web-1.instance.web.service.local")  # type: ignore[arg-type]
    assert isinstance(rr.rdata.target, DNSLabel)
    assert rr.rdata.target == TARGET


def test_a_txt_string_dnslib_cannot_pack_is_still_refused_when_packing() -> None:
    rr = records.txt(OWNER, 5, ["a=1"])
    rr.rdata.data = [b"x" * 256]
    parsed = parse_query(query("Web.service.local", "TXT"))
    packer = Packer(parsed.msg_id, 0x8400, parsed.question, limit=65535)
    with pytest.raises(DNSError, match="TXT record too long"):
        packer.add(1, rr)
    assert packer.add(1, records.txt(OWNER, 5, ["a=1"])), "a failed add changes nothing"


def test_names_sharing_suffixes_are_compressed_as_dnslib_compresses_them() -> None:
    # without SRV targets (which dnslib does not remember) and far below 16 KiB, our
    # compression and dnslib's write the same octets: longest known suffix as a pointer
    labels = ["a", "B", "instance", "web", "api"]
    shapes = random.Random(0)
    parsed = parse_query(query("web.service.local", "A"))
    for _ in range(100):
        owners = [
            records.name(
                ".".join([*shapes.choices(labels, k=shapes.randint(0, 3)), "service.local"])
            )
            for _ in range(6)
        ]
        packer = Packer(parsed.msg_id, 0x8400, parsed.question, limit=65535)
        assert packer.add_all(1, [records.a(owner, 5, "10.0.0.1") for owner in owners])
        ours = packer.finish()
        theirs = DNSRecord(
            DNSHeader(id=parsed.msg_id, qr=1, aa=1),
            q=DNSQuestion("web.service.local", QTYPE.A),
            rr=[RR(owner, QTYPE.A, ttl=5, rdata=A("10.0.0.1")) for owner in owners],
        ).pack()
        assert ours[12:] == bytes(theirs[12:])
