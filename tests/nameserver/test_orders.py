"""Further orders of cached answers: put together from a held arrangement or packed
anew, the same octets and the same draws either way; the store of arrangements bounded,
the oldest dropped first."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest
from dnslib import QTYPE, DNSLabel  # type: ignore[import-untyped]

from srvdns.catalog import Catalog, CatalogHolder
from srvdns.config import ZoneConfig
from srvdns.model import Instance, Service
from srvdns.nameserver import cache, names, records
from srvdns.nameserver.authority import Answer, Outcome, lookup
from srvdns.nameserver.handler import Handler
from srvdns.nameserver.orders import Arrangements, Reorder
from srvdns.nameserver.packing import Arrangement, ArrangingPacker, rrsets
from srvdns.nameserver.wire import parse_query

from .dnstest import query

QNAME = records.name("web.service.local")
ZONE = ZoneConfig(name="service.local")


def arrangement() -> Arrangement:
    parsed = parse_query(query("web.service.local", "A"))
    packer = ArrangingPacker(parsed.msg_id, 0x8400, parsed.question, limit=512)
    answer = [records.a(QNAME, 5, "10.0.0.1"), records.a(QNAME, 5, "10.0.0.2")]
    assert packer.add_all(1, answer)
    made = packer.arrangement(packer.finish(), [0, 1], [])
    assert made is not None
    return made


class Unordered:
    """A reordering of no records, for the store's tests."""

    def first_order(self) -> tuple[Sequence[int], Sequence[int]] | None:
        return None

    def draw(self, rng: random.Random) -> tuple[Sequence[int], Sequence[int]]:
        return [], []

    def answer(self, answer: Sequence[int], additional: Sequence[int]) -> Answer:
        return Answer(Outcome.SUCCESS)

    def __call__(self, rng: random.Random) -> Answer:
        return self.answer(*self.draw(rng))


def reorder(arrangements: Arrangements) -> Reorder:
    def pack(answer: Answer, keep: list[ArrangingPacker] | None) -> bytes:
        raise AssertionError("not packed here")

    return Reorder(pack, Unordered(), random.Random(1), arrangements)


def test_the_oldest_is_dropped_first_and_never_more_than_the_limit_held() -> None:
    store = Arrangements(limit=3)
    keys = [reorder(store) for _ in range(5)]
    made = [arrangement() for _ in keys]
    for key, each in zip(keys, made, strict=True):
        store.put(key, each)
        assert len(store) <= 3
    assert [store.get(key) for key in keys] == [None, None, *made[2:]]
    store.put(keys[2], made[0])  # held again: nothing else dropped
    assert len(store) == 3
    assert store.get(keys[2]) is made[0]


def test_a_finished_answer_is_dropped_and_a_limit_of_none_holds_nothing() -> None:
    store = Arrangements(limit=2)
    key = reorder(store)
    store.put(key, arrangement())
    store.discard(key)
    store.discard(key)
    assert store.get(key) is None
    assert len(store) == 0
    empty = Arrangements(limit=0)
    empty.put(key, arrangement())
    assert empty.get(key) is None
    assert len(empty) == 0


def pack(answer: Answer, keep: list[ArrangingPacker] | None = None) -> bytes:
    """The reply as the handler packs it (answer, then additional by RRset)."""
    parsed = parse_query(query("web.service.local", "SRV"))
    packer = ArrangingPacker(parsed.msg_id, 0x8400, parsed.question, limit=65535)
    assert packer.add_all(1, answer.answer)
    for rrset in rrsets(answer.additional):
        assert packer.add_all(3, rrset)
    if keep is not None:
        keep.append(packer)
    return packer.finish()


def web(instances: Sequence[Instance], qtype: int, seed: int) -> Answer:
    catalog = Catalog.build([Service("web", tuple(instances))], index=1)
    return lookup(
        ZONE,
        catalog,
        names.ServiceName("web"),
        qtype,
        owner=DNSLabel("web.service.local"),
        now=0.0,
        rng=random.Random(seed),
    )


WEIGHTED = [
    Instance(service="web", id=f"w{n}", address=f"10.0.0.{n % 3}", port=80 + n, weight=n % 4)
    for n in range(7)
]
"""Weights 0 to 3, addresses shared."""


@pytest.mark.parametrize("qtype", [QTYPE.SRV, QTYPE.A])
@pytest.mark.parametrize("held", [0, 1])
def test_an_order_put_together_or_packed_anew_is_the_one_the_answer_draws(
    qtype: int, held: int
) -> None:
    """A ``Reorder`` with its arrangement held, or none held (``held`` 0: every order
    packed anew), gives each time the reply of the answer its reordering draws next from
    the same generator, and leaves the generator where that draw does."""
    first = web(WEIGHTED, qtype, seed=3)
    assert first.reorder is not None
    again = Reorder(pack, first.reorder, random.Random(9), Arrangements(limit=held))
    kept: list[ArrangingPacker] = []
    reply = pack(first, kept)
    again.first(kept[0], reply)
    again.keep()
    following = web(WEIGHTED, qtype, seed=3).reorder
    assert following is not None
    rng = random.Random(9)
    for _ in range(6):
        assert again() == pack(following(rng))
        assert again._rng.getstate() == rng.getstate()


def test_an_order_an_arrangement_refuses_is_packed_anew() -> None:
    first = web(WEIGHTED, QTYPE.SRV, seed=4)
    assert first.reorder is not None
    store = Arrangements()
    again = Reorder(pack, first.reorder, random.Random(2), store)
    # two SRV records naming one target: which one the address record's owner points
    # at depends on the order, so no order is put together from it
    srv = records.srv(QNAME, 5, 0, 1, 80, records.name("t.web.service.local"))
    same = records.srv(QNAME, 5, 0, 1, 81, records.name("t.web.service.local"))
    address = records.a(records.name("t.web.service.local"), 5, "10.0.0.1")
    kept: list[ArrangingPacker] = []
    reply = pack(Answer(Outcome.SUCCESS, (srv, same), (), (address,)), kept)
    refusing = kept[0].arrangement(reply, [0, 1], [0])
    assert refusing is not None
    assert refusing.reordered([1, 0], [0]) is None
    store.put(again, refusing)
    following = web(WEIGHTED, QTYPE.SRV, seed=4).reorder
    assert following is not None
    rng = random.Random(2)
    assert again() == pack(following(rng))
    assert store.get(again) is not refusing  # the order packed anew is held instead
    assert again() == pack(following(rng))


def shapes() -> Catalog:
    """Services whose answers take every path: one record, weights and priorities,
    shared addresses, both families, and enough instances to fill a UDP reply."""

    def of(service: str, count: int, **kw: Any) -> Service:
        def address(n: int) -> str:
            return f"10.{n // 250}.{n % 250}.1" if n % 4 else f"2001:db8::{n:x}"

        fields = {"address": address, "port": lambda n: 1000 + n, **kw}
        return Service(
            service,
            tuple(
                Instance(
                    service=service,
                    id=f"{service}-{n}",
                    **{key: value(n) for key, value in fields.items()},
                )
                for n in range(count)
            ),
        )

    return Catalog.build(
        [
            of("one", 1),
            of("same", 6),
            of("weighted", 9, weight=lambda n: n % 4, priority=lambda n: n % 2),
            of("shared", 8, address=lambda n: f"10.0.0.{n % 3}"),
            of("many", 60),
        ],
        index=1,
    )


@pytest.mark.parametrize("limit", [None, 3])
def test_replies_are_the_same_whatever_arrangements_are_held(limit: int | None) -> None:
    """Handlers seeded alike, holding no arrangement, one, or the default number, asked
    the same questions over UDP (512 octets: additional records left out, answers
    truncated) and TCP, send the same octets; holding them, most orders are not packed."""
    handlers = [
        Handler([ZONE], CatalogHolder(shapes()), rng=random.Random(8), udp_answer_limit=limit)
        for _ in range(3)
    ]
    handlers[0]._arrangements = Arrangements(limit=0)
    handlers[1]._arrangements = Arrangements(limit=1)
    packed = [0, 0, 0]
    for n, handler in enumerate(handlers):
        original = handler._reply

        def counting(*args: Any, _n: int = n, _original: Any = original, **kw: Any) -> Any:
            packed[_n] += 1
            return _original(*args, **kw)

        handler._reply = counting  # type: ignore[method-assign]
    asked = [
        (query(f"{service}.service.local", qtype, edns=edns, payload=payload), tcp)
        for service in ("one", "same", "weighted", "shared", "many")
        for qtype in ("SRV", "A", "AAAA", "ANY")
        for edns, payload in ((-1, 512), (0, 1232), (0, 4096))
        for tcp in (False, True)
    ]
    for wire, tcp in asked * 2 + [pair for pair in asked for _ in range(cache.ORDERS)]:
        replies = {handler.handle(wire, tcp=tcp) for handler in handlers}
        assert len(replies) == 1, (wire, tcp)
    assert packed[2] < packed[1] < packed[0]
