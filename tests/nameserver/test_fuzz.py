"""Fuzzing the pipeline in process: random and mutated messages (``dnsmutate``).

Whatever arrives, ``Handler.handle`` returns: no reply only to a response or to fewer
octets than a header, otherwise a reply that dnspython parses, with the query's ID,
opcode and question, within the UDP size, never SERVFAIL and never a logged error.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator

import dnsmutate
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from srvdns.nameserver.handler import Handler

from .dnstest import make_handler

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SEEDS = dnsmutate.corpus()
UDP_SIZE = 1232


class Errors(logging.Handler):
    """Collects every record at ERROR and above from the name-server package."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def errors() -> Iterator[Errors]:
    collector = Errors()
    logger = logging.getLogger("srvdns.nameserver")
    logger.addHandler(collector)
    try:
        yield collector
    finally:
        logger.removeHandler(collector)


HANDLER: Handler = make_handler(edns_udp_size=UDP_SIZE)


def check(wire: bytes, *, tcp: bool, errors: Errors) -> None:
    reply = HANDLER.handle(wire, tcp=tcp)
    assert not errors.records, errors.records[0].getMessage()
    if reply is None:
        assert not dnsmutate.expects_reply(wire), "every query gets a reply"
        return
    assert dnsmutate.expects_reply(wire), "no reply to a response or a runt"
    problem = dnsmutate.reply_problem(wire, reply)
    assert problem is None, f"{problem}: {wire.hex()} -> {reply.hex()}"
    assert reply[3] & 0x0F != 2, "SERVFAIL"
    assert len(reply) <= (65535 if tcp else UDP_SIZE)


def test_the_corpus_is_answered(errors: Errors) -> None:
    for wire in SEEDS:
        for tcp in (False, True):
            check(wire, tcp=tcp, errors=errors)


@SETTINGS
@given(seed=st.integers(0, 2**64 - 1), tcp=st.booleans())
def test_mutated_queries(errors: Errors, seed: int, tcp: bool) -> None:
    rng = random.Random(seed)
    for _ in range(20):
        check(dnsmutate.mutate(rng, SEEDS), tcp=tcp, errors=errors)


@SETTINGS
@given(
    wire=st.binary(max_size=600) | st.binary(min_size=12, max_size=40).map(lambda b: b"\x00" + b),
    tcp=st.booleans(),
)
@example(
    wire=b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01", tcp=False
)
@example(wire=bytes(12), tcp=True)
def test_random_bytes(errors: Errors, wire: bytes, tcp: bool) -> None:
    check(wire, tcp=tcp, errors=errors)


@SETTINGS
@given(
    base=st.sampled_from(SEEDS),
    mutation=st.sampled_from(dnsmutate.MUTATIONS),
    seed=st.integers(0, 2**32),
    tcp=st.booleans(),
)
def test_each_mutation(errors: Errors, base: bytes, mutation: object, seed: int, tcp: bool) -> None:
    assert callable(mutation)
    wire = mutation(random.Random(seed), base)
    assert isinstance(wire, bytes)
    check(wire, tcp=tcp, errors=errors)


def test_the_mutations_reach_every_parser_rule(errors: Errors) -> None:
    """The mutations are not all rejected the same way: they get FORMERR, NOTIMP,
    REFUSED, NXDOMAIN and NOERROR answers, and some get no reply."""
    rng = random.Random(5)
    rcodes: set[int] = set()
    silent = 0
    for _ in range(3000):
        wire = dnsmutate.mutate(rng, SEEDS)
        reply = HANDLER.handle(wire, tcp=False)
        if reply is None:
            silent += 1
            continue
        rcodes.add(reply[3] & 0x0F)
    assert silent > 0
    assert {0, 1, 3, 4, 5} <= rcodes
    assert not errors.records
