"""The DNS port cannot be turned against others: response rate limiting per client
prefix with slip, no recursion for clients outside ``allow_from``, and UDP answers
never larger than the client can take.  Clients bind to different /24s of 127.0.0.0/8."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import httpx
import pytest
from e2e.harness import SrvdnsProcess
from fakeupstream import FakeUpstream

ZONE = """\
[[zone]]
name = "service.local"
ttl = 5

[[zone.service]]
name = "web"
instances = [{ address = "10.0.0.11", port = 8080 }, { address = "10.0.0.12", port = 8080 }]
"""
RRL = """
[server.rrl]
enabled = true
responses_per_second = 0.5
window = "20s"
slip = {slip}
"""
BURST = 40


def burst(server: SrvdnsProcess, source: str, count: int = BURST) -> list[dns.message.Message]:
    """Send ``count`` queries at once from ``source``; the replies that came back."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind((source, 0))
        for n in range(count):
            query = dns.message.make_query("web.service.local", "A")
            query.id = n
            sock.sendto(query.to_wire(), server.dns[0])
        replies: list[dns.message.Message] = []
        sock.settimeout(1.5)  # a busy machine may hold the server up for a while
        while len(replies) < count:
            try:
                wire = sock.recv(65535)
            except TimeoutError:
                return replies
            replies.append(dns.message.from_wire(wire))
        return replies
    finally:
        sock.close()


def answered(replies: list[dns.message.Message]) -> int:
    return sum(1 for r in replies if r.answer and not r.flags & dns.flags.TC)


def slipped(replies: list[dns.message.Message]) -> list[dns.message.Message]:
    return [r for r in replies if r.flags & dns.flags.TC]


def test_a_burst_from_one_prefix_is_limited_and_slipped(
    launch: Callable[..., SrvdnsProcess],
) -> None:
    server = launch(ZONE, server=RRL.format(slip=2))
    assert any("rate-limiting UDP responses on 127.0.0.1" in line for line in server.log)
    replies = burst(server, "127.0.1.10")
    limited = BURST - answered(replies)
    # 10 in the bucket (0.5/s for 20 s), plus what refilled while the burst was sent.
    assert 10 <= answered(replies) <= 12
    tc = slipped(replies)
    assert tc, "some limited responses are sent truncated"
    for reply in tc:
        assert not reply.answer
        assert not reply.additional
        assert reply.rcode() == dns.rcode.NOERROR
        assert reply.question[0].name.to_text() == "web.service.local."
    dropped = BURST - len(replies)
    assert dropped >= limited // 2 - 1, "about every other limited response is dropped"
    assert len(tc) >= limited // 2 - 1

    # A client of the same /24 shares the bucket; one from another /24 does not.
    assert answered(burst(server, "127.0.1.200", 10)) <= 3
    other = burst(server, "127.0.2.10", 5)
    assert answered(other) == 5
    # TCP is never limited: that is where a slipped client goes.
    tcp = dns.query.tcp(
        dns.message.make_query("web.service.local", "A"),
        server.host,
        port=server.port,
        timeout=3,
        source="127.0.1.10",
    )
    assert len(tcp.answer[0]) == 2


def test_dig_retries_a_slipped_answer_over_tcp(
    launch: Callable[..., SrvdnsProcess], dig: str
) -> None:
    server = launch(ZONE, server=RRL.format(slip=1))
    assert answered(burst(server, "127.0.3.1", 20)) < 20
    result = subprocess.run(
        [
            dig,
            f"@{server.host}",
            "-p",
            str(server.port),
            "-b",
            "127.0.3.1",
            "+tries=1",
            "+time=3",
            "web.service.local",
            "A",
        ],
        capture_output=True,
        text=True,
        timeout=15,
        check=True,
    )
    assert "Truncated, retrying in TCP mode" in result.stdout
    assert "10.0.0.11" in result.stdout
    assert "10.0.0.12" in result.stdout


def test_rate_limiting_is_off_on_loopback_listeners_by_default(
    launch: Callable[..., SrvdnsProcess],
) -> None:
    server = launch(ZONE)
    assert answered(burst(server, "127.0.1.10", 100)) == 100
    assert not any("rate-limiting" in line for line in server.log)


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


def test_no_recursion_for_clients_outside_allow_from(
    launch: Callable[..., SrvdnsProcess], upstream: FakeUpstream
) -> None:
    server = launch(
        ZONE + f'\n[forward]\nupstreams = ["127.0.0.1:{upstream.port}"]\n'
        'allow_from = ["127.0.1.0/24"]\n'
    )
    query = dns.message.make_query("www.example.test", "A")
    for tcp in (False, True):
        ask = dns.query.tcp if tcp else dns.query.udp
        outside = ask(query, server.host, port=server.port, timeout=3, source="127.0.2.1")
        assert outside.rcode() == dns.rcode.REFUSED
        assert not outside.flags & dns.flags.RA
        assert not outside.answer
        assert upstream.queries == 0
    inside = dns.query.udp(query, server.host, port=server.port, timeout=3, source="127.0.1.1")
    assert inside.rcode() == dns.rcode.NOERROR
    assert inside.flags & dns.flags.RA
    assert upstream.queries == 1
    own = dns.query.udp(
        dns.message.make_query("web.service.local", "A"),
        server.host,
        port=server.port,
        timeout=3,
        source="127.0.2.1",
    )
    assert own.flags & dns.flags.AA
    assert not own.flags & dns.flags.RA


SIZES = [
    (False, 0, 512),
    (True, 512, 512),
    (True, 700, 700),
    (True, 1100, 1100),
    (True, 4096, 1232),
]
"""(EDNS, advertised payload size, the largest reply allowed): 512 without EDNS, the
advertised size with it, never above edns_udp_size (1232)."""


def test_udp_answers_fit_the_advertised_size(launch: Callable[..., SrvdnsProcess]) -> None:
    server = launch()
    with httpx.Client(base_url=server.api, timeout=10) as http:
        for n in range(80):
            body = {
                "address": f"10.1.{n // 250}.{n % 250 + 1}",
                "port": 8000 + n,
                "meta": {"owner": f"team-{n:03d}-" + "x" * 40},
            }
            response = http.put(f"/v1/services/big/instances/big-instance-{n:03d}", json=body)
            assert response.is_success
    for edns, payload, limit in SIZES:
        for rdtype in ("SRV", "A", "TXT", "ANY"):
            query = dns.message.make_query(
                "big.service.local", rdtype, use_edns=0 if edns else False, payload=payload or 512
            )
            raw = _raw_udp(server, query)
            assert len(raw) <= limit, (edns, payload, rdtype, len(raw))
            reply = dns.message.from_wire(raw)
            full = dns.query.tcp(query, server.host, port=server.port, timeout=3)
            assert len(full.to_wire()) > limit, "the whole answer would not fit"
            assert reply.flags & dns.flags.TC or rdtype == "ANY", (edns, payload, rdtype)


def _raw_udp(server: SrvdnsProcess, query: dns.message.Message) -> bytes:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.settimeout(3)
        sock.sendto(query.to_wire(), server.dns[0])
        start = time.monotonic()
        while time.monotonic() - start < 3:
            wire = sock.recv(65535)
            if wire[:2] == query.to_wire()[:2]:
                return wire
        raise AssertionError("no reply")
    finally:
        sock.close()
