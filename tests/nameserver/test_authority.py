"""The answer logic, name form by name form, written as zone-file text."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from dnslib import QTYPE, DNSLabel  # type: ignore[import-untyped]

from srvdns.catalog import Catalog, target_label
from srvdns.model import Service
from srvdns.nameserver import authority, names, records
from srvdns.nameserver.authority import Outcome, capped_ttl, lookup, weighted_order

from .dnstest import (
    CONSUL_NEGATIVE_SOA,
    NEGATIVE_SOA,
    NOW,
    SOA,
    Case,
    ask,
    catalog,
    instance,
    make_handler,
    zones,
)

API_TARGET = f"{target_label('Api.1')}.instance.api.service.local."
WEB_SRV = [
    "{owner}. 2 IN SRV 0 10 8080 web-1.instance.web.service.local.",
    "{owner}. 2 IN SRV 0 1 8080 web-2.instance.web.service.local.",
    "{owner}. 2 IN SRV 0 1 8080 web-3.instance.web.service.local.",
]
WEB_TARGETS = [
    "web-1.instance.web.service.local. 5 IN A 10.0.0.1",
    "web-2.instance.web.service.local. 2 IN A 10.0.0.2",
    "web-3.instance.web.service.local. 5 IN AAAA 2001:db8::3",
]


def web_srv(owner: str) -> list[str]:
    return [line.format(owner=owner) for line in WEB_SRV]


# fmt: off
CASES = [
    # --- the apex: SOA and NS, NODATA for the rest (RFC 2308 §2.2)
    Case("service.local", "SOA", answer=[SOA]),
    Case(
        "service.local",
        "NS",
        answer=[
            "service.local. 60 IN NS ns.service.local.",
            "service.local. 60 IN NS ns.example.net.",
        ],
        additional=["ns.service.local. 60 IN A 127.0.0.1", "ns.service.local. 60 IN AAAA ::1"],
    ),
    Case("service.local", "A", authority=[NEGATIVE_SOA]),
    Case("service.local", "ANY", answer=[SOA], note="RFC 8482: one RRset"),
    Case(
        "Service.LOCAL",
        "SOA",
        answer=[SOA.replace("service.local.", "Service.LOCAL.", 1)],
        note="owner echoes the question's case",
    ),
    # --- in-zone name server hosts; NS data lives as long as the SOA
    Case("ns.service.local", "A", answer=["ns.service.local. 60 IN A 127.0.0.1"]),
    Case("ns.service.local", "AAAA", answer=["ns.service.local. 60 IN AAAA ::1"]),
    Case("ns.service.local", "ANY", answer=["ns.service.local. 60 IN A 127.0.0.1"]),
    Case("ns.service.local", "TXT", authority=[NEGATIVE_SOA]),
    Case("x.ns.service.local", "A", "NXDOMAIN", authority=[NEGATIVE_SOA]),
    # --- <service>: every answerable instance; TTL capped by web-2's lease (2.5 s left)
    Case("web.service.local", "SRV", answer=web_srv("web.service.local"), additional=WEB_TARGETS),
    Case(
        "web.service.local",
        "A",
        answer=["web.service.local. 2 IN A 10.0.0.1", "web.service.local. 2 IN A 10.0.0.2"],
    ),
    Case("web.service.local", "AAAA", answer=["web.service.local. 5 IN AAAA 2001:db8::3"]),
    Case(
        "web.service.local",
        "TXT",
        answer=[
            'web.service.local. 2 IN TXT "version=1.2" "zone=a"',
            'web.service.local. 2 IN TXT "version=1.3"',
        ],
    ),
    Case("web.service.local", "MX", authority=[NEGATIVE_SOA]),
    Case(
        "web.service.local",
        "ANY",
        answer=web_srv("web.service.local"),
        additional=WEB_TARGETS,
        note="RFC 8482: the SRV set only",
    ),
    Case(
        "api.service.local",
        "SRV",
        answer=[f"api.service.local. 30 IN SRV 1 5 9000 {API_TARGET}"],
        additional=[f"{API_TARGET} 30 IN A 10.0.1.1"],
        note="per-service TTL; an id that is no host name gets a hashed target label",
    ),
    Case("cache.service.local", "A", answer=["cache.service.local. 5 IN A 10.0.3.1"]),
    Case("cache.service.local", "AAAA", authority=[NEGATIVE_SOA], note="IPv4-only: NODATA"),
    Case("cache.service.local", "TXT", answer=['cache.service.local. 5 IN TXT "role=cache"']),
    Case("db.service.local", "A", "NXDOMAIN", authority=[NEGATIVE_SOA], note="all critical"),
    Case("primary.db.service.local", "A", "NXDOMAIN", authority=[NEGATIVE_SOA]),
    Case("nope.service.local", "SRV", "NXDOMAIN", authority=[NEGATIVE_SOA]),
    # --- <tag>.<service> (Consul style)
    Case("primary.web.service.local", "A", answer=["primary.web.service.local. 5 IN A 10.0.0.1"]),
    Case(
        "canary.web.service.local",
        "SRV",
        answer=["canary.web.service.local. 2 IN SRV 0 1 8080 web-2.instance.web.service.local."],
        additional=["web-2.instance.web.service.local. 2 IN A 10.0.0.2"],
    ),
    Case("canary.web.service.local", "AAAA", authority=[NEGATIVE_SOA]),
    Case("nosuch.web.service.local", "A", "NXDOMAIN", authority=[NEGATIVE_SOA]),
    Case("x.primary.web.service.local", "A", "NXDOMAIN", authority=[NEGATIVE_SOA]),
    # --- _<service>._<proto or tag> (RFC 2782)
    Case("_web._tcp.service.local", "SRV", answer=web_srv("_web._tcp.service.local"),
         additional=WEB_TARGETS),
    Case("_web._udp.service.local", "SRV", answer=web_srv("_web._udp.service.local"),
         additional=WEB_TARGETS),
    Case(
        "_web._primary.service.local",
        "SRV",
        answer=[
            "_web._primary.service.local. 5 IN SRV 0 10 8080 web-1.instance.web.service.local.",
        ],
        additional=["web-1.instance.web.service.local. 5 IN A 10.0.0.1"],
    ),
    Case("_web._nosuch.service.local", "SRV", "NXDOMAIN", authority=[NEGATIVE_SOA]),
    Case("_db._tcp.service.local", "SRV", "NXDOMAIN", authority=[NEGATIVE_SOA]),
    Case("x._web._tcp.service.local", "SRV", "NXDOMAIN", authority=[NEGATIVE_SOA]),
    Case("web._tcp.service.local", "SRV", "NXDOMAIN", authority=[NEGATIVE_SOA]),
    # --- SRV targets
    Case("web-1.instance.web.service.local", "A",
         answer=["web-1.instance.web.service.local. 5 IN A 10.0.0.1"]),
    Case("web-1.instance.web.service.local", "AAAA", authority=[NEGATIVE_SOA]),
    Case("web-1.instance.web.service.local", "ANY",
         answer=["web-1.instance.web.service.local. 5 IN A 10.0.0.1"]),
    Case("web-1.instance.web.service.local", "TXT",
         answer=['web-1.instance.web.service.local. 5 IN TXT "version=1.2" "zone=a"']),
    Case("web-2.instance.web.service.local", "A",
         answer=["web-2.instance.web.service.local. 2 IN A 10.0.0.2"]),
    Case("web-3.instance.web.service.local", "AAAA",
         answer=["web-3.instance.web.service.local. 5 IN AAAA 2001:db8::3"]),
    Case("web-3.instance.web.service.local", "TXT", authority=[NEGATIVE_SOA]),
    Case("web-4.instance.web.service.local", "A", "NXDOMAIN", authority=[NEGATIVE_SOA],
         note="critical"),
    Case("web-5.instance.web.service.local", "A", "NXDOMAIN", authority=[NEGATIVE_SOA],
         note="lease lapsed"),
    Case("nope.instance.web.service.local", "A", "NXDOMAIN", authority=[NEGATIVE_SOA]),
    Case("web-1.instance.api.service.local", "A", "NXDOMAIN", authority=[NEGATIVE_SOA]),
    Case("x.web-1.instance.web.service.local", "A", "NXDOMAIN", authority=[NEGATIVE_SOA]),
    # --- empty non-terminals are NODATA, not NXDOMAIN (RFC 8020)
    Case("instance.web.service.local", "A", authority=[NEGATIVE_SOA]),
    Case("instance.db.service.local", "A", "NXDOMAIN", authority=[NEGATIVE_SOA]),
    Case("_tcp.service.local", "SRV", authority=[NEGATIVE_SOA]),
    Case("_udp.service.local", "SRV", authority=[NEGATIVE_SOA]),
    Case("_primary.service.local", "SRV", authority=[NEGATIVE_SOA]),
    Case("_nosuch.service.local", "SRV", "NXDOMAIN", authority=[NEGATIVE_SOA]),
    Case("instance.odd.service.local", "A",
         answer=["instance.odd.service.local. 5 IN A 10.0.4.1"],
         note="the tag named like the target parent wins"),
    # --- case-insensitive matching, the question's case echoed
    Case("WEB.Service.Local", "AAAA", answer=["WEB.Service.Local. 5 IN AAAA 2001:db8::3"]),
    Case("Web-1.INSTANCE.web.SERVICE.local", "A",
         answer=["Web-1.INSTANCE.web.SERVICE.local. 5 IN A 10.0.0.1"]),
    Case("_Web._TCP.service.local", "SRV", answer=web_srv("_Web._TCP.service.local"),
         additional=WEB_TARGETS),
    # --- every zone publishes the whole catalog; the longest suffix picks the zone
    Case("primary.web.service.consul", "A",
         answer=["primary.web.service.consul. 5 IN A 10.0.0.1"]),
    Case("nope.service.consul", "A", "NXDOMAIN", authority=[CONSUL_NEGATIVE_SOA]),
    Case("primary.web.local", "A", answer=["primary.web.local. 7 IN A 10.0.0.1"]),
    # --- outside every zone, other classes, zone transfers: REFUSED, not authoritative
    Case("example.org", "A", "REFUSED", aa=False),
    Case("local.example", "A", "REFUSED", aa=False),
    Case("service.local", "AXFR", "REFUSED", aa=False),
    Case("service.local", "IXFR", "REFUSED", aa=False),
]
# fmt: on


@pytest.mark.parametrize("case", CASES, ids=str)
def test_answers(case: Case) -> None:
    case.check(ask(make_handler(), case.qname, case.qtype))


@pytest.mark.parametrize("case", CASES[:12], ids=str)
def test_answers_are_the_same_over_tcp(case: Case) -> None:
    case.check(ask(make_handler(), case.qname, case.qtype, tcp=True))


@pytest.mark.parametrize("qclass", ["CH", "HS", "ANY"])
def test_other_classes_are_refused(qclass: str) -> None:
    reply = ask(make_handler(), "web.service.local", "TXT", rdclass=qclass)
    Case("web.service.local", "TXT", "REFUSED", aa=False, qclass=qclass).check(reply)


def test_soa_serial_is_the_registry_index_modulo_2_32() -> None:
    reply = ask(make_handler(catalog(index=2**32 + 9)), "service.local", "SOA")
    assert reply.answer[0][0].serial == 9


def test_a_service_leaves_dns_the_moment_its_lease_lapses() -> None:
    snapshot = Catalog.build(
        [Service("hb", (instance("hb", "hb-1", "10.9.0.1", ttl=10, last_heartbeat=NOW),))],
        index=1,
    )
    clock = [NOW + 9.2]
    handler = make_handler(snapshot, clock=lambda: clock[0])
    assert [rr.to_text() for rr in ask(handler, "hb.service.local", "A").answer] == [
        "hb.service.local. 0 IN A 10.9.0.1"
    ]
    clock[0] = NOW + 10
    assert ask(handler, "hb.service.local", "A").rcode() == 3


# --- the pure pieces, called directly


def _lookup(route: names.Route, qtype: str, seed: int = 0) -> authority.Answer:
    return lookup(
        zones()[0],
        catalog(),
        route,
        getattr(QTYPE, qtype),
        owner=DNSLabel("x.service.local"),
        now=NOW,
        rng=random.Random(seed),
    )


@pytest.mark.parametrize(
    ("route", "qtype", "outcome"),
    [
        (names.Apex(), "SOA", Outcome.SUCCESS),
        (names.Apex(), "TXT", Outcome.NODATA),
        (names.ServiceName("web"), "SRV", Outcome.SUCCESS),
        (names.ServiceName("web", "nosuch"), "SRV", Outcome.NXDOMAIN),
        (names.TargetParent("web"), "A", Outcome.NODATA),
        (names.ProtocolParent(None), "SRV", Outcome.NODATA),
        (names.Unknown(), "A", Outcome.NXDOMAIN),
    ],
)
def test_lookup_outcomes(route: names.Route, qtype: str, outcome: Outcome) -> None:
    answer = _lookup(route, qtype)
    assert answer.outcome is outcome
    assert not answer.authority, "the handler alone adds the negative SOA"


def test_lookup_is_deterministic_for_a_given_rng() -> None:
    def text(seed: int) -> list[str]:
        return [str(rr) for rr in _lookup(names.ServiceName("web"), "SRV", seed).answer]

    assert text(3) == text(3)
    assert len({tuple(text(seed)) for seed in range(20)}) > 1, "SRV order is shuffled"


@pytest.mark.parametrize(
    ("ttl", "leases", "expected"),
    [
        (5, [], 5),
        (5, [(NOW - 1, 30)], 5),
        (5, [(NOW - 27.5, 30)], 2),
        (5, [(NOW - 29.9, 30)], 0),
        (5, [(NOW - 40, 30)], 0),
        (30, [(NOW, 60), (NOW, 12.99)], 12),
    ],
)
def test_capped_ttl_is_the_floor_of_the_soonest_lease(
    ttl: int, leases: list[tuple[float, float]], expected: int
) -> None:
    members = [
        instance("s", f"i{n}", "10.0.0.1", ttl=lease, last_heartbeat=start)
        for n, (start, lease) in enumerate(leases)
    ]
    assert capped_ttl(ttl, [instance("s", "plain", "10.0.0.9"), *members], NOW) == expected


def test_weighted_order_favours_heavy_instances_and_puts_weight_0_last() -> None:
    heavy = instance("s", "heavy", "10.0.0.1", weight=9)
    light = instance("s", "light", "10.0.0.2", weight=1)
    zero = instance("s", "zero", "10.0.0.3", weight=0)
    rng = random.Random(42)
    firsts = Counter(weighted_order([light, zero, heavy], rng)[0].id for _ in range(2000))
    assert firsts["zero"] == 0
    assert 0.85 < firsts["heavy"] / 2000 < 0.95


def test_weighted_order_puts_lower_priorities_first() -> None:
    backup = instance("s", "backup", "10.0.0.1", weight=100, priority=1)
    main = instance("s", "main", "10.0.0.2", weight=1, priority=0)
    rng = random.Random(0)
    assert all(weighted_order([backup, main], rng)[0] is main for _ in range(100))


def test_address_answers_follow_the_weighted_order() -> None:
    handler = make_handler(seed=7)
    firsts = Counter(
        ask(handler, "web.service.local", "A").answer[0][0].address for _ in range(400)
    )
    assert firsts["10.0.0.1"] > 3 * firsts["10.0.0.2"], "web-1 has weight 10, web-2 weight 1"


def _service_answer(qtype: int, seed: int = 3) -> authority.Answer:
    zone = zones()[0]
    owner = DNSLabel("Web.service.local")
    route = names.route(("web",), frozenset())
    return lookup(zone, catalog(), route, qtype, owner=owner, now=NOW, rng=random.Random(seed))


def test_srv_reorder_keeps_the_records_and_each_target_with_its_address() -> None:
    first = _service_answer(QTYPE.SRV)
    assert first.reorder is not None
    rng = random.Random(5)
    orders = set()
    for _ in range(200):
        again = first.reorder(rng)
        assert sorted(map(str, again.answer)) == sorted(map(str, first.answer))
        assert sorted(map(str, again.additional)) == sorted(map(str, first.additional))
        assert [rr.rdata.target for rr in again.answer] == [rr.rname for rr in again.additional]
        orders.add(tuple(str(rr.rdata.target) for rr in again.answer))
        assert again.reorder is not None
    assert len(orders) == 6, "every order of three targets comes up"


def test_address_reorder_follows_the_weighted_order() -> None:
    first = _service_answer(QTYPE.A)
    assert first.reorder is not None
    rng = random.Random(11)
    firsts: Counter[str] = Counter()
    for _ in range(400):
        again = first.reorder(rng)
        assert sorted(map(str, again.answer)) == sorted(map(str, first.answer))
        firsts[str(again.answer[0].rdata)] += 1
    assert firsts["10.0.0.1"] > 3 * firsts["10.0.0.2"], "web-1 has weight 10, web-2 weight 1"


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 16, 17, 40])
def test_targets_are_shuffled_as_random_shuffle_shuffles_them(size: int) -> None:
    """``shuffle`` draws what ``random.shuffle`` draws, call for call: a reply's order
    depends on the seed alone, as it did before it was written out."""
    for seed in range(20):
        ours, theirs = random.Random(seed), random.Random(seed)
        items, expected = list(range(size)), list(range(size))
        for _ in range(5):
            authority.shuffle(items, ours)
            theirs.shuffle(expected)
            assert items == expected
            assert ours.getstate() == theirs.getstate()


class Repeating(random.Random):
    """Draws from a short list, so that keys tie (and ``shuffle`` uses ``shuffle``)."""

    def __init__(self, values: list[float]) -> None:
        super().__init__(0)
        self._values = values
        self._next = 0

    def random(self) -> float:
        value = self._values[self._next % len(self._values)]
        self._next += 1
        return value


@pytest.mark.parametrize(
    "weights",
    [
        [(0, 1)] * 5,
        [(3, 1)] * 2,
        [(0, 1)],
        [(2, 0)],
        [(0, 1), (0, 2), (0, 1)],
        [(0, 1), (1, 1), (0, 1), (1, 1)],
        [(0, 0)] * 4,
        [(0, 3)] * 4,
    ],
)
def test_address_orders_are_the_weighted_order_of_their_instances(
    weights: list[tuple[int, int]],
) -> None:
    """One priority and weight 1 draws the order without key tuples: the same order as
    ``_weighted_indices``, ties (equal numbers drawn) included."""
    places = list(range(len(weights)))
    rrset = [records.a(DNSLabel("web.service.local"), 5, f"10.0.0.{n}") for n in places]
    ordering = authority._WeightedAddresses(weights, places, rrset)
    for values in ([0.5, 0.5, 0.25], [0.0, 0.0], [0.1, 0.9, 0.9, 0.3, 0.1]):
        drawn, _ = ordering.draw(Repeating(values))
        assert list(drawn) == authority._weighted_indices(weights, Repeating(values))
    for seed in range(50):
        ours, theirs = random.Random(seed), random.Random(seed)
        drawn, additional = ordering.draw(ours)
        assert list(drawn) == authority._weighted_indices(weights, theirs)
        assert additional == ()
        assert ours.getstate() == theirs.getstate()
