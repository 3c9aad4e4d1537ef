"""The pieces of a service answer that are worked out once and reused: the weighted
order's keys, SRV target names and their 255-octet limit."""

from __future__ import annotations

import random
from dataclasses import FrozenInstanceError, replace

import pytest
from dnslib import QTYPE, RR, DNSLabel  # type: ignore[import-untyped]

from srvdns.catalog import Catalog, ServiceView, in_panic
from srvdns.config import ZoneConfig
from srvdns.model import Instance, Service, Status
from srvdns.nameserver import authority, names, records
from srvdns.nameserver.authority import Answer, Outcome, capped_ttl, lookup, weighted_order

from .dnstest import NOW


def reference_order(instances: list[Instance], rng: random.Random) -> list[Instance]:
    """RFC 2782 / Efraimidis-Spirakis as plainly as it can be written: a stable sort by
    a key drawn per instance, in turn."""

    def key(instance: Instance) -> tuple[int, int, float]:
        u = rng.random()
        weight = instance.srv_weight
        if weight <= 0:
            return (instance.priority, 1, u)
        return (instance.priority, 0, -(u ** (1.0 / weight)))

    return sorted(instances, key=key)


def test_weighted_order_is_the_stable_sort_by_keys_drawn_in_turn() -> None:
    shapes = random.Random(0)
    for case in range(200):
        instances = [
            Instance(
                service="web",
                id=f"web-{n}",
                address=f"10.0.0.{n}",
                port=80,
                priority=shapes.choice((0, 0, 1)),
                weight=shapes.choice((0, 0, 1, 5, 100)),
            )
            for n in range(shapes.randint(0, 12))
        ]
        ours = weighted_order(instances, random.Random(case))
        assert [i.id for i in ours] == [
            i.id for i in reference_order(instances, random.Random(case))
        ]


def long_zone() -> ZoneConfig:
    # 192 octets: room for the service and "instance" labels and a short target only
    return ZoneConfig(name=".".join(["z" * 60, "y" * 60, "x" * 60, "example"]))


def srv_targets(zone: ZoneConfig, catalog: Catalog) -> tuple[Outcome, list[str]]:
    answer = lookup(
        zone,
        catalog,
        names.ServiceName("web"),
        QTYPE.SRV,
        owner=DNSLabel(f"web.{zone.name}"),
        now=NOW,
        rng=random.Random(1),
    )
    return answer.outcome, sorted(str(rr.rdata.target) for rr in answer.answer)


def test_an_srv_target_over_255_octets_is_left_out_every_time() -> None:
    zone = long_zone()
    short = Instance(service="web", id="a", address="10.0.0.1", port=80)
    long = Instance(service="web", id="b" * 60, address="10.0.0.2", port=80)
    catalog = Catalog.build([Service("web", (short, long))], index=1)
    for _ in range(3):
        assert srv_targets(zone, catalog) == (
            Outcome.SUCCESS,
            [f"a.instance.web.{zone.name}."],
        )
    alone = Catalog.build([Service("web", (long,))], index=2)
    assert srv_targets(zone, alone) == (Outcome.NODATA, [])


def test_srv_targets_follow_the_zone_and_the_service() -> None:
    web = Instance(service="web", id="web-1", address="10.0.0.1", port=80)
    catalog = Catalog.build([Service("web", (web,))], index=1)
    for name in ("service.local", "service.consul", "Service.Local"):
        zone = ZoneConfig(name=name)
        assert srv_targets(zone, catalog)[1] == [f"web-1.instance.web.{zone.name}."]
    api = Instance(service="api", id="api-1", address="10.0.0.2", port=80)
    other = Catalog.build([Service("api", (api,))], index=2)
    assert srv_targets(ZoneConfig(name="service.local"), other)[0] is Outcome.NXDOMAIN


def plainly_answerable(view: ServiceView, now: float, zone: ZoneConfig) -> list[Instance]:
    """``ServiceView.answerable`` as the model words it: every instance in panic mode,
    else those whose effective status is served."""
    if in_panic(view.instances, now, zone):
        return list(view.instances)
    served = {Status.PASSING} if zone.only_passing else {Status.PASSING, Status.WARNING}
    return [i for i in view.instances if i.effective_status(now) in served]


def plain_answer(
    zone: ZoneConfig,
    view: ServiceView,
    qtype: int,
    owner: DNSLabel,
    now: float,
    rng: random.Random,
    orders: int = 1,
) -> tuple[list[str], list[str]]:
    """A service answer built record by record with the public builders, every value
    derived again: what the answer built from pieces worked out once must equal.  With
    ``orders``, the last of that many orders drawn in turn (SRV records are shuffled
    again from the order before, address records drawn again)."""
    instances = plainly_answerable(view, now, zone)
    ttl = zone.ttl_for(view.name)
    if qtype in (QTYPE.SRV, QTYPE.ANY):
        targets = [
            (i, records.name(f"{view.target_of[i.id]}.instance.{view.name}.{zone.name}"))
            for i in instances
        ]
        kept = [(i, target) for i, target in targets if records.fits(target)]
        rrset_ttl = capped_ttl(ttl, [i for i, _ in kept], now)
        pairs = [
            (
                records.srv(owner, rrset_ttl, i.priority, i.srv_weight, i.port, target),
                records.address(target, capped_ttl(ttl, [i], now), i.address),
            )
            for i, target in kept
        ]
        for _ in range(orders):
            rng.shuffle(pairs)
        return [text(srv) for srv, _ in pairs], [text(address) for _, address in pairs]
    want_v6 = qtype == QTYPE.AAAA
    eligible = [i for i in instances if records.is_ipv6(i.address) == want_v6]
    rrset_ttl = capped_ttl(ttl, eligible, now)
    for _ in range(orders):
        ordered = dict.fromkeys(i.address for i in reference_order(eligible, rng))
    return [text(records.address(owner, rrset_ttl, ip)) for ip in ordered], []


def text(rr: RR) -> str:
    return " ".join(str(rr).split())


def random_service(shapes: random.Random, name: str) -> Service:
    statuses = (Status.PASSING, Status.PASSING, Status.WARNING, Status.CRITICAL)
    return Service(
        name,
        tuple(
            Instance(
                service=name,
                id=f"{name}-{n}" if n % 4 else f"{name.upper()}_{n}",
                address=shapes.choice(
                    (f"10.0.0.{n % 5}", f"10.0.1.{n}", f"2001:db8::{n % 3:x}", "::ffff:10.0.0.9")
                ),
                port=shapes.choice((80, 443, 8000 + n)),
                priority=shapes.choice((0, 0, 1)),
                weight=shapes.choice((0, 1, 1, 1, 7)),
                warning_weight=shapes.choice((0, 1, 3)),
                status=shapes.choice(statuses),
                ttl=shapes.choice((None, None, 15.0, 40.0)),
                last_heartbeat=NOW - shapes.choice((0.0, 3.5, 20.0, 39.9)),
            )
            for n in range(shapes.randint(1, 12))
        ),
    )


def test_service_answers_equal_the_answers_built_record_by_record() -> None:
    shapes = random.Random(7)
    zones = [
        ZoneConfig(name="service.local"),
        ZoneConfig(name="service.local", ttl=30, only_passing=True),
        ZoneConfig(name="Service.Consul", service_ttl={"web": 3}, panic_threshold=0.4),
    ]
    compared = 0
    for case in range(150):
        web = random_service(shapes, "web")
        catalog = Catalog.build([web], index=case)
        if case % 2:  # a snapshot patched from another: the instances not written are kept
            written = replace(shapes.choice(web.instances), port=9999, weight=2)
            catalog, _ = catalog.with_instances([written], index=case + 1)
        view = catalog.get_service("web")
        assert view is not None
        zone = zones[case % len(zones)]
        owner = DNSLabel(f"WEB.{zone.name}")
        for qtype in (QTYPE.SRV, QTYPE.ANY, QTYPE.A, QTYPE.AAAA):
            expected = plain_answer(zone, view, qtype, owner, NOW, random.Random(case))
            rng = random.Random(case)
            answer = lookup(
                zone, catalog, names.ServiceName("web"), qtype, owner=owner, now=NOW, rng=rng
            )
            if not expected[0]:
                assert answer.outcome in (Outcome.NODATA, Outcome.NXDOMAIN)
                continue
            compared += 1
            assert texts(answer) == expected
            assert answer.reorder is not None
            again = answer.reorder(rng)  # the same records in the next order drawn
            following = random.Random(case)
            assert texts(again) == plain_answer(zone, view, qtype, owner, NOW, following, 2)
            assert rng.random() == following.random()
    assert compared > 300


def texts(answer: Answer) -> tuple[list[str], list[str]]:
    return [text(rr) for rr in answer.answer], [text(rr) for rr in answer.additional]


def test_a_written_instance_is_answered_as_written_and_the_others_as_they_were() -> None:
    zone = ZoneConfig(name="service.local", ttl=30)
    one = Instance(service="web", id="a", address="10.0.0.1", port=80)
    two = Instance(service="web", id="b", address="10.0.0.2", port=81, ttl=30.0, last_heartbeat=NOW)
    before = Catalog.build([Service("web", (one, two))], index=1)

    def srv(catalog: Catalog) -> list[str]:
        answer = lookup(
            zone,
            catalog,
            names.ServiceName("web"),
            QTYPE.SRV,
            owner=DNSLabel("web.service.local"),
            now=NOW + 10.5,  # 19.5 s left on b's lease
            rng=random.Random(1),
        )
        return sorted(text(rr) for rr in (*answer.answer, *answer.additional))

    assert srv(before) == [
        "a.instance.web.service.local. 30 IN A 10.0.0.1",
        "b.instance.web.service.local. 19 IN A 10.0.0.2",
        "web.service.local. 19 IN SRV 0 1 80 a.instance.web.service.local.",
        "web.service.local. 19 IN SRV 0 1 81 b.instance.web.service.local.",
    ]
    moved = replace(one, address="10.0.0.3", port=90, weight=4)
    assert srv(before.with_instances([moved], index=2)[0]) == [
        "a.instance.web.service.local. 30 IN A 10.0.0.3",
        "b.instance.web.service.local. 19 IN A 10.0.0.2",
        "web.service.local. 19 IN SRV 0 1 81 b.instance.web.service.local.",
        "web.service.local. 19 IN SRV 0 4 90 a.instance.web.service.local.",
    ]
    leased = replace(one, ttl=12.0, last_heartbeat=NOW + 8.0)  # 9.5 s left
    assert srv(before.with_instances([leased], index=3)[0]) == [
        "a.instance.web.service.local. 9 IN A 10.0.0.1",
        "b.instance.web.service.local. 19 IN A 10.0.0.2",
        "web.service.local. 9 IN SRV 0 1 80 a.instance.web.service.local.",
        "web.service.local. 9 IN SRV 0 1 81 b.instance.web.service.local.",
    ]
    assert srv(before) == srv(Catalog.build([Service("web", (one, two))], index=4))


@pytest.mark.parametrize("only_passing", [False, True])
def test_answerable_instances_are_those_whose_effective_status_is_served(
    only_passing: bool,
) -> None:
    instances = tuple(
        Instance(
            service="web",
            id=f"web-{n}",
            address="10.0.0.1",
            port=80,
            status=status,
            ttl=ttl,
            last_heartbeat=NOW - 10.0,
        )
        for n, (status, ttl) in enumerate(
            (status, ttl)
            for status in Status
            for ttl in (None, 5.0, 10.0, 10.5)  # lapsed, lapsing at NOW, running
        )
    )
    view = Catalog.build([Service("web", instances)], index=1).get_service("web")
    assert view is not None
    zone = ZoneConfig(name="service.local", only_passing=only_passing)
    served = [i.id for i in view.answerable(NOW, zone)]
    assert served == [i.id for i in plainly_answerable(view, NOW, zone)]
    assert served == [
        i.id
        for i in instances
        if i.status is Status.PASSING or (i.status is Status.WARNING and not only_passing)
        if i.ttl is None or i.ttl == 10.5
    ]
    assert [i.id for i in view.answerable(NOW)] == [i.id for i in instances if i.is_answerable(NOW)]


def test_an_answer_made_slot_by_slot_is_an_ordinary_frozen_answer() -> None:
    rr = records.a(DNSLabel("web.service.local"), 5, "10.0.0.1")
    made = authority._success((rr,), (), weighted_order)  # type: ignore[arg-type]
    assert made == Answer(Outcome.SUCCESS, (rr,), (), (), weighted_order)  # type: ignore[arg-type]
    assert (made.outcome, made.answer, made.authority, made.additional) == (
        Outcome.SUCCESS,
        (rr,),
        (),
        (),
    )
    assert made.reorder is weighted_order
    with pytest.raises(FrozenInstanceError):
        made.answer = ()  # type: ignore[misc]
