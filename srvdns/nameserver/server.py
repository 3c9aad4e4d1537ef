"""Asyncio UDP and TCP listeners: they only move bytes between sockets and the handler."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
from collections.abc import Sequence
from typing import Protocol, cast

from srvdns.config import ListenAddress

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 10.0
"""Seconds a TCP connection may sit idle before it is closed (RFC 7766 §6.2.3)."""

BIND_ATTEMPTS = 5
"""Tries at finding a port free for both UDP and TCP when port 0 is asked for."""

_MIN_MESSAGE = 12
"""A DNS message is at least a header; a shorter TCP frame ends the connection."""


class QueryHandler(Protocol):
    """What the listeners need from ``handler.Handler``."""

    def handle(self, wire: bytes, *, tcp: bool = False) -> bytes | None:
        """The reply to one message, or None for no reply."""
        ...


class _UdpProtocol(asyncio.DatagramProtocol):
    """One datagram in, at most one datagram out; nothing a client sends can stop it."""

    def __init__(self, handler: QueryHandler) -> None:
        self._handler = handler
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            reply = self._handler.handle(data, tcp=False)
        except Exception:
            log.exception("DNS handler failed on a UDP query from %s", addr[0])
            return
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP socket error: %s", exc)


class DnsServers:
    """The running listeners; ``addresses`` holds the (host, port) bound for each
    listen entry (for ``:port``, every address, the IPv4 wildcard ``0.0.0.0``)."""

    def __init__(self, handler: QueryHandler, *, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.addresses: list[tuple[str, int]] = []
        self._handler = handler
        self._idle_timeout = idle_timeout
        self._udp: list[asyncio.DatagramTransport] = []
        self._tcp: list[asyncio.Server] = []
        self._connections: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        """Stop listening and close every open TCP connection."""
        for transport in self._udp:
            transport.close()
        for server in self._tcp:
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        for server in self._tcp:
            await server.wait_closed()
        self._udp.clear()
        self._tcp.clear()

    async def _listen(self, sockets: Sequence[socket.socket]) -> None:
        loop = asyncio.get_running_loop()
        for sock in sockets:
            if sock.type == socket.SOCK_DGRAM:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(self._handler), sock=sock
                )
                self._udp.append(transport)
            else:
                self._tcp.append(await asyncio.start_server(self._serve_tcp, sock=sock))

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """RFC 7766: two-octet length framing, any number of queries per connection,
        each answer written as soon as it is made, closed after ``idle_timeout``."""
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            while await self._tcp_exchange(reader, writer):
                pass
        except Exception:
            log.exception("TCP connection handler failed")
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _tcp_exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Read one framed query and write its answer; False when the connection is done."""
        try:
            prefix = await asyncio.wait_for(reader.readexactly(2), self._idle_timeout)
            (length,) = struct.unpack("!H", prefix)
            if length < _MIN_MESSAGE:
                return False
            wire = await asyncio.wait_for(reader.readexactly(length), self._idle_timeout)
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            return False
        try:
            reply = self._handler.handle(wire, tcp=True)
        except Exception:
            log.exception("DNS handler failed on a TCP query")
            return True
        if reply is not None:
            writer.write(struct.pack("!H", len(reply)) + reply)
            try:
                await writer.drain()
            except ConnectionError:
                return False
        return True


async def start(
    handler: QueryHandler,
    listen: Sequence[ListenAddress],
    *,
    idle_timeout: float = IDLE_TIMEOUT,
) -> DnsServers:
    """Listen on UDP and TCP at each address and answer with ``handler``.

    Port 0 binds UDP on a free port, then TCP (and, for ``:port``, IPv6) on that same
    port number, trying again with another port if it is taken.  Host "" means every
    IPv4 and IPv6 address; IPv6 sockets are IPV6_V6ONLY.  Raises OSError naming the
    address when a socket cannot be bound; nothing is left listening then.
    """
    servers = DnsServers(handler, idle_timeout=idle_timeout)
    try:
        for address in listen:
            port, sockets = _bind(address)
            try:
                await servers._listen(sockets)
            except BaseException:
                for sock in sockets:
                    sock.close()
                raise
            host = sockets[0].getsockname()[0]
            servers.addresses.append((host, port))
    except BaseException:
        await servers.close()
        raise
    return servers


def _families(host: str) -> list[tuple[socket.AddressFamily, str]]:
    if host:
        return [(socket.AF_INET6 if ":" in host else socket.AF_INET, host)]
    families = [(socket.AF_INET, "0.0.0.0")]
    if _ipv6_available():
        families.append((socket.AF_INET6, "::"))
    return families


def _ipv6_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()
    except OSError:
        return False
    return True


def _bind_one(
    family: socket.AddressFamily, kind: socket.SocketKind, host: str, port: int
) -> socket.socket:
    sock = socket.socket(family, kind)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _bind(address: ListenAddress) -> tuple[int, list[socket.socket]]:
    """Bind UDP and TCP sockets for every family of ``address`` on one port number."""
    attempts = BIND_ATTEMPTS if address.port == 0 else 1
    for attempt in range(1, attempts + 1):
        port = address.port
        sockets: list[socket.socket] = []
        try:
            for family, host in _families(address.host):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    sockets.append(_bind_one(family, kind, host, port))
                    port = port or sockets[-1].getsockname()[1]
            return port, sockets
        except OSError as exc:
            for sock in sockets:
                sock.close()
            if exc.errno == errno.EADDRINUSE and attempt < attempts:
                continue
            raise OSError(exc.errno, f"cannot listen for DNS on {address}: {exc.strerror}") from exc
    raise AssertionError("unreachable")  # pragma: no cover
