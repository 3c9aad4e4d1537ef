"""zone_rrsets: every RRset of a zone, exactly what queries get, nothing they do not."""

from __future__ import annotations

import itertools
import random

import dns.message
from dnslib import QTYPE, DNSRecord  # type: ignore[import-untyped]

from srvdns.catalog import Catalog
from srvdns.model import Service
from srvdns.nameserver import names, records
from srvdns.nameserver.authority import Outcome, lookup
from srvdns.nameserver.zonecontent import RDTYPES, RRset, owner_names, zone_rrsets

from .dnstest import NOW, ask, catalog, instance, lines, make_handler, zones

SERVICE_LOCAL, SERVICE_CONSUL, LOCAL = zones()


def text(rrset: RRset) -> list[str]:
    wire = bytes(DNSRecord(rr=list(rrset.records)).pack())
    return lines(dns.message.from_wire(wire, one_rr_per_rrset=True).answer)


def content(zone: object = SERVICE_LOCAL, snapshot: Catalog | None = None) -> dict[str, RRset]:
    rrsets = zone_rrsets(zone, snapshot or catalog(), NOW, other_zones=zones())  # type: ignore[arg-type]
    return {f"{rrset.owner} {QTYPE[rrset.rdtype]}": rrset for rrset in rrsets}


def test_every_rrset_is_the_answer_a_query_gets() -> None:
    handler = make_handler()
    found = content()
    assert len(found) > 40
    for key, rrset in found.items():
        owner, rdtype = key.split()
        reply = ask(handler, owner, rdtype)
        assert lines(reply.answer) == text(rrset), key


def test_no_name_that_answers_is_missing() -> None:
    """Every name built from the catalog's words, up to three labels, routed and looked up
    like a query: whatever has data must be in the zone, with that data."""
    snapshot = catalog()
    words = {"instance", "_tcp", "_udp", "ns", "nope", "_nope", ""}
    for view in snapshot.services.values():
        words |= {view.name, f"_{view.name}", *view.targets}
        words |= {t for i in view.instances for t in i.tags} | {
            f"_{t}" for i in view.instances for t in i.tags
        }
    found = content()
    checked = 0
    for relative in itertools.chain(
        ((a,) for a in words),
        itertools.product(words, repeat=2),
        ((a, "instance", c) for a, c in itertools.product(words, repeat=2)),
    ):
        if "" in relative:
            continue
        owner = records.name(".".join((*relative, "service.local")))
        route = names.route(relative, SERVICE_LOCAL.reserved_labels)
        for rdtype in RDTYPES:
            answer = lookup(
                SERVICE_LOCAL, snapshot, route, rdtype, owner=owner, now=NOW, rng=random.Random(0)
            )
            key = f"{owner} {QTYPE[rdtype]}"
            if answer.outcome is Outcome.SUCCESS:
                checked += 1
                assert key in found, key
                assert sorted(map(str, answer.answer)) == sorted(map(str, found[key].records))
            else:
                assert key not in found, key
    assert checked == len(found) - 2, "every RRset but the SOA and the NS of the apex"


def test_soa_first_then_canonical_order() -> None:
    rrsets = zone_rrsets(SERVICE_LOCAL, catalog(), NOW)
    assert [QTYPE[r.rdtype] for r in rrsets[:2]] == ["SOA", "NS"]
    keys = [tuple(reversed([label.lower() for label in r.owner.label])) for r in rrsets]
    assert keys == sorted(keys)
    assert rrsets == zone_rrsets(SERVICE_LOCAL, catalog(), NOW), "deterministic"


def test_unhealthy_instances_and_empty_services_are_absent() -> None:
    found = " ".join(content())
    assert "web-4." not in found, "critical"
    assert "web-5." not in found, "lease lapsed"
    assert ".db.service.local" not in found, "no healthy instance"
    assert "_db." not in found
    assert "web-3.instance.web.service.local. AAAA" in found, "warning instances answer"


def test_ttls_are_those_of_the_moment() -> None:
    found = content()
    assert found["web.service.local. SRV"].ttl == 2, "capped by web-2's lease"
    assert found["web-1.instance.web.service.local. A"].ttl == 5
    assert found["api.service.local. SRV"].ttl == 30, "the service's own TTL"
    assert found["service.local. NS"].ttl == 60, "zone data lives as long as the SOA"


def test_empty_non_terminals_are_implied() -> None:
    found = content()
    assert not any(key.startswith(("_tcp.service.local.", "instance.web.")) for key in found)
    assert "_web._tcp.service.local. SRV" in found
    assert "instance.odd.service.local. SRV" in found, "the tag named like the target parent"


def test_a_nested_zone_is_delegated_not_copied() -> None:
    extra = Service("service", (instance("service", "s-1", "10.7.0.1"),))
    found = content(LOCAL, catalog([extra]))
    assert text(found["service.local. NS"]) == [
        "service.local. 60 IN NS ns.example.net.",
        "service.local. 60 IN NS ns.service.local.",
    ]
    assert text(found["ns.service.local. AAAA"]) == ["ns.service.local. 60 IN AAAA ::1"]
    assert "service.local. SRV" not in found, "the service 'service' is the nested apex"
    assert not [key for key in found if key.endswith(".service.local. SRV")]
    assert "web.local. SRV" in found
    assert "service.local. SOA" not in content(SERVICE_CONSUL, catalog([extra]))


def test_owner_names_cover_every_spelling() -> None:
    snapshot = Catalog.build(
        [Service("web", (instance("web", "Web_1", "10.0.0.1", tags=("v1",)),))], index=1
    )
    assert sorted(owner_names(SERVICE_LOCAL, snapshot)) == sorted(
        [
            (),
            ("ns",),
            ("web",),
            ("_web", "_tcp"),
            ("_web", "_udp"),
            ("v1", "web"),
            ("_web", "_v1"),
            (snapshot.services["web"].target_of["Web_1"], "instance", "web"),
        ]
    )


def test_names_longer_than_255_octets_are_left_out() -> None:
    long_zone = zones({"zone": [{"name": ".".join(["z" * 60] * 2)}]})[0]
    service = "s" * 63
    snapshot = Catalog.build(
        [Service(service, (instance(service, "t" * 63, "10.0.0.1", tags=("g" * 63,)),))],
        index=1,
    )
    found = {f"{r.owner} {QTYPE[r.rdtype]}" for r in zone_rrsets(long_zone, snapshot, NOW)}
    assert f"{service}.{long_zone.name}. A" in found
    assert f"{service}.{long_zone.name}. SRV" not in found, "its one target is too long"
    assert not any(name.startswith("t" * 63) for name in found)
    assert all(len(name.split()[0]) <= 254 for name in found)
    # the answer logic agrees: no SRV answer (rather than a SERVFAIL for the whole set)
    handler = make_handler(snapshot, config={"zone": [{"name": long_zone.name}]})
    reply = ask(handler, f"{service}.{long_zone.name}", "SRV")
    assert (reply.rcode(), reply.answer) == (0, [])
    assert lines(ask(handler, f"{service}.{long_zone.name}", "A").answer) == [
        f"{service}.{long_zone.name}. 5 IN A 10.0.0.1"
    ]
