"""Packing replies: compression, size limits, whole RRsets, the UDP answer limit."""

from __future__ import annotations

import random
import struct

import dns.message
import pytest
from dnslib import QTYPE  # type: ignore[import-untyped]

from srvdns.nameserver import records
from srvdns.nameserver.packing import ArrangingPacker, Packer, rrsets, sample
from srvdns.nameserver.wire import parse_query

from .dnstest import query

QNAME = records.name("web.service.local")


def target(n: int) -> str:
    return f"web-{n}.instance.web.service.local"


def srv(n: int, priority: int = 0, weight: int = 1) -> object:
    return records.srv(QNAME, 5, priority, weight, 8080, records.name(target(n)))


def address(n: int) -> object:
    return records.a(records.name(target(n)), 5, f"10.0.{n // 250}.{n % 250}")


def packer(limit: int = 65535, *, qname: str = "web.service.local") -> Packer:
    parsed = parse_query(query(qname, "SRV"))
    return Packer(parsed.msg_id, 0x8400, parsed.question, limit=limit)


def arranging(limit: int = 65535, *, qname: str = "web.service.local") -> ArrangingPacker:
    parsed = parse_query(query(qname, "SRV"))
    return ArrangingPacker(parsed.msg_id, 0x8400, parsed.question, limit=limit)


def test_rfc1035_4_1_4_owner_names_point_at_the_question_and_srv_targets() -> None:
    p = packer()
    for n in range(1, 4):
        assert p.add(1, srv(n))
    for n in range(1, 4):
        assert p.add(3, address(n))
    wire = p.finish()
    question_end = 12 + len("web.service.local") + 2 + 4
    first = wire[question_end:]
    assert first[:2] == b"\xc0\x0c", "the answer owner is a pointer to the question"
    reply = dns.message.from_wire(wire)
    assert [rr.to_text() for rr in reply.answer[0]] == [f"0 1 8080 {target(n)}." for n in (1, 2, 3)]
    assert [rrset.name.to_text() for rrset in reply.additional] == [
        f"{target(n)}." for n in (1, 2, 3)
    ]
    # Each address record's owner is one pointer into the SRV record's target (RFC 2782
    # forbids compressing the target itself, not pointing at it).
    owner_pointers = wire.count(b"\x00\x01\x00\x01\x00\x00\x00\x05\x00\x04")
    assert owner_pointers == 3
    uncompressed = 12 + len(first) + sum(len(target(n)) + 2 - 2 for n in (1, 2, 3)) * 2
    assert len(wire) < uncompressed


def test_compression_is_case_exact() -> None:
    p = packer(qname="WEB.service.local")
    assert p.add(1, srv(1))
    reply = dns.message.from_wire(p.finish())
    (rr,) = reply.answer[0]
    assert rr.target.to_text() == f"{target(1)}.", "web in the target keeps its own case"


def test_pointers_never_point_past_16383() -> None:
    p = packer()
    count = 600
    assert all(p.add(1, srv(n)) for n in range(count))
    assert all(p.add(3, address(n)) for n in range(count))
    wire = p.finish()
    assert len(wire) > 2 * 0x4000
    reply = dns.message.from_wire(wire)
    assert sum(len(rrset) for rrset in reply.answer) == count
    assert [rrset.name.to_text() for rrset in reply.additional] == [
        f"{target(n)}." for n in range(count)
    ]


def test_sections_are_written_in_order() -> None:
    p = packer()
    assert p.add(3, address(1))
    with pytest.raises(ValueError, match="section"):
        p.add(1, srv(1))


def test_add_all_is_all_or_nothing_and_undo_forgets_names() -> None:
    p = packer(limit=120)
    assert p.add(1, srv(1))
    size = len(p.finish())
    assert not p.add_all(3, [address(1), address(2), address(3), address(4), address(5)])
    assert len(p.finish()) == size
    assert p.add(3, address(1))
    reply = dns.message.from_wire(p.finish())
    assert len(reply.additional) == 1


@pytest.mark.parametrize("limit", range(40, 200, 7))
def test_never_past_the_limit(limit: int) -> None:
    p = packer(limit=limit)
    for n in range(1, 10):
        p.add(1, srv(n))
    for n in range(1, 10):
        p.add(3, address(n))
    wire = p.finish()
    assert len(wire) <= limit
    dns.message.from_wire(wire)


def test_reserve_leaves_room_for_the_tail() -> None:
    p = Packer(1, 0x8000, None, limit=40, reserve=11)
    assert not p.add(1, srv(1))
    wire = p.finish(tail=b"\x00" * 11, tail_count=1)
    assert struct.unpack_from("!6H", wire)[2:] == (0, 0, 0, 1)


def test_rrsets_groups_by_owner_type_and_class() -> None:
    glue = records.name("ns.service.local")
    other = records.name("NS.service.local")
    groups = rrsets(
        [
            records.a(glue, 5, "10.0.0.1"),
            records.aaaa(glue, 5, "::1"),
            records.a(other, 5, "1.2.3.4"),
        ]
    )
    assert [[rr.rtype for rr in group] for group in groups] == [[QTYPE.A, QTYPE.A], [QTYPE.AAAA]]


def test_sample_cuts_each_rrset_and_its_additional_records() -> None:
    answer = [srv(n) for n in range(1, 11)]
    additional = [address(n) for n in range(1, 11)]
    seen: set[tuple[int, ...]] = set()
    for seed in range(20):
        kept, extra = sample(answer, additional, 3, random.Random(seed))
        assert len(kept) == 3
        targets = sorted(int(str(rr.rdata.target).split(".")[0][4:]) for rr in kept)
        assert sorted(int(str(rr.rname).split(".")[0][4:]) for rr in extra) == targets
        seen.add(tuple(targets))
    assert len(seen) > 10, "a random subset, not always the same one"


def test_sample_keeps_small_rrsets_untouched() -> None:
    answer = [srv(1), srv(2)]
    additional = [address(1), address(2)]
    assert sample(answer, additional, 2, random.Random(1)) == (answer, additional)


def test_sample_of_srv_prefers_the_lowest_priority() -> None:
    answer = [srv(n, priority=1) for n in range(1, 6)] + [srv(n, priority=0) for n in range(6, 9)]
    for seed in range(10):
        kept, _ = sample(answer, [], 3, random.Random(seed))
        assert {rr.rdata.priority for rr in kept} == {0}


def mixed(rng: random.Random, text: str) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c for c in text)


def packed(
    qname: str, answer: list[object], additional: list[object], tail: bytes = b""
) -> tuple[bytes, ArrangingPacker]:
    """The reply packed as the handler packs one: answer, then additional by RRset."""
    p = arranging(qname=qname)
    assert p.add_all(1, answer)
    for rrset in rrsets(additional):
        assert p.add_all(3, rrset)
    return p.finish(tail=tail, tail_count=1 if tail else 0), p


@pytest.mark.parametrize("seed", range(40))
def test_an_arrangement_gives_the_octets_packing_that_order_gives(seed: int) -> None:
    """Random SRV and address answers, random case in the question and the targets, the
    first order packed a random one: every other order put together from the pieces is
    octet for octet a fresh packing of it."""
    rng = random.Random(seed)
    qname = mixed(rng, "web.service.local")
    owner = records.name(qname)
    count = rng.randint(1, 9)
    names = [
        records.name(mixed(rng, f"i{n}-{rng.randint(0, 99)}.instance.web.service.local"))
        for n in range(count)
    ]
    srvs = [
        records.srv(owner, 5, rng.randint(0, 9), 1, 80 + n, name) for n, name in enumerate(names)
    ]
    glue = [
        records.aaaa(name, 5, f"2001:db8::{n + 1:x}")
        if n % 3 == 0
        else records.a(name, 5, f"10.0.0.{n + 1}")
        for n, name in enumerate(names)
    ]
    plain = [records.a(owner, 3, f"10.1.0.{n + 1}") for n in range(count)]
    opt = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"
    for answer, additional in ((srvs, glue), (plain, [])):
        order = list(range(count))
        rng.shuffle(order)
        first, p = packed(
            qname,
            [answer[n] for n in order],
            [additional[n] for n in order] if additional else [],
            opt,
        )
        arrangement = p.arrangement(first, order[:], order[:] if additional else [])
        assert arrangement is not None
        for _ in range(10):
            rng.shuffle(order)
            new_answer = [answer[n] for n in order]
            new_additional = [additional[n] for n in order] if additional else []
            expected, _ = packed(qname, new_answer, new_additional, opt)
            assert arrangement.reordered(order, order if additional else []) == expected


def test_an_arrangement_keeps_the_authority_section_between_the_others() -> None:
    answer = [srv(n) for n in (1, 2, 3)]
    additional = [address(n) for n in (1, 2, 3)]
    # names pointing at the question alone: compressed whole, the same in every order
    authority = [
        records.ns(records.name("service.local"), 5, QNAME),
        records.ns(records.name("service.local"), 5, records.name("service.local")),
    ]

    def pack(order: list[int]) -> tuple[bytes, ArrangingPacker]:
        p = arranging()
        assert p.add_all(1, [answer[n] for n in order])
        assert p.add_all(2, authority)
        for rrset in rrsets([additional[n] for n in order]):
            assert p.add_all(3, rrset)
        return p.finish(), p

    first, p = pack([2, 0, 1])
    arrangement = p.arrangement(first, [2, 0, 1], [2, 0, 1])
    assert arrangement is not None
    for order in ([0, 1, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]):
        assert arrangement.reordered(order, order) == pack(order)[0]


def test_no_arrangement_when_another_order_could_compress_differently() -> None:
    # Two records naming the same target: which one an address record points at depends
    # on the order.
    twice = [srv(1), records.srv(QNAME, 5, 1, 1, 9090, records.name(target(1)))]
    glue = [address(1)]
    first, p = packed("web.service.local", twice, glue)
    arrangement = p.arrangement(first, [0, 1], [0])
    assert arrangement is None or arrangement.reordered([1, 0], [0]) is None
    # A name compressed against part of itself: in another order an earlier record could
    # hold more of it.
    answer = [srv(1), srv(2)]
    glue = [records.a(records.name(f"y.{target(1)}"), 5, "10.0.0.1")]
    first, p = packed("web.service.local", answer, glue)
    assert p.arrangement(first, [0, 1], [0]) is None
    # A target that ends another: an owner points at whichever of the two comes first.
    nested = [srv(1), records.srv(QNAME, 5, 1, 1, 9090, records.name(f"x.{target(1)}"))]
    glue = [address(1)]
    for answer in (nested, nested[::-1]):
        first, p = packed("web.service.local", answer, glue)
        expected, _ = packed("web.service.local", answer[::-1], glue)
        arrangement = p.arrangement(first, [0, 1], [0])
        if arrangement is not None:  # put together, or left to packing
            assert arrangement.reordered([1, 0], [0]) in (None, expected)


def test_no_arrangement_once_records_were_left_out() -> None:
    p = arranging(limit=120)
    assert p.add_all(1, [srv(1)])
    glue = [address(n) for n in range(1, 9)]
    assert not p.add_all(3, glue)
    assert p.arrangement(p.finish(), [0], list(range(8))) is None


def test_an_additional_rrset_of_several_records_is_left_to_packing() -> None:
    # another order would group its records anew, as ``rrsets`` groups them
    answer = [srv(1), srv(2)]
    additional = [address(1), address(2), records.a(records.name(target(1)), 5, "10.9.9.9")]
    first, p = packed("web.service.local", answer, additional)
    assert p.arrangement(first, [0, 1], [0, 1, 2]) is None


def test_an_arrangement_takes_as_many_places_as_records() -> None:
    answer = [srv(n) for n in (1, 2, 3)]
    additional = [address(n) for n in (1, 2, 3)]
    first, p = packed("web.service.local", answer, additional)
    same = p.arrangement(first, [0, 1, 2], [0, 1, 2])
    assert same is not None
    assert same.reordered([0, 1, 2], [0, 1, 2]) == first
    assert p.arrangement(first, [0, 1], [0, 1, 2]) is None
    assert p.arrangement(first, [0, 1, 2], [0, 1, 2, 3]) is None
    assert same.reordered([0, 1], [0, 1, 2]) is None
    assert same.reordered([0, 1, 2], []) is None


def test_no_record_is_put_before_the_name_its_pointer_points_at() -> None:
    # An address record in the answer section whose owner points at an SRV target.
    answer = [srv(1), address(1)]
    first, p = packed("web.service.local", answer, [])
    arrangement = p.arrangement(first, [0, 1], [])
    assert arrangement is not None
    assert arrangement.reordered([0, 1], ()) == first
    assert arrangement.reordered([1, 0], ()) is None
    assert arrangement.reordered([0, 1], ()) == first


def test_pointers_past_16383_are_left_to_packing() -> None:
    # An order that moves an SRV target past the reach of a pointer: packing writes the
    # address record's owner out in full, so that order is not put together.
    texts = [records.txt(QNAME, 5, (f"{n:03}" + "x" * 240,)) for n in range(70)]
    answer = [srv(1), *texts]
    glue = [address(1)]
    first, p = packed("web.service.local", answer, glue)
    assert len(first) > 16383
    order = list(range(len(answer)))
    arrangement = p.arrangement(first, order, [0])
    assert arrangement is not None
    assert arrangement.reordered(order, [0]) == first
    assert arrangement.reordered(order[::-1], [0]) is None
    nearer = [*order[1:30], 0, *order[30:]]  # still within reach
    expected, _ = packed("web.service.local", [answer[n] for n in nearer], glue)
    assert arrangement.reordered(nearer, [0]) == expected
