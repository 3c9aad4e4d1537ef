"""Transfers: AXFR and IXFR messages that dnspython's own secondary code accepts, the
transfer ACL, TSIG, UDP, and one serial never meaning two contents."""

from __future__ import annotations

import base64
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.xfr
import dns.zone
import pytest

from srvdns.catalog import Catalog, CatalogHolder
from srvdns.config import parse
from srvdns.model import Service
from srvdns.nameserver import xfr
from srvdns.nameserver.transfercontent import ZoneContent, zone_records
from srvdns.nameserver.xfr import Transfers

from .dnstest import CONFIG, NOW, catalog, instance

SECRET = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OTHER = base64.b64encode(b"fedcba9876543210fedcba9876543210").decode()
KEYRING = dns.tsigkeyring.from_text({"xfr-key.": ("hmac-sha256", SECRET)})
WRONG = dns.tsigkeyring.from_text({"xfr-key.": ("hmac-sha256", OTHER)})
UNKNOWN = dns.tsigkeyring.from_text({"who.": ("hmac-sha256", SECRET)})


def config(**zone: Any) -> Any:
    document = {
        **CONFIG,
        "tsig_key": [{"name": "xfr-key", "secret": SECRET}],
        "zone": [
            {
                **CONFIG["zone"][0],
                "transfer_to": ["127.0.0.1", {"address": "10.9.0.0/16", "key": "xfr-key"}],
                **zone,
            },
            *CONFIG["zone"][1:],
        ],
    }
    return parse(document)


class Setup:
    def __init__(self, snapshot: Catalog | None = None, **zone: Any) -> None:
        loaded = config(**zone)
        self.holder = CatalogHolder(snapshot or catalog())
        self.now = NOW
        self.conflicts = 0
        self.transfers = Transfers(
            loaded.zone,
            self.holder,
            loaded.tsig_secrets(),
            clock=lambda: self.now,
            on_conflict=self._conflict,
        )

    def _conflict(self) -> None:
        self.conflicts += 1

    def ask(
        self, query: dns.message.Message, peer: str = "127.0.0.1", *, tcp: bool = True
    ) -> list[bytes]:
        return self.transfers.respond(query.to_wire(), peer, tcp=tcp, answer=lambda _: None)


def axfr_zone(setup: Setup, peer: str = "127.0.0.1") -> dns.zone.Zone:
    """The zone as dnspython's inbound transfer code builds it from our messages."""
    zone = dns.zone.Zone("service.local.", relativize=False)
    query = dns.message.make_query("service.local.", "AXFR")
    with dns.xfr.Inbound(zone, dns.rdatatype.AXFR) as inbound:
        for wire in setup.ask(query, peer):
            message = dns.message.from_wire(wire, xfr=True)
            done = inbound.process_message(message)
        assert done
    return zone


def texts(zone: dns.zone.Zone) -> set[str]:
    return {
        f"{name} {rdataset.ttl} {dns.rdatatype.to_text(rdataset.rdtype)} {rdata.to_text()}"
        for name, node in zone.nodes.items()
        for rdataset in node.rdatasets
        for rdata in rdataset
    }


def test_axfr_carries_the_healthy_instances_with_unleased_ttls() -> None:
    zone = texts(axfr_zone(Setup()))
    soa = "service.local. 60 SOA ns.service.local. hostmaster.service.local. 7 3600 600 86400 10"
    assert soa in zone
    # web-2's lease has 2.5 s left: queries get TTL 2, a secondary the zone's 5
    assert "web-2.instance.web.service.local. 5 A 10.0.0.2" in zone
    assert any(line.startswith("api.service.local. 30 SRV 1 5 9000 ") for line in zone)
    names = {line.split()[0] for line in zone}
    assert "web-5.instance.web.service.local." not in names  # its lease lapsed
    assert "web-4.instance.web.service.local." not in names  # critical
    assert not any(name.endswith("service.consul.") for name in names)


def test_a_lease_that_lapses_changes_the_zone_only_with_a_new_serial() -> None:
    setup = Setup()
    before = texts(axfr_zone(setup))
    setup.now = NOW + 3  # web-2's lease lapses; the registry has not recorded it yet
    assert texts(axfr_zone(setup)) == before
    assert setup.conflicts == 1
    setup.holder.swap(catalog(index=8))  # the health loop's write moves the index
    after = texts(axfr_zone(setup))
    assert not any("10.0.0.2" in line for line in after)
    assert any(" 8 3600 " in line for line in after)


def ixfr(setup: Setup, serial: int, *, tcp: bool = True, **kw: Any) -> list[dns.message.Message]:
    query = dns.message.make_query("service.local.", "IXFR", **kw)
    query.authority.append(
        dns.rrset.from_text("service.local.", 0, "IN", "SOA", f". . {serial} 0 0 0 0")
    )
    return [dns.message.from_wire(wire, xfr=True) for wire in setup.ask(query, tcp=tcp)]


def test_ixfr_brings_a_secondary_from_an_old_version_to_the_current_one() -> None:
    setup = Setup()
    old = axfr_zone(setup)
    extra = Service("new", (instance("new", "n1", "10.7.0.1", 80),))
    setup.holder.swap(catalog([extra], index=8))
    setup.transfers.refresh()
    gone = [s for s in catalog([extra]).services.values() if s.name != "cache"]
    setup.holder.swap(Catalog.build([Service(v.name, v.instances) for v in gone], index=9))
    current = axfr_zone(setup)
    zone = old
    messages = ixfr(setup, 7)
    assert messages[0].answer[0].rdtype == dns.rdatatype.SOA
    with dns.xfr.Inbound(zone, dns.rdatatype.IXFR, serial=7) as inbound:
        for message in messages:
            done = inbound.process_message(message)
    assert done
    assert texts(zone) == texts(current)
    single = ixfr(setup, 9)
    assert [len(m.answer) for m in single] == [1]
    assert ixfr(setup, 12)[0].answer[0][0].serial == 9  # a newer client: our SOA only


def test_ixfr_from_a_serial_the_journal_lacks_is_a_full_transfer() -> None:
    setup = Setup()
    (message,) = ixfr(setup, 3)
    assert message.answer[0][0].serial == 7
    assert message.answer[1].rdtype != dns.rdatatype.SOA  # AXFR layout, not a delta


def test_ixfr_over_udp_is_the_delta_when_it_fits_else_the_soa() -> None:
    setup = Setup()
    setup.transfers.refresh()
    extra = Service("new", (instance("new", "n1", "10.7.0.1", 80),))
    setup.holder.swap(catalog([extra], index=8))
    (fits,) = ixfr(setup, 7, tcp=False, use_edns=0, payload=1232)
    assert sum(len(rrset) for rrset in fits.answer) > 4
    (whole,) = ixfr(setup, 2, tcp=False)  # a full transfer never fits
    assert [rrset.rdtype for rrset in whole.answer] == [dns.rdatatype.SOA]


def test_axfr_over_udp_says_use_tcp() -> None:
    (wire,) = Setup().ask(dns.message.make_query("service.local.", "AXFR"), tcp=False)
    reply = dns.message.from_wire(wire)
    assert reply.flags & dns.flags.TC
    assert not reply.answer


@pytest.mark.parametrize(
    ("qname", "peer", "rcode"),
    [
        ("service.local.", "127.0.0.2", dns.rcode.REFUSED),  # not in transfer_to
        ("service.local.", "10.9.1.1", dns.rcode.REFUSED),  # its entry needs the key
        ("service.consul.", "127.0.0.1", dns.rcode.REFUSED),  # no transfer_to at all
        ("web.service.local.", "127.0.0.1", dns.rcode.NOTAUTH),  # not a zone
        ("example.org.", "127.0.0.1", dns.rcode.NOTAUTH),
    ],
)
def test_transfers_outside_the_acl_are_refused(qname: str, peer: str, rcode: int) -> None:
    for rdtype in ("AXFR", "IXFR"):
        for tcp in (True, False):
            (wire,) = Setup().ask(dns.message.make_query(qname, rdtype), peer, tcp=tcp)
            reply = dns.message.from_wire(wire)
            assert reply.rcode() == rcode
            assert not reply.answer


def signed_axfr(keyring: Any, keyname: str = "xfr-key.") -> dns.message.Message:
    query = dns.message.make_query("service.local.", "AXFR")
    query.use_tsig(keyring, keyname=keyname)
    return query


def test_a_signed_transfer_is_signed_message_by_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xfr, "MESSAGE_SIZE", 1500)
    many = Service(
        "many",
        tuple(instance("many", f"m{i}", f"10.8.{i // 250}.{i % 250}", 80) for i in range(100)),
    )
    setup = Setup(catalog([many]))
    query = signed_axfr(KEYRING)
    wires = setup.ask(query, "10.9.3.4")
    assert len(wires) > 2
    context = None
    mac = query.mac
    records = 0
    for wire in wires:
        message = dns.message.from_wire(
            wire, keyring=KEYRING, request_mac=mac, xfr=True, tsig_ctx=context, multi=True
        )
        assert message.had_tsig
        context, mac = message.tsig_ctx, message.mac
        records += sum(len(rrset) for rrset in message.answer)
    assert records > 100


@pytest.mark.parametrize(
    ("keyring", "keyname", "error"),
    [(WRONG, "xfr-key.", dns.rcode.BADSIG), (UNKNOWN, "who.", dns.rcode.BADKEY)],
)
def test_a_bad_signature_gets_notauth_and_nothing_else(
    keyring: Any, keyname: str, error: int
) -> None:
    (wire,) = Setup().ask(signed_axfr(keyring, keyname), "10.9.3.4")
    reply = dns.message.from_wire(wire, keyring=False)
    assert reply.rcode() == dns.rcode.NOTAUTH
    assert reply.tsig is not None
    assert reply.tsig[0].error == error
    assert reply.tsig[0].mac == b""
    assert not reply.answer


def test_a_signed_soa_query_gets_a_signed_ordinary_answer() -> None:
    setup = Setup()
    seen: list[bytes] = []
    query = dns.message.make_query("service.local.", "SOA")
    query.use_tsig(KEYRING, keyname="xfr-key.")

    def answer(wire: bytes) -> bytes:
        seen.append(wire)
        reply = dns.message.make_response(dns.message.from_wire(wire))
        return reply.to_wire()

    wire = query.to_wire()
    assert setup.transfers.wants(wire)
    (signed,) = setup.transfers.respond(wire, "192.0.2.1", tcp=False, answer=answer)
    reply = dns.message.from_wire(signed, keyring=KEYRING, request_mac=query.mac)
    assert reply.had_tsig
    assert not dns.message.from_wire(seen[0]).had_tsig  # the answer logic got it unsigned


def test_wants_only_transfers_and_signed_messages() -> None:
    transfers = Setup().transfers
    assert transfers.wants(dns.message.make_query("service.local.", "AXFR").to_wire())
    assert transfers.wants(dns.message.make_query("x.", "IXFR").to_wire())
    assert not transfers.wants(dns.message.make_query("service.local.", "SOA").to_wire())
    assert not transfers.wants(b"\x00" * 5)


def test_content_built_service_by_service_equals_a_fresh_build() -> None:
    zone = config().zone[0]
    content = ZoneContent(zone, config().zone)
    snapshot = catalog()
    content.build(snapshot, NOW)
    changes = [
        [Service("new", (instance("new", "n1", "10.7.0.1", 80),))],
        [Service("web", ())],
        [Service("api", (instance("api", "Api.1", "10.0.1.9", 9001),))],
        [Service("new", ())],
    ]
    for index, changed in enumerate(changes, start=8):
        snapshot = snapshot.patched(changed, index=index)
        for now in (NOW, NOW + 60):  # before and after the leases lapse
            assert content.build(snapshot, now) == zone_records(
                zone, snapshot, now, other_zones=config().zone
            )


def test_an_edns_query_gets_opt_in_the_first_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xfr, "MESSAGE_SIZE", 700)
    query = dns.message.make_query("service.local.", "AXFR", use_edns=0)
    wires = Setup().ask(query)
    assert len(wires) > 1
    messages = [dns.message.from_wire(wire, xfr=True) for wire in wires]
    assert messages[0].edns == 0
    assert all(m.edns == -1 for m in messages[1:])
    (refused,) = Setup().ask(query, "192.0.2.9")
    assert dns.message.from_wire(refused).edns == 0
