"""The UDP and TCP listeners on loopback, port 0."""

from __future__ import annotations

import asyncio
import errno
import random
import shutil
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import pytest
from dnsframing import frame

from srvdns.config import ListenAddress
from srvdns.nameserver import server
from srvdns.nameserver.server import DnsServers, start

from .dnstest import make_handler, parse_reply, query

LOCAL4 = ListenAddress(host="127.0.0.1", port=0)
LOCAL6 = ListenAddress(host="::1", port=0)


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.fixture
async def dns4() -> AsyncIterator[DnsServers]:
    servers = await start(make_handler(), [LOCAL4], idle_timeout=2)
    yield servers
    await servers.close()


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    (length,) = struct.unpack("!H", await reader.readexactly(2))
    return await reader.readexactly(length)


async def test_udp_and_tcp_answer_on_the_same_port(dns4: DnsServers) -> None:
    [(host, port)] = dns4.addresses
    assert host == "127.0.0.1"
    assert port != 0
    question = dns.message.make_query("web.service.local", "A")
    over_udp = await dns.asyncquery.udp(question, host, port=port, timeout=2)
    over_tcp = await dns.asyncquery.tcp(question, host, port=port, timeout=2)
    assert over_udp.rcode() == over_tcp.rcode() == dns.rcode.NOERROR
    assert {rr.address for rrset in over_udp.answer for rr in rrset} == {"10.0.0.1", "10.0.0.2"}
    assert {rr.address for rrset in over_tcp.answer for rr in rrset} == {"10.0.0.1", "10.0.0.2"}


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback")
async def test_ipv6_listener() -> None:
    servers = await start(make_handler(), [LOCAL6, LOCAL4])
    try:
        (host6, port6), (_, port4) = servers.addresses
        assert host6 == "::1"
        assert port6 != 0
        assert port4 != 0
        question = dns.message.make_query("web.service.local", "AAAA")
        reply = await dns.asyncquery.udp(question, "::1", port=port6, timeout=2)
        assert [rr.address for rrset in reply.answer for rr in rrset] == ["2001:db8::3"]
        reply = await dns.asyncquery.tcp(question, "::1", port=port6, timeout=2)
        assert reply.rcode() == dns.rcode.NOERROR
    finally:
        await servers.close()


async def test_tcp_pipelined_queries_on_one_connection(dns4: DnsServers) -> None:
    [(host, port)] = dns4.addresses
    reader, writer = await asyncio.open_connection(host, port)
    try:
        names = ["web.service.local", "nope.service.local", "api.service.local"]
        writer.write(b"".join(frame(query(n, "SRV", msg_id=i)) for i, n in enumerate(names)))
        await writer.drain()
        replies = [parse_reply(await read_frame(reader)) for _ in names]
        assert [r.id for r in replies] == [0, 1, 2]
        assert [r.rcode() for r in replies] == [0, dns.rcode.NXDOMAIN, 0]
        # a malformed message in a good frame gets FORMERR; the connection lives on
        writer.write(frame(b"\x00\x09\x01\x00\x00\x01" + b"\xff" * 20))
        writer.write(frame(query("web.service.local", msg_id=10)))
        await writer.drain()
        formerr = await read_frame(reader)
        assert formerr[:2] == b"\x00\x09"
        assert formerr[3] & 0x0F == dns.rcode.FORMERR
        assert parse_reply(await read_frame(reader)).id == 10
    finally:
        writer.close()
        await writer.wait_closed()


async def test_tcp_skips_messages_that_get_no_reply(dns4: DnsServers) -> None:
    [(host, port)] = dns4.addresses
    reader, writer = await asyncio.open_connection(host, port)
    response = bytearray(query("web.service.local", msg_id=1))
    response[2] |= 0x80
    writer.write(frame(bytes(response)) + frame(query("web.service.local", msg_id=2)))
    await writer.drain()
    assert parse_reply(await read_frame(reader)).id == 2
    writer.close()
    await writer.wait_closed()


@pytest.mark.parametrize("length", [0, 5])
async def test_tcp_bad_length_closes_only_that_connection(dns4: DnsServers, length: int) -> None:
    [(host, port)] = dns4.addresses
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(struct.pack("!H", length) + b"x" * length)
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    reply = await dns.asyncquery.tcp(
        dns.message.make_query("web.service.local", "A"), host, port=port, timeout=2
    )
    assert reply.rcode() == dns.rcode.NOERROR


async def test_tcp_idle_connections_are_closed() -> None:
    servers = await start(make_handler(), [LOCAL4], idle_timeout=0.05)
    try:
        [(host, port)] = servers.addresses
        reader, writer = await asyncio.open_connection(host, port)
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()
    finally:
        await servers.close()


async def test_close_ends_open_connections() -> None:
    servers = await start(make_handler(), [LOCAL4])
    [(host, port)] = servers.addresses
    reader, writer = await asyncio.open_connection(host, port)
    await asyncio.sleep(0.01)
    await asyncio.wait_for(servers.close(), 2)
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()


async def test_udp_survives_garbage(dns4: DnsServers) -> None:
    [(host, port)] = dns4.addresses
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for junk in (b"", b"\x01", b"\xff" * 40, b"\x00\x01\x00\x00\x00\x01" + bytes(6)):
            sock.sendto(junk, (host, port))
    reply = await dns.asyncquery.udp(
        dns.message.make_query("web.service.local", "A"), host, port=port, timeout=2
    )
    assert reply.rcode() == dns.rcode.NOERROR


class ExplodingHandler:
    def __init__(self) -> None:
        self.calls = 0

    def handle(self, wire: bytes, *, tcp: bool = False) -> bytes | None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("boom")
        return make_handler().handle(wire, tcp=tcp)


async def test_a_handler_exception_kills_neither_endpoint(caplog: pytest.LogCaptureFixture) -> None:
    question = dns.message.make_query("web.service.local", "A")
    for transport in ("udp", "tcp"):
        handler = ExplodingHandler()
        servers = await start(handler, [LOCAL4])
        try:
            [(host, port)] = servers.addresses
            if transport == "udp":
                with pytest.raises(dns.exception.Timeout):
                    await dns.asyncquery.udp(question, host, port=port, timeout=0.2)
                reply = await dns.asyncquery.udp(question, host, port=port, timeout=2)
            else:
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(frame(query("web.service.local", msg_id=1)))
                writer.write(frame(query("web.service.local", msg_id=2)))
                await writer.drain()
                reply = parse_reply(await read_frame(reader))
                assert reply.id == 2
                writer.close()
            assert reply.rcode() == dns.rcode.NOERROR
        finally:
            await servers.close()
    assert sum("boom" in str(r.exc_info) for r in caplog.records) == 2


async def test_port_0_retries_when_udp_cannot_have_the_tcp_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = server._bind_one
    failures: list[int] = []

    def flaky(family, kind, host, port, reuse_port=False):  # type: ignore[no-untyped-def]
        if kind == socket.SOCK_DGRAM and not failures:
            failures.append(port)
            raise OSError(errno.EADDRINUSE, "Address already in use")
        return real(family, kind, host, port, reuse_port)

    monkeypatch.setattr(server, "_bind_one", flaky)
    servers = await start(make_handler(), [LOCAL4])
    try:
        [(host, port)] = servers.addresses
        assert failures
        assert port != 0
        reply = await dns.asyncquery.tcp(
            dns.message.make_query("web.service.local", "A"), host, port=port, timeout=2
        )
        assert reply.rcode() == dns.rcode.NOERROR
    finally:
        await servers.close()


async def test_a_taken_port_is_an_oserror_naming_the_address(dns4: DnsServers) -> None:
    [(_, port)] = dns4.addresses
    taken = ListenAddress(host="127.0.0.1", port=port)
    with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
        await start(make_handler(), [LOCAL4, taken])


@pytest.mark.skipif(shutil.which("dig") is None, reason="dig is not installed")
async def test_dig_gets_srv_with_additional(dns4: DnsServers) -> None:
    [(host, port)] = dns4.addresses
    process = await asyncio.create_subprocess_exec(
        "dig",
        f"@{host}",
        "-p",
        str(port),
        "+norec",
        "+time=2",
        "+tries=1",
        "_web._tcp.service.local",
        "SRV",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 10)
    text = out.decode()
    assert "status: NOERROR" in text
    assert " aa" in text
    assert "web-1.instance.web.service.local. 5 IN A 10.0.0.1" in " ".join(text.split())


# --- RFC 7766: pipelining, idle timeout, connection cap, peers that stall


async def exchange(host: str, port: int, qname: str = "web.service.local") -> dns.message.Message:
    question = dns.message.make_query(qname, "A")
    return await dns.asyncquery.tcp(question, host, port=port, timeout=2)


async def until(condition: Callable[[], bool], timeout: float = 2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def closed_by_server(reader: asyncio.StreamReader, timeout: float = 2) -> bool:
    """Whether the server ends the connection (FIN or reset) within ``timeout``."""
    try:
        while await asyncio.wait_for(reader.read(65536), timeout):
            pass
    except ConnectionError:
        pass
    except TimeoutError:
        return False
    return True


async def test_rfc7766_6_2_1_1_pipelined_queries_are_matched_by_id(dns4: DnsServers) -> None:
    [(host, port)] = dns4.addresses
    rng = random.Random(7)
    names = ["web.service.local", "nope.service.local", "api.service.local", "example.org"]
    asked = {msg_id: rng.choice(names) for msg_id in rng.sample(range(65536), 200)}
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"".join(frame(query(n, "SRV", msg_id=i)) for i, n in asked.items()))
        await writer.drain()
        for _ in range(len(asked)):
            reply = parse_reply(await asyncio.wait_for(read_frame(reader), 2))
            qname = asked.pop(reply.id)
            assert reply.question[0].name.to_text() == f"{qname}."
        assert not asked
    finally:
        writer.close()
        await writer.wait_closed()


async def test_rfc7766_6_2_1_1_pipelined_replies_are_not_held_back(dns4: DnsServers) -> None:
    """Without TCP_NODELAY the second reply of each pair waits for a delayed ACK (40 ms)."""
    [(host, port)] = dns4.addresses
    reader, writer = await asyncio.open_connection(host, port)
    started = time.monotonic()
    for n in range(0, 50, 2):
        writer.write(
            frame(query("web.service.local", msg_id=n)) + frame(query("x.org", msg_id=n + 1))
        )
        assert [parse_reply(await read_frame(reader)).id for _ in "ab"] == [n, n + 1]
    assert time.monotonic() - started < 0.5
    writer.close()
    await writer.wait_closed()


async def test_rfc7766_6_2_3_each_query_restarts_the_idle_timer() -> None:
    servers = await start(make_handler(), [LOCAL4], idle_timeout=0.2)
    try:
        [(host, port)] = servers.addresses
        reader, writer = await asyncio.open_connection(host, port)
        for n in range(5):  # 0.5 s in all, never 0.2 s idle
            writer.write(frame(query("web.service.local", msg_id=n)))
            assert parse_reply(await read_frame(reader)).id == n
            await asyncio.sleep(0.1)
        started = time.monotonic()
        assert await closed_by_server(reader)
        assert 0.05 < time.monotonic() - started < 1
        writer.close()
    finally:
        await servers.close()


async def test_rfc7766_6_2_2_at_the_cap_the_longest_idle_connection_is_closed() -> None:
    servers = await start(make_handler(), [LOCAL4], max_connections=3)
    try:
        [(host, port)] = servers.addresses
        clients = []
        for n in range(3):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(frame(query("web.service.local", msg_id=n)))
            assert parse_reply(await read_frame(reader)).id == n
            clients.append((reader, writer))
            await asyncio.sleep(0.02)
        # The first client asks again: the second is now the longest idle.
        reader0, writer0 = clients[0]
        writer0.write(frame(query("web.service.local", msg_id=10)))
        assert parse_reply(await read_frame(reader0)).id == 10
        reader3, writer3 = await asyncio.open_connection(host, port)
        assert await closed_by_server(clients[1][0])
        for n, (reader, writer) in enumerate((clients[0], clients[2], (reader3, writer3))):
            writer.write(frame(query("web.service.local", msg_id=20 + n)))
            assert parse_reply(await read_frame(reader)).id == 20 + n
        assert servers.tcp_connections == 3
        for _, writer in (*clients, (reader3, writer3)):
            writer.close()
    finally:
        await servers.close()


async def test_a_connection_flood_never_goes_over_the_cap() -> None:
    servers = await start(make_handler(), [LOCAL4], max_connections=5)
    try:
        [(host, port)] = servers.addresses
        writers = []
        for _ in range(20):
            _, writer = await asyncio.open_connection(host, port)
            writers.append(writer)
            await asyncio.sleep(0.005)
            assert servers.tcp_connections <= 5
        assert (await exchange(host, port)).rcode() == dns.rcode.NOERROR
        for writer in writers:
            writer.close()
    finally:
        await servers.close()


@pytest.mark.parametrize(
    "partial",
    [b"\x00", frame(query("web.service.local"))[:9]],
    ids=["half-a-length-prefix", "half-a-message"],
)
async def test_a_stalled_client_does_not_block_others(partial: bytes) -> None:
    servers = await start(make_handler(), [LOCAL4], idle_timeout=0.5)
    try:
        [(host, port)] = servers.addresses
        stalled = [await asyncio.open_connection(host, port) for _ in range(5)]
        for _, writer in stalled:
            writer.write(partial)
            await writer.drain()
        await until(lambda: servers.tcp_connections == 5)
        for _ in range(5):
            assert (await exchange(host, port)).rcode() == dns.rcode.NOERROR
        assert servers.tcp_connections >= 5, "others were served while those stall"
        for reader, writer in stalled:
            assert await closed_by_server(reader)
            writer.close()
        assert servers.tcp_connections == 0
    finally:
        await servers.close()


class BigReplies:
    """Answers every query with 60000 octets, so that a peer's buffers fill up fast."""

    def __init__(self) -> None:
        self._real = make_handler()

    def handle(self, wire: bytes, *, tcp: bool = False) -> bytes | None:
        if b"\x03big" in wire:
            return wire[:2] + b"\x80" + bytes(60000 - 3)
        return self._real.handle(wire, tcp=tcp)


async def connect_without_reading(host: str, port: int) -> asyncio.StreamWriter:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    sock.setblocking(False)
    _, writer = await asyncio.open_connection(sock=sock)
    return writer


async def test_a_client_that_never_reads_is_disconnected_without_blocking_others() -> None:
    servers = await start(BigReplies(), [LOCAL4], idle_timeout=0.5)
    try:
        [(host, port)] = servers.addresses
        writer = await connect_without_reading(host, port)
        big_query = frame(query("big.service.local", "SRV"))
        writer.write(big_query * 200)  # 12 MB of replies that are never read
        await until(lambda: servers.tcp_connections == 1)
        started = time.monotonic()
        while servers.tcp_connections and time.monotonic() - started < 5:
            writer.write(big_query)  # never idle: only the unread replies can end it
            assert (await exchange(host, port)).rcode() == dns.rcode.NOERROR
            await asyncio.sleep(0.05)
        assert servers.tcp_connections == 0
        assert time.monotonic() - started > 0.4
        writer.transport.abort()
    finally:
        await asyncio.wait_for(servers.close(), 3)


async def test_close_does_not_wait_for_peers_that_do_not_read() -> None:
    servers = await start(BigReplies(), [LOCAL4], idle_timeout=30)
    [(host, port)] = servers.addresses
    writer = await connect_without_reading(host, port)
    writer.write(frame(query("big.service.local", "SRV")) * 200)
    await until(lambda: servers.tcp_connections == 1)
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await asyncio.wait_for(servers.close(), 3)
    assert time.monotonic() - started < 1
    writer.transport.abort()


async def test_reuse_port_lets_several_listeners_share_an_address() -> None:
    first = await start(make_handler(), [LOCAL4], reuse_port=True)
    try:
        [(host, port)] = first.addresses
        second = await start(make_handler(), [ListenAddress(host=host, port=port)], reuse_port=True)
        try:
            assert second.addresses == [(host, port)]
            question = dns.message.make_query("web.service.local", "A")
            reply = await dns.asyncquery.udp(question, host, port=port, timeout=2)
            assert reply.rcode() == dns.rcode.NOERROR
        finally:
            await second.close()
        with pytest.raises(OSError, match="cannot listen for DNS"):
            await start(make_handler(), [ListenAddress(host=host, port=port)])
    finally:
        await first.close()


async def test_tcp_pipelined_queries_in_one_write_are_answered_in_order_then_eof(
    dns4: DnsServers,
) -> None:
    """Many queries in one segment, some split across writes, then the client's end of
    stream: every reply comes, in order, then the server closes."""
    [(host, port)] = dns4.addresses
    reader, writer = await asyncio.open_connection(host, port)
    names = ["web.service.local", "api.service.local", "nope.service.local"]
    queries = [dns.message.make_query(names[n % 3], "A", id=n) for n in range(300)]
    stream = b"".join(frame(q.to_wire()) for q in queries)
    for piece in (stream[:1000], stream[1000:1001], stream[1001:]):
        writer.write(piece)
        await writer.drain()
    writer.write_eof()
    replies = [
        dns.message.from_wire(await asyncio.wait_for(read_frame(reader), 2)) for _ in queries
    ]
    assert [r.id for r in replies] == list(range(300))
    assert [r.question[0].name.to_text() for r in replies] == [
        f"{names[n % 3]}." for n in range(300)
    ]
    assert {r.rcode() for r in replies[2::3]} == {dns.rcode.NXDOMAIN}
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()


async def test_tcp_message_started_but_never_finished_is_cut_off() -> None:
    """A peer that keeps sending the start of a message, never the whole of it, loses the
    connection after the idle timeout although it is never silent that long."""
    servers = await start(make_handler(), [LOCAL4], idle_timeout=0.3)
    try:
        [(host, port)] = servers.addresses
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"\x00\xff")
        cut_off = False
        for _ in range(60):  # 3 s of an octet every 50 ms, 10 idle timeouts
            await asyncio.sleep(0.05)
            if reader.at_eof() or writer.is_closing():
                cut_off = True
                break
            writer.write(b"\x00")
            try:
                await writer.drain()
            except ConnectionError:
                cut_off = True
                break
        assert cut_off or await asyncio.wait_for(reader.read(), 0.01) == b""
        writer.close()
    finally:
        await servers.close()
