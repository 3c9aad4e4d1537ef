"""zonefile.render: RRsets as RFC 1035 master-file text, read back by dnspython."""

from __future__ import annotations

import textwrap

import dns.rdatatype
import dns.zone
from dnslib import QTYPE, RD, RR, TXT, A, DNSLabel  # type: ignore[import-untyped]

from srvdns import __version__, zonefile
from srvdns.catalog import Catalog
from srvdns.config import ZoneConfig, parse
from srvdns.export import export_text
from srvdns.model import Instance, Service
from srvdns.nameserver.zonecontent import RRset, zone_rrsets

NOW = 1_700_000_000.0

CONFIG = parse(
    {
        "zone": [
            {
                "name": "Example.Test",
                "ttl": 5,
                "negative_ttl": 3,
                "soa": {"ttl": 60},
                "ns": [
                    {"name": "ns.example.test", "address": ["192.0.2.53", "2001:db8::53"]},
                    {"name": "ns.example.net"},
                ],
            }
        ]
    }
)
ZONE: ZoneConfig = CONFIG.zone[0]

CATALOG = Catalog.build(
    [
        Service(
            "web",
            (
                Instance(
                    "web",
                    "web-1",
                    "192.0.2.1",
                    8080,
                    tags=("v1",),
                    meta=(("note", 'say "hi" \\ é'),),
                    weight=10,
                ),
                # 2.5 s left on its lease: every RRset holding it has TTL 2
                Instance(
                    "web",
                    "Web_2",
                    "2001:db8::2",
                    8443,
                    priority=1,
                    ttl=30,
                    last_heartbeat=NOW - 27.5,
                ),
                # lease lapsed: not in the zone
                Instance("web", "web-3", "192.0.2.3", 8080, ttl=10, last_heartbeat=NOW - 20),
            ),
        )
    ],
    index=42,
)

EXPECTED = """\
$ORIGIN example.test.
$TTL 5
@                           60 IN SOA  ns.example.test. hostmaster.example.test. 42 3600 600 86400 3
@                           60 IN NS   ns.example.net.
@                           60 IN NS   ns.example.test.
_web._tcp                    5 IN A    192.0.2.1
_web._tcp                    5 IN TXT  "note=say \\"hi\\" \\\\ \\195\\169"
_web._tcp                    2 IN AAAA 2001:db8::2
_web._tcp                    2 IN SRV  0 10 8080 web-1.instance.web.example.test.
_web._tcp                    2 IN SRV  1 1 8443 web-2-4445f9b0.instance.web.example.test.
_web._udp                    5 IN A    192.0.2.1
_web._udp                    5 IN TXT  "note=say \\"hi\\" \\\\ \\195\\169"
_web._udp                    2 IN AAAA 2001:db8::2
_web._udp                    2 IN SRV  0 10 8080 web-1.instance.web.example.test.
_web._udp                    2 IN SRV  1 1 8443 web-2-4445f9b0.instance.web.example.test.
_web._v1                     5 IN A    192.0.2.1
_web._v1                     5 IN TXT  "note=say \\"hi\\" \\\\ \\195\\169"
_web._v1                     5 IN SRV  0 10 8080 web-1.instance.web.example.test.
ns                          60 IN A    192.0.2.53
ns                          60 IN AAAA 2001:db8::53
web                          5 IN A    192.0.2.1
web                          5 IN TXT  "note=say \\"hi\\" \\\\ \\195\\169"
web                          2 IN AAAA 2001:db8::2
web                          2 IN SRV  0 10 8080 web-1.instance.web.example.test.
web                          2 IN SRV  1 1 8443 web-2-4445f9b0.instance.web.example.test.
web-1.instance.web           5 IN A    192.0.2.1
web-1.instance.web           5 IN TXT  "note=say \\"hi\\" \\\\ \\195\\169"
web-2-4445f9b0.instance.web  2 IN AAAA 2001:db8::2
v1.web                       5 IN A    192.0.2.1
v1.web                       5 IN TXT  "note=say \\"hi\\" \\\\ \\195\\169"
v1.web                       5 IN SRV  0 10 8080 web-1.instance.web.example.test.
"""


def rendered() -> str:
    return zonefile.render(ZONE.name, zone_rrsets(ZONE, CATALOG, NOW), default_ttl=ZONE.ttl)


def test_a_fixture_catalog_as_a_master_file() -> None:
    assert rendered() == EXPECTED


def test_dnspython_reads_back_every_record() -> None:
    zone = dns.zone.from_text(rendered(), origin="example.test.", relativize=False)
    zone.check_origin()
    got = sorted(
        f"{name} {rdataset.ttl} {dns.rdatatype.to_text(rdataset.rdtype)} {rdata.to_text()}"
        for name, node in zone.nodes.items()
        for rdataset in node.rdatasets
        for rdata in rdataset
    )
    want = sorted(
        f"{rrset.owner} {rrset.ttl} {QTYPE[rrset.rdtype]} {zonefile.rdata(rr)}"
        for rrset in zone_rrsets(ZONE, CATALOG, NOW)
        for rr in rrset.records
    )
    assert got == want
    txt = zone.find_rdataset("web.example.test.", "TXT")
    assert [s.decode() for rdata in txt for s in rdata.strings] == ['note=say "hi" \\ é']


def test_export_text_starts_with_what_it_is() -> None:
    text = export_text(CONFIG, ZONE, CATALOG, NOW)
    assert text.splitlines()[:2] == [
        f"; zone example.test, serial 42, exported by srvdns {__version__}",
        "; at 2023-11-14T22:13:20Z: the healthy instances of that moment, "
        "with the TTLs DNS gave then",
    ]
    assert text.endswith(EXPECTED)


def test_an_empty_catalog_is_soa_and_ns_only() -> None:
    text = zonefile.render(ZONE.name, zone_rrsets(ZONE, Catalog(), NOW), default_ttl=5)
    assert [line.split()[3] for line in text.splitlines()[2:]] == ["SOA", "NS", "NS", "A", "AAAA"]


def test_character_strings_escape_quotes_backslashes_and_non_ascii() -> None:
    assert zonefile.character_string(b"plain text") == '"plain text"'
    assert zonefile.character_string(b'a"b\\c;d') == '"a\\"b\\\\c;d"'
    assert zonefile.character_string("é\t".encode()) == '"\\195\\169\\009"'
    assert zonefile.character_string(b"") == '""'


def test_names_escape_special_octets() -> None:
    assert zonefile.name_text([b"_web", b"_tcp", b"example"]) == "_web._tcp.example."
    assert zonefile.name_text([b"a.b", b"c d", b"@$(;)", b"\x00\xff"]) == (
        "a\\.b.c\\032d.\\@\\$\\(\\;\\).\\000\\255."
    )
    assert zonefile.name_text([]) == "."


def test_owner_names_are_relative_and_outside_names_absolute() -> None:
    rrsets = [
        RRset(
            DNSLabel("example.test"),
            QTYPE.A,
            1,
            (RR("example.test", QTYPE.A, rdata=A("192.0.2.9")),),
        ),
        RRset(
            DNSLabel("a.EXAMPLE.test"),
            QTYPE.TXT,
            1,
            (RR("a.EXAMPLE.test", QTYPE.TXT, rdata=TXT(["x"])),),
        ),
        RRset(
            DNSLabel("other.test"), QTYPE.A, 1, (RR("other.test", QTYPE.A, rdata=A("192.0.2.8")),)
        ),
    ]
    assert zonefile.render("example.test", rrsets, default_ttl=9) == textwrap.dedent(
        """\
        $ORIGIN example.test.
        $TTL 9
        @           1 IN A   192.0.2.9
        a           1 IN TXT "x"
        other.test. 1 IN A   192.0.2.8
        """
    )


def test_types_without_a_presentation_format_use_the_generic_one() -> None:
    rr = RR("x.example.test", 65280, rdata=RD(b"\x01\x02"))
    assert zonefile.rdata(rr) == "\\# 2 0102"
    text = zonefile.render("example.test", [RRset(rr.rname, 65280, 1, (rr,))], default_ttl=1)
    assert text.splitlines()[-1] == "x 1 IN TYPE65280 \\# 2 0102"
    dns.zone.from_text("@ 1 IN SOA a. b. 1 1 1 1 1\n@ 1 IN NS a.\n" + text, origin="example.test.")
