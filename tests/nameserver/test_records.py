"""The record builders, read back with dnspython."""

from __future__ import annotations

import dns.message
from dnslib import DNSRecord  # type: ignore[import-untyped]

from srvdns.nameserver import records

from .dnstest import lines

OWNER = records.name("web.service.local")


def text(*rrs: object) -> list[str]:
    wire = bytes(DNSRecord(rr=list(rrs)).pack())
    return lines(dns.message.from_wire(wire, one_rr_per_rrset=True).answer)


def test_builders() -> None:
    target = records.name("web-1.instance.web.service.local.")
    assert text(
        records.srv(OWNER, 5, 1, 2, 8080, target),
        records.address(OWNER, 5, "10.0.0.1"),
        records.address(OWNER, 5, "2001:db8::1"),
        records.txt(OWNER, 5, ["a=1", "b=2"]),
        records.ns(OWNER, 5, records.name("ns.service.local")),
    ) == [
        "web.service.local. 5 IN A 10.0.0.1",
        "web.service.local. 5 IN AAAA 2001:db8::1",
        "web.service.local. 5 IN NS ns.service.local.",
        "web.service.local. 5 IN SRV 1 2 8080 web-1.instance.web.service.local.",
        'web.service.local. 5 IN TXT "a=1" "b=2"',
    ]


def test_txt_strings_longer_than_255_octets_are_split() -> None:
    [line] = text(records.txt(OWNER, 5, ["k=" + "v" * 300]))
    assert line == f'web.service.local. 5 IN TXT "k={"v" * 253}" "{"v" * 47}"'


def test_name_keeps_underscores_and_ignores_the_root_dot() -> None:
    assert records.name("_web._tcp.service.local.").label == (
        b"_web",
        b"_tcp",
        b"service",
        b"local",
    )
    assert records.name("").label == ()


def test_ipv4_mapped_ipv6_addresses_in_either_spelling() -> None:
    # Python 3.13 writes these dotted; dnslib's own parser cannot read that form
    for spelling in ("::ffff:10.1.2.3", "::ffff:a01:203"):
        assert text(records.address(OWNER, 5, spelling)) == [
            "web.service.local. 5 IN AAAA ::ffff:10.1.2.3"
        ]
