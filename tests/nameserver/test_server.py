"""The UDP and TCP listeners on loopback, port 0."""

from __future__ import annotations

import asyncio
import errno
import shutil
import socket
import struct
from collections.abc import AsyncIterator

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import pytest

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


def frame(wire: bytes) -> bytes:
    return struct.pack("!H", len(wire)) + wire


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


async def test_port_0_retries_when_tcp_cannot_have_the_udp_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = server._bind_one
    failures: list[int] = []

    def flaky(family, kind, host, port):  # type: ignore[no-untyped-def]
        if kind == socket.SOCK_STREAM and not failures:
            failures.append(port)
            raise OSError(errno.EADDRINUSE, "Address already in use")
        return real(family, kind, host, port)

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
