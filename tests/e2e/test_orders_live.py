"""Further record orders of cached answers, asked of a real srvdns: every reply whole and
consistent (each SRV target's address record owned by that target), the orders vary,
and a write is answered in every order from then on."""

from __future__ import annotations

import dns.message
import dns.rdatatype
import pytest
from e2e.harness import SrvdnsProcess

ZONE = """\
[[zone]]
name = "service.local"
ttl = 5
"""

INSTANCES = {
    # ids of several lengths: SRV records of several lengths, so an owner's pointer moves
    "a": {"address": "10.0.0.1", "port": 80, "weight": 1},
    "bb-22": {"address": "10.0.0.2", "port": 81, "weight": 5},
    "ccc-333": {"address": "2001:db8::3", "port": 82, "weight": 1},
    "dddd-4444-long": {"address": "10.0.0.4", "port": 83, "priority": 1},
    "e": {"address": "10.0.0.4", "port": 84, "weight": 2},  # an address shared
}


@pytest.fixture
def server(launch) -> SrvdnsProcess:  # type: ignore[no-untyped-def]
    proc = launch(ZONE)
    with proc.http() as http:
        for ident, body in INSTANCES.items():
            r = http.put(f"/v1/services/web/instances/{ident}", json=body)
            assert r.status_code in (200, 201), r.text
    return proc


def records(message: dns.message.Message) -> tuple[list[str], list[str]]:
    """The answer and additional records as text, sorted (an order's records)."""
    return tuple(  # type: ignore[return-value]
        sorted(f"{rrset.name} {rrset.ttl} {rr.to_text()}" for rrset in section for rr in rrset)
        for section in (message.answer, message.additional)
    )


def order(message: dns.message.Message) -> list[str]:
    return [rr.to_text() for rrset in message.answer for rr in rrset]


def targets_have_their_addresses(message: dns.message.Message) -> bool:
    targets = [rr.target for rrset in message.answer for rr in rrset]
    owners = [rrset.name for rrset in message.additional]
    return targets == owners  # in the same order, each owner the target itself


ROUNDS = 4
"""Rounds of questions per record type, each after its cached answer was dropped: its
orders are drawn at random, and the weights above make all of an A answer's orders the
same in about 3 % of draws."""


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_every_order_of_a_cached_answer_is_whole(server: SrvdnsProcess, tcp: bool) -> None:
    for rdtype, count in (("SRV", 5), ("A", 3), ("AAAA", 1)):
        varied = False
        for _ in range(ROUNDS):
            replies = [
                server.query("web.service.local", rdtype, tcp=tcp, use_edns=0) for _ in range(16)
            ]
            assert len({repr(records(reply)) for reply in replies}) == 1, rdtype
            assert len(order(replies[0])) == count
            if rdtype == "SRV":
                assert all(targets_have_their_addresses(reply) for reply in replies)
            varied = len({tuple(order(reply)) for reply in replies}) > 1
            if varied or count < 3:
                break
            with server.http() as http:  # the same registration again: the answer drawn anew
                r = http.put("/v1/services/web/instances/a", json=INSTANCES["a"])
                assert r.status_code == 200, r.text
        if count > 2:
            assert varied, rdtype


def test_a_write_is_in_every_order_after_it(server: SrvdnsProcess, dig: str) -> None:
    for _ in range(8):  # every order of the answer cached
        server.query("web.service.local", "SRV", use_edns=0)
    with server.http() as http:
        body = {"address": "10.0.0.9", "port": 99, "weight": 3}
        r = http.put("/v1/services/web/instances/bb-22", json=body)
        assert r.status_code in (200, 201), r.text
    for _ in range(8):
        reply = server.query("web.service.local", "SRV", use_edns=0)
        answer, additional = records(reply)
        assert any(line.endswith(" 0 3 99 bb-22.instance.web.service.local.") for line in answer)
        assert "bb-22.instance.web.service.local. 5 10.0.0.9" in additional
        assert targets_have_their_addresses(reply)
    output = server.dig("web.service.local", "SRV", "+noall", "+answer", "+additional")
    text = " ".join(output.split())
    assert "bb-22.instance.web.service.local. 5 IN A 10.0.0.9" in text
    assert text.count(" IN SRV ") == len(INSTANCES)
