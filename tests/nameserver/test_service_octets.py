"""Service answers written straight into octets are, octet for octet, the replies the
general path packs: first orders and further ones, every fallback included."""

from __future__ import annotations

import random
from typing import Any

import pytest

from srvdns.catalog import Catalog, CatalogHolder
from srvdns.model import Instance, Service, Status
from srvdns.nameserver import cache
from srvdns.nameserver.handler import Handler

from .dnstest import CONFIG, NOW, catalog, instance, query, zones
from .test_cache import Clock, corpus, mixed_case


def twins(
    holder: CatalogHolder, clock: Clock, seed: int, config: dict[str, Any] | None = None, **kw: Any
) -> tuple[Handler, Handler]:
    """Handlers on one snapshot and clock with the same seeded order: one writes service
    answers into octets, the other packs everything."""
    return tuple(  # type: ignore[return-value]
        Handler(
            zones(config),
            holder,
            clock=clock,
            rng=random.Random(seed),
            service_octets=octets,
            **kw,
        )
        for octets in (True, False)
    )


def random_service(rng: random.Random, name: str, now: float) -> Service:
    """Instances in every state that changes an answer: health, leases running, lapsed
    and about to, weights, priorities, IPv4 and IPv6, shared addresses, tags."""
    instances = []
    for n in range(rng.choice((0, 1, 1, 2, 3, 4, 6, 12, 40))):
        v6 = rng.random() < 0.25
        host = rng.randrange(1, 6 if rng.random() < 0.3 else 250)
        lease = rng.random() < 0.3
        instances.append(
            Instance(
                service=name,
                id=f"{name}-{n}",
                address=f"2001:db8::{host:x}" if v6 else f"10.{n % 7}.0.{host}",
                port=rng.randrange(1, 65536),
                tags=tuple(rng.sample(("a", "b", "instance"), rng.randrange(3))),
                weight=rng.choice((1, 1, 1, 0, 5, 100)),
                priority=rng.choice((0, 0, 0, 1, 2)),
                ttl=rng.choice((5.0, 10.0, 30.0)) if lease else None,
                last_heartbeat=now - rng.uniform(0, 35) if lease else 0.0,
                status=rng.choice(
                    (Status.PASSING, Status.PASSING, Status.WARNING, Status.CRITICAL)
                ),
                warning_weight=rng.choice((1, 1, 3)),
            )
        )
    return Service(name, tuple(instances))


def random_queries(rng: random.Random, names: list[str], count: int) -> list[tuple[bytes, bool]]:
    out = []
    for _ in range(count):
        name = rng.choice(names)
        if rng.random() < 0.1:
            name = f"{rng.choice(('a', 'b', 'instance'))}.{name}"
        zone = rng.choice(("service.local", "service.local", "service.consul", "local"))
        qname = mixed_case(rng, f"{name}.{zone}") if rng.random() < 0.5 else f"{name}.{zone}"
        qtype = rng.choice(("SRV", "SRV", "A", "A", "AAAA", "ANY", "TXT"))
        edns = rng.choice((-1, 0, 0))
        payload = rng.choice((512, 700, 1232, 4096))
        out.append((query(qname, qtype, edns=edns, payload=payload), rng.random() < 0.2))
    return out


def ask_both(pair: tuple[Handler, Handler], wire: bytes, tcp: bool) -> bytes | None:
    octets, packed = (handler.handle(wire, tcp=tcp) for handler in pair)
    assert octets == packed, (wire, tcp)
    return octets


@pytest.mark.parametrize("cached", [True, False])
def test_the_fixture_corpus_gets_the_same_octets(cached: bool) -> None:
    """Every name of the fixture zone in every type, case, EDNS and transport, asked
    ``ORDERS + 1`` times (the further orders of cached answers too)."""
    pair = twins(CatalogHolder(catalog()), Clock(), 3, answer_cache=cached)
    queries = corpus()
    for round_ in range(cache.ORDERS + 1):
        for msg_id, (wire, tcp) in enumerate(queries):
            ask_both(pair, (msg_id + round_).to_bytes(2, "big") + wire[2:], tcp)


@pytest.mark.parametrize("seed", range(6))
def test_random_registries_writes_and_time_get_the_same_octets(seed: int) -> None:
    """Random services (see ``random_service``), some with panic mode or only passing
    instances, an answer limit for UDP on some; between rounds of questions, writes
    replace services and the clock moves (leases lapse, TTLs count down)."""
    rng = random.Random(seed)
    config: dict[str, Any] = {
        "zone": [
            {
                **CONFIG["zone"][0],
                "only_passing": seed % 3 == 1,
                **({"panic_threshold": 0.5} if seed % 3 == 2 else {}),
            },
            *CONFIG["zone"][1:],
        ]
    }
    clock = Clock()
    names = [f"svc{n}" for n in range(12)]
    holder = CatalogHolder(
        Catalog.build([random_service(rng, name, clock.now) for name in names], index=1)
    )
    limit = {"udp_answer_limit": 3} if seed % 2 else {}
    pair = twins(holder, clock, seed, config, **limit)
    for _ in range(12):
        for msg_id, (wire, tcp) in enumerate(random_queries(rng, names, 150)):
            for _ in range(rng.choice((1, 1, cache.ORDERS + 1))):
                ask_both(pair, msg_id.to_bytes(2, "big") + wire[2:], tcp)
        name = rng.choice(names)
        holder.patch([random_service(rng, name, clock.now)], index=holder.current.index + 1)
        clock.now += rng.choice((0.0, 0.4, 1.0, 3.0))


def test_the_plain_answers_are_written_into_octets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test above compares something: the usual SRV and A questions do not reach the
    general path, and the unusual ones do."""
    handler = Handler(zones(), CatalogHolder(catalog()), clock=lambda: NOW, rng=random.Random(1))
    packed: list[int] = []
    general = Handler._lookup

    def lookup(self: Handler, question: Any) -> Any:
        packed.append(question.qtype)
        return general(self, question)

    monkeypatch.setattr(Handler, "_lookup", lookup)
    for qtype in ("SRV", "A", "AAAA"):
        assert handler.handle(query("web.service.local", qtype, edns=0)) is not None
    assert packed == []
    for name, qtype in [
        ("web.service.local", "TXT"),  # another type
        ("primary.web.service.local", "SRV"),  # a tag
        ("db.service.local", "A"),  # nothing answerable: NXDOMAIN
        ("api.service.local", "AAAA"),  # no address of the family: NODATA
    ]:
        assert handler.handle(query(name, qtype)) is not None
    assert len(packed) == 4


def test_replies_that_do_not_fit_are_left_to_the_general_path() -> None:
    """Forty targets are more than 512 octets hold: the general path drops additional
    records (or truncates), and the octets are still the same."""
    many = Service("many", tuple(instance("many", f"m-{n}", f"10.9.0.{n}") for n in range(40)))
    pair = twins(CatalogHolder(catalog([many])), Clock(), 9)
    for qtype in ("SRV", "A"):
        for edns in (-1, 0):
            for tcp in (False, True):
                reply = ask_both(pair, query("many.service.local", qtype, edns=edns), tcp)
                assert reply is not None


def test_a_target_name_over_255_octets_is_left_to_the_general_path() -> None:
    """Under a zone name of 192 octets, a long instance id makes a target name that
    cannot exist: the general path leaves it out of the answer."""
    zone = ".".join(["z" * 60, "y" * 60, "x" * 60, "example"])
    config = {"zone": [{"name": zone, "ttl": 5}]}
    service = Service(
        "s",
        (
            instance("s", "short", "10.0.0.1"),
            instance("s", "a-much-longer-instance-id-" * 3, "10.0.0.2"),
        ),
    )
    pair = twins(CatalogHolder(Catalog.build([service], index=1)), Clock(), 4, config)
    for _ in range(cache.ORDERS + 1):
        assert ask_both(pair, query(f"s.{zone}", "SRV", edns=0), False) is not None


def test_further_orders_are_drawn_as_the_general_path_draws_them() -> None:
    """The orders of one answer, asked over and over without a cache: the same octets
    from both paths, and more than one order among them."""
    service = Service("s", tuple(instance("s", f"s-{n}", f"10.0.0.{n}") for n in range(1, 6)))
    holder = CatalogHolder(Catalog.build([service], index=1))
    for qtype in ("SRV", "A"):
        pair = twins(holder, Clock(), 2, answer_cache=False)
        replies = {ask_both(pair, query("s.service.local", qtype), False) for _ in range(20)}
        assert len(replies) > 1


def test_weighted_warning_instances_and_leases_are_written_alike() -> None:
    """Weights, warning weights, priorities and TTLs capped by leases about to lapse."""
    now = NOW
    service = Service(
        "w",
        (
            instance("w", "w-1", "10.0.0.1", weight=5, priority=1),
            instance("w", "w-2", "10.0.0.2", weight=0),
            instance("w", "w-3", "10.0.0.3", status=Status.WARNING, warning_weight=3),
            instance("w", "w-4", "10.0.0.3", ttl=10, last_heartbeat=now - 7.2),
            instance("w", "w-5", "2001:db8::5", ttl=10, last_heartbeat=now - 9.9),
        ),
    )
    clock = Clock(now)
    pair = twins(CatalogHolder(Catalog.build([service], index=1)), clock, 6)
    for _ in range(4):
        for qtype in ("SRV", "A", "AAAA"):
            for _ in range(cache.ORDERS + 1):
                ask_both(pair, query("w.service.local", qtype, edns=0), False)
        clock.now += 1.0


def test_targets_past_16383_octets_are_left_to_the_general_path() -> None:
    """An SRV answer over TCP whose last record may start past where a pointer reaches
    (RFC 1035 §4.1.4), depending on which record the order puts last: short targets and
    one long one, for counts around the limit.  Every order gets the general path's
    octets (which cannot point at such a target and write its name out instead)."""
    clock = Clock()
    for count in range(300, 316):
        instances = [
            instance("big", f"a{n:05d}", f"10.{n // 250}.0.{n % 250 + 1}") for n in range(count)
        ]
        instances.append(instance("big", "z" * 63, "10.99.0.1"))
        holder = CatalogHolder(Catalog.build([Service("big", tuple(instances))], index=1))
        pair = twins(holder, clock, count, answer_cache=False)
        for _ in range(3):
            assert ask_both(pair, query("big.service.local", "SRV", edns=0), True) is not None
