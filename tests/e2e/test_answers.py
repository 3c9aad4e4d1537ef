"""Every name form and rcode, asked of a real srvdns over UDP and TCP with dnspython and dig."""

from __future__ import annotations

import socket
import struct

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest
from e2e.harness import SrvdnsProcess

ZONE = """\
[[zone]]
name = "service.local"
ttl = 5
negative_ttl = 3
service_ttl = { api = "7s" }

[zone.soa]
ttl = "1m"

[[zone.ns]]
name = "ns.service.local"
address = ["127.0.0.1", "::1"]

[[zone.service]]
name = "postgres"
instances = [
    { id = "pg-1", address = "10.0.0.5", port = 5432, tags = ["primary"], meta = { v = "16" } },
    { id = "pg-2", address = "10.0.0.6", port = 5432, tags = ["replica"] },
]

[[zone]]
name = "service.consul"
"""


@pytest.fixture
def server(launch) -> SrvdnsProcess:  # type: ignore[no-untyped-def]
    proc = launch(ZONE)
    with proc.http() as http:
        for body, ident in (
            ({"address": "10.0.1.1", "port": 80, "tags": ["v1"], "weight": 3}, "api-1"),
            ({"address": "2001:db8::1", "port": 80, "tags": ["v2"], "priority": 1}, "API_2"),
        ):
            r = http.put(f"/v1/services/api/instances/{ident}", json=body)
            assert r.status_code in (200, 201), r.text
    return proc


def rrs(section: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(
        f"{rr.name} {rr.ttl} {dns.rdatatype.to_text(rr.rdtype)} {r}" for rr in section for r in rr
    )


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_service_forms(server: SrvdnsProcess, tcp: bool) -> None:
    srv = server.query("postgres.service.local", "SRV", tcp=tcp)
    assert srv.flags & dns.flags.AA
    assert rrs(srv.answer) == [
        "postgres.service.local. 5 SRV 0 1 5432 pg-1.instance.postgres.service.local.",
        "postgres.service.local. 5 SRV 0 1 5432 pg-2.instance.postgres.service.local.",
    ]
    assert rrs(srv.additional) == [
        "pg-1.instance.postgres.service.local. 5 A 10.0.0.5",
        "pg-2.instance.postgres.service.local. 5 A 10.0.0.6",
    ]
    tagged = server.query("primary.postgres.service.local", "A", tcp=tcp)
    assert rrs(tagged.answer) == ["primary.postgres.service.local. 5 A 10.0.0.5"]
    rfc2782 = server.query("_postgres._tcp.service.local", "SRV", tcp=tcp)
    assert len(rrs(rfc2782.answer)) == 2
    by_tag = server.query("_postgres._replica.service.local", "SRV", tcp=tcp)
    assert rrs(by_tag.answer) == [
        "_postgres._replica.service.local. 5 SRV 0 1 5432 pg-2.instance.postgres.service.local."
    ]
    txt = server.query("postgres.service.local", "TXT", tcp=tcp)
    assert rrs(txt.answer) == ['postgres.service.local. 5 TXT "v=16"']
    target = server.query("pg-2.instance.postgres.service.local", "A", tcp=tcp)
    assert rrs(target.answer) == ["pg-2.instance.postgres.service.local. 5 A 10.0.0.6"]


def test_registered_service_ttl_override_and_second_zone(server: SrvdnsProcess) -> None:
    srv = server.query("api.service.local", "SRV")
    lines = rrs(srv.answer)
    assert len(lines) == 2
    assert all(" 7 SRV " in line for line in lines)
    targets = sorted(r.target.to_text() for rr in srv.answer for r in rr)
    assert targets[0] == "api-1.instance.api.service.local."
    assert targets[1].startswith("api-2-")
    assert targets[1].endswith(".instance.api.service.local.")
    aaaa = server.query(targets[1], "AAAA")
    assert [r.to_text() for rr in aaaa.answer for r in rr] == ["2001:db8::1"]
    consul = server.query("v1.api.service.consul", "A")
    assert rrs(consul.answer) == ["v1.api.service.consul. 5 A 10.0.1.1"]  # override is per zone


def test_apex_soa_ns_and_glue(server: SrvdnsProcess) -> None:
    soa = server.query("service.local", "SOA")
    (rrset,) = soa.answer
    assert rrset.ttl == 60
    (record,) = rrset
    assert record.mname.to_text() == "ns.service.local."
    assert record.minimum == 3
    ns = server.query("service.local", "NS")
    assert rrs(ns.answer) == ["service.local. 60 NS ns.service.local."]
    assert rrs(ns.additional) == [
        "ns.service.local. 60 A 127.0.0.1",
        "ns.service.local. 60 AAAA ::1",
    ]


@pytest.mark.parametrize(
    ("qname", "rdtype", "rcode", "answered"),
    [
        ("nothing.service.local", "SRV", dns.rcode.NXDOMAIN, False),
        ("nope.postgres.service.local", "A", dns.rcode.NXDOMAIN, False),
        ("postgres.service.local", "AAAA", dns.rcode.NOERROR, False),
        ("instance.postgres.service.local", "A", dns.rcode.NOERROR, False),
        ("_tcp.service.local", "SRV", dns.rcode.NOERROR, False),
        ("service.local", "A", dns.rcode.NOERROR, False),
    ],
)
def test_negative_answers_carry_soa(
    server: SrvdnsProcess, qname: str, rdtype: str, rcode: int, answered: bool
) -> None:
    reply = server.query(qname, rdtype)
    assert reply.rcode() == rcode
    assert reply.flags & dns.flags.AA
    assert bool(reply.answer) is answered
    (soa,) = reply.authority
    assert soa.rdtype == dns.rdatatype.SOA
    assert soa.ttl == 3  # min(SOA TTL 60, negative_ttl 3)


def test_outside_every_zone_is_refused(server: SrvdnsProcess) -> None:
    reply = server.query("example.com", "A")
    assert reply.rcode() == dns.rcode.REFUSED
    assert not reply.flags & dns.flags.AA
    assert not reply.answer


def test_case_is_echoed(server: SrvdnsProcess) -> None:
    reply = server.query("PoStGrEs.Service.LOCAL", "SRV")
    assert reply.question[0].name.to_text() == "PoStGrEs.Service.LOCAL."
    assert reply.answer[0].name.to_text() == "PoStGrEs.Service.LOCAL."
    assert len(reply.answer[0]) == 2


def test_dig_negative_and_refused(server: SrvdnsProcess, dig: str) -> None:
    out = server.dig("nothing.service.local", "A")
    assert "status: NXDOMAIN" in out
    assert "service.local.\t\t3\tIN\tSOA\tns.service.local. hostmaster.service.local." in out
    assert "status: REFUSED" in server.dig("example.com", "A")
    tcp = server.dig("+tcp", "postgres.service.local", "SRV")
    assert "ANSWER: 2" in tcp
    assert "ADDITIONAL: 3" in tcp  # two A records and the OPT record


def test_malformed_packets_do_not_hurt(server: SrvdnsProcess) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        sock.connect((server.host, server.port))
        # A header with one question and nothing after it: FORMERR, same ID.
        sock.send(struct.pack("!6H", 0xBEEF, 0x0100, 1, 0, 0, 0))
        reply = sock.recv(4096)
        assert reply[:2] == b"\xbe\xef"
        assert reply[3] & 0x0F == dns.rcode.FORMERR
        # Too short to hold a header, and a response (QR=1): no reply at all.
        sock.send(b"\x01\x02\x03")
        sock.send(
            dns.message.make_response(dns.message.make_query("a.service.local", "A")).to_wire()
        )
        with pytest.raises(TimeoutError):
            sock.recv(4096)
    with socket.create_connection((server.host, server.port), timeout=3) as conn:
        conn.sendall(b"\x00\x05hello")
        conn.settimeout(3)
        conn.recv(4096)  # FORMERR or close, but never a hang of the whole server
    assert server.query("postgres.service.local", "SRV").rcode() == dns.rcode.NOERROR
    assert server.process.poll() is None


def test_ipv6_listener(launch) -> None:  # type: ignore[no-untyped-def]
    proc = launch(ZONE, dns_listen='["127.0.0.1:0", "[::1]:0"]')
    assert len(proc.dns) == 2
    reply = proc.query("postgres.service.local", "SRV", where=proc.dns[1])
    assert proc.dns[1][0] == "::1"
    assert len(reply.answer[0]) == 2
