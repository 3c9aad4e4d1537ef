"""The pieces of a service answer that are worked out once and reused: the weighted
order's keys, SRV target names and their 255-octet limit."""

from __future__ import annotations

import random

from dnslib import QTYPE, DNSLabel  # type: ignore[import-untyped]

from srvdns.catalog import Catalog
from srvdns.config import ZoneConfig
from srvdns.model import Instance, Service
from srvdns.nameserver import names
from srvdns.nameserver.authority import Outcome, lookup, weighted_order

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
