"""Forwarding to upstream resolvers: answers, failover, caching, TC -> TCP, allow_from."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Iterator

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import pytest
from dns.message import Message
from dnslib import EDNS0, QTYPE, RCODE, DNSRecord
from fakeupstream import FakeUpstream

from srvdns.config import ListenAddress
from srvdns.nameserver import server
from srvdns.nameserver.forward import Forwarder, cache_ttl, is_refused, with_ra
from srvdns.nameserver.server import DnsServers, start

from .dnstest import make_handler


def query(name: str, qtype: str = "A", *, msg_id: int = 0x1234, edns: bool = False) -> bytes:
    record = DNSRecord.question(name, qtype)
    record.header.id = msg_id
    if edns:
        record.add_ar(EDNS0(udp_len=4096))
    return bytes(record.pack())


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


def dead_port() -> int:
    """A UDP port on 127.0.0.1 that nothing listens on (bound, never read: a timeout)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    silent_sockets.append(sock)
    return port


silent_sockets: list[socket.socket] = []


@pytest.fixture(autouse=True)
def _close_silent() -> Iterator[None]:
    yield
    while silent_sockets:
        silent_sockets.pop().close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def forwarder(*ports: int, **options: object) -> Forwarder:
    return Forwarder([("127.0.0.1", port) for port in ports], ["service.local"], **options)  # type: ignore[arg-type]


async def test_answer_has_client_id_and_ra(upstream: FakeUpstream) -> None:
    reply = DNSRecord.parse(
        await forwarder(upstream.port).resolve(query("www.example.test", msg_id=777), tcp=False)
    )
    assert reply.header.id == 777
    assert reply.header.ra == 1
    assert reply.header.rcode == RCODE.NOERROR
    assert [str(rr.rdata) for rr in reply.rr] == ["192.0.2.1"]
    assert str(reply.q.qname) == "www.example.test."


async def test_nxdomain_forwarded(upstream: FakeUpstream) -> None:
    reply = DNSRecord.parse(
        await forwarder(upstream.port).resolve(query("no.example.test"), tcp=False)
    )
    assert reply.header.rcode == RCODE.NXDOMAIN
    assert reply.auth[0].rtype == QTYPE.SOA


async def test_servfail_fails_over_to_next() -> None:
    with FakeUpstream(mode="servfail") as bad, FakeUpstream() as good:
        reply = DNSRecord.parse(
            await forwarder(bad.port, good.port).resolve(query("www.example.test"), tcp=False)
        )
        assert reply.header.rcode == RCODE.NOERROR
        assert bad.queries == 1
        assert good.queries == 1


async def test_timeout_fails_over_to_next(upstream: FakeUpstream) -> None:
    fwd = forwarder(dead_port(), upstream.port, timeout=0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    reply = DNSRecord.parse(await fwd.resolve(query("www.example.test"), tcp=False))
    assert reply.header.rcode == RCODE.NOERROR
    assert 0.15 < loop.time() - started < 1.5


async def test_all_upstreams_fail_is_servfail() -> None:
    with FakeUpstream(mode="servfail") as bad:
        reply = DNSRecord.parse(
            await forwarder(bad.port, dead_port(), timeout=0.1).resolve(
                query("www.example.test", msg_id=9), tcp=False
            )
        )
    assert reply.header.id == 9
    assert reply.header.rcode == RCODE.SERVFAIL
    assert str(reply.q.qname) == "www.example.test."


async def test_random_strategy_uses_every_upstream() -> None:
    with FakeUpstream() as one, FakeUpstream() as two:
        fwd = forwarder(one.port, two.port, strategy="random", cache_size=0)
        for _ in range(30):
            await fwd.resolve(query("www.example.test"), tcp=False)
        assert one.queries > 0
        assert two.queries > 0


async def test_cache_serves_for_min_ttl_with_aged_ttls(upstream: FakeUpstream) -> None:
    clock = Clock()
    fwd = forwarder(upstream.port, clock=clock)
    await fwd.resolve(query("www.example.test"), tcp=False)
    clock.now += 100
    reply = DNSRecord.parse(await fwd.resolve(query("www.example.test", msg_id=5), tcp=False))
    assert upstream.queries == 1
    assert reply.header.id == 5
    assert reply.rr[0].ttl == 200
    clock.now += 201
    await fwd.resolve(query("www.example.test"), tcp=False)
    assert upstream.queries == 2


async def test_negative_answers_cached_for_soa_minimum(upstream: FakeUpstream) -> None:
    clock = Clock()
    fwd = forwarder(upstream.port, clock=clock)
    await fwd.resolve(query("missing.example.test"), tcp=False)
    clock.now += 29
    await fwd.resolve(query("missing.example.test"), tcp=False)
    assert upstream.queries == 1
    clock.now += 2
    await fwd.resolve(query("missing.example.test"), tcp=False)
    assert upstream.queries == 2


async def test_cache_is_bounded(upstream: FakeUpstream) -> None:
    fwd = forwarder(upstream.port, cache_size=1)
    await fwd.resolve(query("www.example.test"), tcp=False)
    await fwd.resolve(query("short.example.test"), tcp=False)
    await fwd.resolve(query("www.example.test"), tcp=False)
    assert upstream.queries == 3


async def test_servfail_not_cached() -> None:
    with FakeUpstream(mode="servfail") as bad:
        fwd = forwarder(bad.port)
        await fwd.resolve(query("www.example.test"), tcp=False)
        await fwd.resolve(query("www.example.test"), tcp=False)
        assert bad.queries == 2


async def test_truncated_udp_retried_over_tcp() -> None:
    with FakeUpstream(mode="truncate") as up:
        wire = await forwarder(up.port).resolve(query("www.example.test"), tcp=True)
        reply = DNSRecord.parse(wire)
        assert reply.header.tc == 0
        assert [str(rr.rdata) for rr in reply.rr] == ["192.0.2.1"]
        assert up.udp_queries == 1
        assert up.tcp_queries == 1


async def test_large_answer_truncated_for_small_udp_client(upstream: FakeUpstream) -> None:
    fwd = forwarder(upstream.port)
    udp = DNSRecord.parse(await fwd.resolve(query("big.example.test"), tcp=False))
    assert udp.header.tc == 1
    assert not udp.rr
    assert upstream.tcp_queries == 1
    tcp = DNSRecord.parse(await fwd.resolve(query("big.example.test"), tcp=True))
    assert len(tcp.rr) == 60
    big = DNSRecord.parse(await fwd.resolve(query("big.example.test", edns=True), tcp=False))
    assert len(big.rr) == 60


async def test_mismatched_reply_id_ignored() -> None:
    """A reply with another ID (spoofed) is not taken; the query times out instead."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    loop = asyncio.get_running_loop()

    async def spoof() -> None:
        data, addr = await loop.sock_recvfrom(sock, 512)
        reply = DNSRecord.parse(data).reply()
        reply.header.id = (reply.header.id + 1) % 65536
        await loop.sock_sendto(sock, reply.pack(), addr)

    try:
        task = asyncio.create_task(spoof())
        wire = await forwarder(sock.getsockname()[1], timeout=0.3).resolve(
            query("www.example.test"), tcp=False
        )
        await task
        assert DNSRecord.parse(wire).header.rcode == RCODE.SERVFAIL
    finally:
        sock.close()


def test_wants_only_in_class_queries_outside_zones(upstream: FakeUpstream) -> None:
    fwd = forwarder(upstream.port)
    assert fwd.wants(query("www.example.test"))
    assert not fwd.wants(query("web.service.local"))
    assert not fwd.wants(query("WEB.Service.Local"))
    assert not fwd.wants(query("service.local", "SOA"))
    assert not fwd.wants(query("example.test", "AXFR"))
    chaos = DNSRecord.question("version.bind", "TXT", "CH").pack()
    assert not fwd.wants(chaos)
    assert not fwd.wants(b"\x00" * 5)


def test_allow_from() -> None:
    fwd = Forwarder([("127.0.0.1", 53)], ["service.local"])
    for host in ("127.0.0.1", "127.1.2.3", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1"):
        assert fwd.allowed(host), host
    for host in ("8.8.8.8", "172.32.0.1", "2001:db8::1", "not-an-ip"):
        assert not fwd.allowed(host), host
    assert fwd.allowed("fd00::1")
    assert fwd.allowed("::ffff:10.0.0.1")
    narrow = Forwarder([("127.0.0.1", 53)], [], allow_from=["192.0.2.0/24"])
    assert narrow.allowed("192.0.2.7")
    assert not narrow.allowed("127.0.0.1")


def test_helpers() -> None:
    refused = DNSRecord.question("x.test").reply()
    refused.header.rcode = RCODE.REFUSED
    wire = bytes(refused.pack())
    assert is_refused(wire)
    assert DNSRecord.parse(with_ra(wire)).header.ra == 1
    ok = DNSRecord.question("x.test").reply()
    assert not is_refused(bytes(ok.pack()))
    assert cache_ttl(bytes(ok.pack())) is None  # NODATA without SOA
    assert cache_ttl(struct.pack("!6H", 0, 0x8182, 0, 0, 0, 0)) is None  # SERVFAIL


class Slot:
    """What runtime gives the listeners: ``handle`` and ``forwarder``."""

    def __init__(self, forwarder: Forwarder | None) -> None:
        self.handle = make_handler().handle
        self.forwarder = forwarder


async def ask(servers: DnsServers, name: str, *, tcp: bool = False, timeout: float = 2) -> Message:
    host, port = servers.addresses[0]
    message = dns.message.make_query(name, "A")
    if tcp:
        return await dns.asyncquery.tcp(message, host, port=port, timeout=timeout)
    return await dns.asyncquery.udp(message, host, port=port, timeout=timeout)


async def test_listeners_forward_for_allowed_clients(upstream: FakeUpstream) -> None:
    servers = await start(Slot(forwarder(upstream.port)), [ListenAddress(host="127.0.0.1", port=0)])
    try:
        for tcp in (False, True):
            outside = await ask(servers, "www.example.test", tcp=tcp)
            assert outside.rcode() == dns.rcode.NOERROR
            assert outside.flags & dns.flags.RA
            assert not outside.flags & dns.flags.AA
            inside = await ask(servers, "nothing.service.local", tcp=tcp)
            assert inside.rcode() == dns.rcode.NXDOMAIN
            assert inside.flags & dns.flags.AA
            assert inside.flags & dns.flags.RA
    finally:
        await servers.close()


async def test_listeners_refuse_other_clients(upstream: FakeUpstream) -> None:
    slot = Slot(forwarder(upstream.port, allow_from=["192.0.2.0/24"]))
    servers = await start(slot, [ListenAddress(host="127.0.0.1", port=0)])
    try:
        for tcp in (False, True):
            reply = await ask(servers, "www.example.test", tcp=tcp)
            assert reply.rcode() == dns.rcode.REFUSED
            assert not reply.flags & dns.flags.RA
        slot.forwarder = None  # a reload that turns forwarding off
        assert (await ask(servers, "www.example.test")).rcode() == dns.rcode.REFUSED
        assert upstream.queries == 0
    finally:
        await servers.close()


async def test_udp_forwarding_is_bounded(
    upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "MAX_FORWARDING", 0)
    servers = await start(Slot(forwarder(upstream.port)), [ListenAddress(host="127.0.0.1", port=0)])
    try:
        with pytest.raises(dns.exception.Timeout):
            await ask(servers, "www.example.test", timeout=0.3)
    finally:
        await servers.close()


async def test_tcp_pipeline_mixing_forwarded_and_local_queries_is_answered_in_order(
    upstream: FakeUpstream,
) -> None:
    """One write with queries to forward between local ones: every reply comes, in the
    order asked, although the forwarded ones wait for the upstream."""
    servers = await start(Slot(forwarder(upstream.port)), [ListenAddress(host="127.0.0.1", port=0)])
    try:
        [(host, port)] = servers.addresses
        reader, writer = await asyncio.open_connection(host, port)
        names = [
            ("web.service.local", f"www{n}.example.test", "nothing.service.local")[n % 3]
            for n in range(12)
        ]
        asked = [query(name, msg_id=n) for n, name in enumerate(names)]
        writer.write(b"".join(struct.pack("!H", len(w)) + w for w in asked))
        replies = []
        for _ in asked:
            (length,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 5))
            replies.append(dns.message.from_wire(await reader.readexactly(length)))
        assert [r.id for r in replies] == list(range(12))
        assert [r.question[0].name.to_text() for r in replies] == [f"{n}." for n in names]
        assert all(r.flags & dns.flags.RA for r in replies)
        assert not any(r.flags & dns.flags.AA for r in replies[1::3])
        assert upstream.queries == 4
        writer.close()
        await writer.wait_closed()
    finally:
        await servers.close()
