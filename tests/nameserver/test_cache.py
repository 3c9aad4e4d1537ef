"""The answer cache: a hit is the reply the full pipeline gives, until a write or time
changes it; a write to one service leaves the others cached."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import dns.flags
import dns.message
import pytest

from srvdns.catalog import CatalogHolder
from srvdns.model import Instance, Service
from srvdns.nameserver import cache, zonecontent
from srvdns.nameserver.handler import Handler
from srvdns.nameserver.orders import Arrangements

from .dnstest import NOW, catalog, instance, lines, parse_reply, query, services, zones

QTYPES = ("A", "AAAA", "SRV", "TXT", "SOA", "NS", "ANY", "MX", "AXFR")


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pair(holder: CatalogHolder, clock: Clock, **options: Any) -> tuple[Handler, Handler]:
    """A caching handler and an uncached one on the same snapshot and clock."""
    cached = Handler(zones(), holder, clock=clock, rng=random.Random(1), **options)
    plain = Handler(
        zones(), holder, clock=clock, rng=random.Random(2), answer_cache=False, **options
    )
    return cached, plain


def canonical(wire: bytes | None) -> tuple[Any, ...]:
    """A reply up to record order: header, question octets, sorted sections, EDNS."""
    assert wire is not None
    reply = parse_reply(wire)
    return (
        wire[:4],
        reply.question[0].to_text() if reply.question else None,
        lines(reply.answer),
        lines(reply.authority),
        lines(reply.additional),
        reply.edns,
        reply.payload,
        reply.ednsflags,
    )


def mixed_case(rng: random.Random, text: str) -> str:
    return "".join(c.upper() if rng.random() < 0.3 else c for c in text)


def corpus(seed: int = 7) -> list[tuple[bytes, bool]]:
    """Queries for every name of the fixture zone and some that do not exist, in every
    type, in mixed case, with and without EDNS and RD, over UDP and TCP."""
    rng = random.Random(seed)
    zone = zones()[0]
    names = [
        ".".join((*relative, zone.name)) for relative in zonecontent.owner_names(zone, catalog())
    ]
    names += ["nope.service.local", "_tcp.service.local", "x.web.service.local", "example.org"]
    names += ["web.service.consul", "a.b.c.d.service.local", "version.bind"]
    out = []
    for name in names:
        for qtype in QTYPES:
            for n in range(3):
                qname = name if n == 0 else mixed_case(rng, name)
                edns = rng.choice((-1, 0))
                wire = bytearray(
                    query(qname, qtype, edns=edns, payload=rng.choice((512, 1232, 4096)))
                )
                if rng.random() < 0.3:
                    wire[2] &= 0xFE  # RD clear
                if rng.random() < 0.2:
                    wire[3] |= 0x10  # CD set
                out.append((bytes(wire), rng.random() < 0.2))
    return out


def test_cached_replies_equal_the_full_pipelines_for_a_generated_corpus() -> None:
    clock = Clock()
    cached, plain = pair(CatalogHolder(catalog()), clock)
    queries = corpus()
    assert len(queries) > 1000
    for round_ in range(3):  # a miss, then hits
        for msg_id, (wire, tcp) in enumerate(queries):
            wire = (msg_id + round_).to_bytes(2, "big") + wire[2:]
            got = cached.handle(wire, tcp=tcp)
            want = plain.handle(wire, tcp=tcp)
            assert canonical(got) == canonical(want), (wire, tcp)
            assert got is not None
            assert got[:2] == wire[:2]


def test_a_hit_does_not_run_the_pipeline_and_patches_the_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler = Handler(zones(), CatalogHolder(catalog()), clock=Clock(), rng=random.Random(1))
    first = handler.handle(query("Api.service.local", "SRV", msg_id=1))

    def explode(*args: Any, **kw: Any) -> Any:
        raise AssertionError("the pipeline ran for a cached question")

    monkeypatch.setattr(handler, "_answer", explode)
    second = handler.handle(query("Api.service.local", "SRV", msg_id=2))
    assert first is not None
    assert second is not None
    assert first[:2] == b"\x00\x01"
    assert second[:2] == b"\x00\x02"
    assert canonical(first)[1:] == canonical(second)[1:]


def test_flags_and_question_case_are_the_querys_own() -> None:
    handler = Handler(zones(), CatalogHolder(catalog()), clock=Clock(), rng=random.Random(1))
    for _ in range(2):
        rd = parse_reply(handler.handle(query("api.service.local", "A")))
        no_rd = bytearray(query("API.service.local", "A"))
        no_rd[2] &= 0xFE
        reply = parse_reply(handler.handle(bytes(no_rd)))
        assert rd.flags & dns.flags.RD
        assert not reply.flags & dns.flags.RD
        assert reply.question[0].name.to_text() == "API.service.local."


def answer_lines(handler: Handler, qname: str, qtype: str = "A", **kw: Any) -> list[str]:
    return lines(parse_reply(handler.handle(query(qname, qtype, **kw))).answer)


def changed(name: str, *extra: Instance) -> Service:
    old = next(s for s in services() if s.name == name)
    return Service(name, (*old.instances, *extra))


def counted(handler: Handler, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Each run of the handler's pipeline (a miss) from now on."""
    calls: list[object] = []
    original = handler._answer

    def counting(*args: Any, **kw: Any) -> Any:
        calls.append(args)
        return original(*args, **kw)

    monkeypatch.setattr(handler, "_answer", counting)
    return calls


def test_a_write_flushes_only_the_service_it_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    holder = CatalogHolder(catalog())
    handler = Handler(zones(), holder, clock=Clock(), rng=random.Random(1))
    assert answer_lines(handler, "api.service.local") == ["api.service.local. 30 IN A 10.0.1.1"]
    assert len(answer_lines(handler, "cache.service.local", "SRV")) == 2
    holder.patch([changed("cache", instance("cache", "cache-3", "10.0.3.3", 1))], index=8)
    calls = counted(handler, monkeypatch)
    assert answer_lines(handler, "api.service.local") == ["api.service.local. 30 IN A 10.0.1.1"]
    assert calls == [], "api's cached answer survived a write to cache"
    assert len(answer_lines(handler, "cache.service.local", "SRV")) == 3
    assert calls, "cache's answer was packed anew"


def test_writes_missed_between_two_queries_flush_only_what_they_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    holder = CatalogHolder(catalog())
    handler = Handler(zones(), holder, clock=Clock(), rng=random.Random(1))
    answer_lines(handler, "api.service.local")
    answer_lines(handler, "cache.service.local", "SRV")
    for n in range(3, 6):
        holder.patch([changed("cache", instance("cache", f"cache-{n}", f"10.0.3.{n}"))], index=n)
    calls = counted(handler, monkeypatch)
    assert answer_lines(handler, "api.service.local") == ["api.service.local. 30 IN A 10.0.1.1"]
    assert calls == [], "api's cached answer survived three writes to cache"
    assert len(answer_lines(handler, "cache.service.local", "SRV")) == 3


def test_more_writes_than_the_lineage_holds_or_a_new_snapshot_flush_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from srvdns.catalog import LINEAGE, Catalog

    holder = CatalogHolder(catalog())
    handler = Handler(zones(), holder, clock=Clock(), rng=random.Random(1))
    answer_lines(handler, "api.service.local")
    for n in range(LINEAGE + 1):
        holder.patch([changed("cache", instance("cache", "cache-9", f"10.0.3.{n}"))], index=8)
    calls = counted(handler, monkeypatch)
    assert answer_lines(handler, "api.service.local") == ["api.service.local. 30 IN A 10.0.1.1"]
    assert len(calls) == 1, "packed anew: the lineage no longer reached the cached snapshot"
    moved = Service("api", (instance("api", "api-1", "10.9.9.9"),))
    others = [s for s in services() if s.name != "api"]
    holder.swap(Catalog.build([*others, moved], index=9, generation=holder.current.generation))
    assert answer_lines(handler, "api.service.local") == ["api.service.local. 30 IN A 10.9.9.9"]


def test_cached_replies_equal_the_full_pipelines_through_random_writes() -> None:
    """Any mix of writes (instances added, replaced, removed, services emptied, the
    index alone, a whole new snapshot, several between two queries): every reply the
    cache gives is the one the pipeline gives for the snapshot current then."""
    rng = random.Random(5)
    holder = CatalogHolder(catalog())
    clock = Clock()
    cached, plain = pair(holder, clock)
    queries = corpus()
    names = sorted({s.name for s in services()})
    for step in range(30):
        for _ in range(rng.choice((0, 1, 1, 2, 5))):
            current, index = holder.current, holder.current.index + 1
            name = rng.choice(names)
            kind = rng.random()
            if kind < 0.5:
                address = f"10.8.{rng.randrange(4)}.{rng.randrange(1, 5)}"
                added = instance(name, f"{name}-x{rng.randrange(3)}", address)
                holder.swap(current.with_instances([added], index=index)[0])
            elif kind < 0.7:
                view = current.get_service(name)
                if view is not None:
                    gone = [(name, rng.choice(view.instances).id)]
                    holder.swap(current.with_instances([], gone, index=index)[0])
            elif kind < 0.8:
                holder.patch([Service(name, ())], index=index)
            elif kind < 0.9:
                holder.patch([], index=index)
            else:
                holder.swap(catalog(index=index))
        for msg_id, (wire, tcp) in enumerate(rng.sample(queries, 100)):
            wire = (step + msg_id).to_bytes(2, "big") + wire[2:]
            assert canonical(cached.handle(wire, tcp=tcp)) == canonical(
                plain.handle(wire, tcp=tcp)
            ), (step, wire, tcp)


def test_negative_answers_follow_the_serial() -> None:
    holder = CatalogHolder(catalog())
    handler = Handler(zones(), holder, clock=Clock(), rng=random.Random(1))

    def serial() -> int:
        reply = parse_reply(handler.handle(query("nope.service.local")))
        return int(reply.authority[0][0].serial)

    assert serial() == 7
    holder.patch([changed("api", instance("api", "api-2", "10.0.1.2"))], index=9)
    assert serial() == 9


def test_cached_ttls_count_down_with_a_lease_and_lapse_with_it() -> None:
    clock = Clock()
    holder = CatalogHolder(catalog())
    cached, plain = pair(holder, clock)
    # web-2's lease has 2.5 s left at NOW
    for step in [0.0, 0.1, 0.4, 0.5, 0.6, 1.0, 1.4, 1.5, 1.6, 2.49, 2.5, 2.6, 5.0]:
        clock.now = NOW + step
        for qtype in ("A", "SRV", "TXT"):
            for name in ("web.service.local", "canary.web.service.local"):
                got = canonical(cached.handle(query(name, qtype)))
                assert got == canonical(plain.handle(query(name, qtype))), (step, name, qtype)


def test_lease_horizon() -> None:
    leased = Instance("s", "i", "10.0.0.1", 1, ttl=10, last_heartbeat=100.0)
    # 10 s left now, 9.x s an instant later: valid at this very instant only
    assert cache.lease_horizon([leased], 100.0) == 100.0
    assert cache.lease_horizon([leased], 100.5) == 101.0
    assert cache.lease_horizon([leased], 109.5) == 110.0
    assert cache.lease_horizon([leased], 110.0) == cache.FOREVER
    assert cache.lease_horizon([replace(leased, ttl=None)], 100.0) == cache.FOREVER


def test_several_orders_are_handed_out() -> None:
    handler = Handler(zones(), CatalogHolder(catalog()), clock=Clock(), rng=random.Random(3))
    orders = set()
    for msg_id in range(200):
        reply = parse_reply(handler.handle(query("cache.service.local", "SRV", msg_id=msg_id)))
        orders.add(tuple(rrset.to_text() for rrset in reply.answer))
    assert len(orders) == 2


def test_udp_and_tcp_are_cached_apart() -> None:
    big = Service(
        "big", tuple(instance("big", f"big-{n:02}", f"10.9.0.{n}", 80) for n in range(1, 60))
    )
    handler = Handler(zones(), CatalogHolder(catalog([big])), clock=Clock(), rng=random.Random(1))
    for _ in range(2):
        udp = parse_reply(handler.handle(query("big.service.local", "SRV")))
        tcp = parse_reply(handler.handle(query("big.service.local", "SRV"), tcp=True))
        assert udp.flags & dns.flags.TC
        assert not udp.answer
        assert len(tcp.answer) == 59


def test_the_cache_starts_over_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "MAX_ENTRIES", 3)
    handler = Handler(zones(), CatalogHolder(catalog()), clock=Clock(), rng=random.Random(1))
    store = handler._udp_cache
    assert store is not None
    for n in range(10):
        handler.handle(query(f"n{n}.service.local"))
        assert 1 <= len(store) <= 3
        assert store.size == sum(entry.size for entry in store.values())


@pytest.mark.parametrize("octets", [False, True])
@pytest.mark.parametrize("qtype", ["SRV", "A"])
def test_the_next_hits_put_the_other_orders_together_then_the_pipeline_rests(
    qtype: str, octets: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = Handler(
        zones(),
        CatalogHolder(catalog()),
        clock=Clock(),
        rng=random.Random(1),
        service_octets=octets,
    )
    calls: dict[str, int] = {"_lookup": 0, "_reply": 0, "_service_octets_reply": 0}
    for name in calls:
        original = getattr(handler, name)

        def counting(*args: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
            calls[_name] += 1
            return _original(*args, **kw)

        monkeypatch.setattr(handler, name, counting)
    replies = [handler.handle(query("web.service.local", qtype, msg_id=n)) for n in range(50)]
    # one lookup builds the records and packs them once (or writes them into octets
    # once); the other orders are those octets put together again (packing.Arrangement,
    # serviceoctets)
    if octets:
        assert calls == {"_lookup": 0, "_reply": 0, "_service_octets_reply": 1}
    else:
        assert calls == {"_lookup": 1, "_reply": 1, "_service_octets_reply": 0}
    assert len({reply[2:] for reply in replies if reply is not None}) > 1
    assert all(
        reply is not None and reply[:2] == n.to_bytes(2, "big") for n, reply in enumerate(replies)
    )
    assert len({repr(canonical(reply)[1:]) for reply in replies}) == 1
    store = handler._udp_cache
    assert store is not None
    assert store.size == sum(entry.size for entry in store.values())


@pytest.mark.parametrize("burst", [False, True])
def test_orders_put_together_are_the_octets_packing_gives_whatever_arrangements_are_held(
    burst: bool,
) -> None:
    """Handlers with the same seeded order: one packs every further order anew (no
    arrangement held), one holds the default number, one two (most dropped before their
    answer is asked again).  Asked the same queries, each answer four times in a row or
    once per round over all of them, they send the same octets."""
    queries = corpus()
    handlers = [
        Handler(
            zones(),
            CatalogHolder(catalog()),
            clock=Clock(),
            rng=random.Random(5),
            service_octets=False,  # the general path's arrangements
        )
        for _ in range(3)
    ]
    handlers[0]._arrangements = Arrangements(limit=0)
    handlers[1]._arrangements = Arrangements(limit=2)
    rounds = [[query] * cache.ORDERS for query in queries] if burst else [queries] * cache.ORDERS
    for asked in rounds:
        for msg_id, (wire, tcp) in enumerate(asked):
            wire = msg_id.to_bytes(2, "big") + wire[2:]
            replies = {handler.handle(wire, tcp=tcp) for handler in handlers}
            assert len(replies) == 1, (wire, tcp)
        assert len(handlers[1]._arrangements) <= 2
    held = [len(handler._arrangements) for handler in handlers]
    assert held == [0, 0, 0]  # every answer has all its orders: none is held
