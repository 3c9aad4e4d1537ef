"""The store of arrangements: bounded, the oldest dropped first."""

from __future__ import annotations

import random

from srvdns.nameserver import records
from srvdns.nameserver.authority import Answer, Outcome
from srvdns.nameserver.orders import Arrangements, Reorder
from srvdns.nameserver.packing import Arrangement, ArrangingPacker
from srvdns.nameserver.wire import parse_query

from .dnstest import query

QNAME = records.name("web.service.local")


def arrangement() -> Arrangement:
    parsed = parse_query(query("web.service.local", "A"))
    packer = ArrangingPacker(parsed.msg_id, 0x8400, parsed.question, limit=512)
    assert packer.add_all(1, [records.a(QNAME, 5, "10.0.0.1"), records.a(QNAME, 5, "10.0.0.2")])
    made = packer.arrangement(packer.finish())
    assert made is not None
    return made


def reorder(arrangements: Arrangements) -> Reorder:
    def pack(answer: Answer, keep: list[ArrangingPacker] | None) -> bytes:
        raise AssertionError("not packed here")

    def same(rng: random.Random) -> Answer:
        return Answer(Outcome.SUCCESS)

    return Reorder(pack, same, random.Random(1), (), arrangements)


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
