"""Asyncio UDP and TCP listeners: they only move bytes between sockets and the handler."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from dnslib import RCODE  # type: ignore[import-untyped]

from srvdns.config import ListenAddress, RrlConfig
from srvdns.nameserver import fdlimit
from srvdns.nameserver.forward import is_refused, with_ra
from srvdns.nameserver.rrl import ALLOW, SLIP, RateLimiter, truncated_reply
from srvdns.nameserver.stats import LATENCY_SHIFT, OTHER, DnsStats
from srvdns.nameserver.wire import FormError, parse_query

if TYPE_CHECKING:
    from srvdns.nameserver.forward import Forwarder
    from srvdns.nameserver.querylog import QueryLog
    from srvdns.nameserver.xfr import Transfers

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 10.0
"""Seconds a TCP connection may sit idle before it is closed (RFC 7766 §6.2.3)."""

MAX_CONNECTIONS = 1000
"""Concurrent TCP connections; one more closes the longest-idle one (RFC 7766 §6.2.3)."""

WRITE_BUFFER = 65537
"""Octets of replies queued for a TCP peer before we wait for it to read: one full
message.  A peer that does not read them within the idle timeout is disconnected."""

LISTEN_BACKLOG = 256
"""Connections the kernel queues for accept() (NSD's TCP_BACKLOG): a burst of new clients
waits there, costing no file descriptor, instead of having its SYNs dropped (a 1 s retry)."""

BIND_ATTEMPTS = 5
"""Tries at finding a port free for both UDP and TCP when port 0 is asked for."""

_MIN_MESSAGE = 12
"""A DNS message is at least a header; a shorter TCP frame ends the connection."""


class QueryHandler(Protocol):
    """What the listeners need from ``handler.Handler``."""

    def handle(self, wire: bytes, *, tcp: bool = False) -> bytes | None:
        """The reply to one message, or None for no reply."""
        ...


def _forwarder(handler: QueryHandler) -> Forwarder | None:
    """The handler's ``forwarder`` (None: forwarding off); read for every query or batch,
    so that a reload that swaps it takes effect at once."""
    forwarder: Forwarder | None = getattr(handler, "forwarder", None)
    return forwarder


def _query_log(handler: QueryHandler) -> QueryLog | None:
    """The handler's ``query_log`` (None: off), read like ``_forwarder``."""
    query_log: QueryLog | None = getattr(handler, "query_log", None)
    return query_log


def _qtype(wire: bytes) -> int:
    """The qtype of a query (already known to parse: it is being forwarded)."""
    try:
        return parse_query(wire).question.qtype
    except FormError:
        return OTHER


def _rcode(reply: bytes | None) -> int | None:
    return None if reply is None or len(reply) < 4 else reply[3] & 0x0F


def _transfers(handler: QueryHandler) -> Transfers | None:
    """The handler's ``transfers`` (None: no zone is transferred), read like ``_forwarder``."""
    transfers: Transfers | None = getattr(handler, "transfers", None)
    return transfers


MAX_FORWARDING = 1000
"""UDP queries being forwarded at once per listener; more are dropped (the client asks
again), so that a flood of outside names cannot pile up tasks and sockets."""

UDP_BATCH = 64
"""Datagrams read per readiness event before the loop gets a turn (fairness to TCP/API)."""

UDP_BUFFER = 4 * 1024 * 1024
"""SO_RCVBUF / SO_SNDBUF asked for (the kernel caps it at net.core.rmem_max/wmem_max):
room for bursts while the loop is busy elsewhere, so that they are not dropped."""


class _UdpListener:
    """One datagram in, at most one datagram out; nothing a client sends can stop it.

    The hot path: a reader callback on the socket itself rather than a datagram
    transport, so that each readiness event answers a batch of datagrams with plain
    ``recvfrom_into`` / ``sendto`` calls and no per-datagram protocol dispatch.  A reply
    the socket cannot take right now (EAGAIN) is dropped like a datagram lost on the way;
    the client asks again.
    """

    def __init__(
        self,
        handler: QueryHandler,
        sock: socket.socket,
        stats: DnsStats,
        rrl: RateLimiter | None = None,
    ) -> None:
        self._handler = handler
        self._stats = stats
        self._sock = sock
        self.rrl = rrl
        """Response rate limiting of this listener (None: off)."""
        self._buffer = bytearray(65536)
        self.dropped = 0
        """Replies the socket would not take."""
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, option, UDP_BUFFER)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._ready)
        self._forwarding: set[asyncio.Task[None]] = set()

    def close(self) -> None:
        """Stop reading and close the socket."""
        if self._sock.fileno() >= 0:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
        for task in self._forwarding:
            task.cancel()

    def _forward(
        self, forwarder: Forwarder, data: bytes, addr: tuple[str, int], started: int
    ) -> None:
        stats = self._stats
        if len(self._forwarding) >= MAX_FORWARDING:
            self.dropped += 1
            stats.forward_dropped += 1
            stats.move(False, _qtype(data), RCODE.REFUSED, None)
            return
        stats.forwarded[0] += 1
        task = self._loop.create_task(self._forward_reply(forwarder, data, addr, started))
        self._forwarding.add(task)
        task.add_done_callback(self._forwarding.discard)

    async def _forward_reply(
        self, forwarder: Forwarder, data: bytes, addr: tuple[str, int], started: int
    ) -> None:
        reply: bytes | None = None
        try:
            reply = await forwarder.resolve(data, tcp=False)
        except Exception:
            log.exception("forwarding a UDP query from %s failed", addr[0])
        _forwarded(self._stats, data, reply, started, tcp=False)
        query_log = _query_log(self._handler)
        if query_log is not None:
            seconds = (time.perf_counter_ns() - started) / 1e9
            query_log.record("udp", addr[0], addr[1], data, reply, seconds)
        if reply is not None:
            with contextlib.suppress(OSError):
                self._sock.sendto(reply, addr)

    def _ready(self) -> None:
        """Answer the datagrams waiting, up to ``UDP_BATCH``.  The answer time of the
        first one is measured (of every one with the query log on): a busy server reads
        many per batch, so that timing costs a clock read per batch, not per query, and
        a quiet one still has every query timed."""
        receive, send = self._sock.recvfrom_into, self._sock.sendto
        handle, buffer = self._handler.handle, self._buffer
        view = memoryview(buffer)
        forwarder = _forwarder(self._handler)
        query_log = _query_log(self._handler)
        stats = self._stats
        latency, clock = stats.latency, time.perf_counter_ns
        timed, started = True, 0
        rrl, now = self.rrl, self._loop.time()
        transfers = _transfers(self._handler)
        for _ in range(UDP_BATCH):
            try:
                size, addr = receive(buffer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP port unreachable for an earlier reply
                log.debug("UDP socket error: %s", exc)
                continue
            if timed:
                started = clock()
            data = bytes(view[:size])
            if rrl is not None and (verdict := rrl.check(addr[0], now)) != ALLOW:
                if verdict == SLIP and (slipped := truncated_reply(data)) is not None:
                    with contextlib.suppress(OSError):
                        send(slipped, addr)
                continue
            if transfers is not None and transfers.wants(data):
                self._transfer(transfers, data, addr)
                continue
            try:
                reply = handle(data, tcp=False)
            except Exception:
                log.exception("DNS handler failed on a UDP query from %s", addr[0])
                continue
            if forwarder is not None and reply is not None and forwarder.allowed(addr[0]):
                if is_refused(reply) and forwarder.wants(data):
                    self._forward(forwarder, data, addr, started if timed else clock())
                    continue
                reply = with_ra(reply)
            if timed:
                elapsed = clock() - started
                latency[(elapsed >> LATENCY_SHIFT).bit_length()] += 1
                stats.latency_ns += elapsed
                if query_log is None:
                    timed = False
                else:
                    query_log.record("udp", addr[0], addr[1], data, reply, elapsed / 1e9)
            if reply is not None:
                try:
                    send(reply, addr)
                except (BlockingIOError, InterruptedError):
                    self.dropped += 1
                    stats.udp_send_dropped += 1
                except OSError as exc:
                    log.debug("cannot send a UDP reply to %s: %s", addr[0], exc)

    def _transfer(self, transfers: Transfers, data: bytes, addr: tuple[str, int]) -> None:
        """A transfer or TSIG-signed query over UDP (see ``xfr.Transfers.respond``)."""
        handle = self._handler.handle
        try:
            replies = transfers.respond(
                data, addr[0], tcp=False, answer=lambda wire: handle(wire, tcp=False)
            )
        except Exception:
            log.exception("answering a transfer or signed query from %s failed", addr[0])
            return
        for reply in replies or ():
            with contextlib.suppress(OSError):
                self._sock.sendto(reply, addr)


def _forwarded(
    stats: DnsStats, wire: bytes, reply: bytes | None, started: int, *, tcp: bool
) -> None:
    """Count a forwarded query's outcome: the handler counted it REFUSED; it got
    ``reply`` (None: nothing, after an error), ``started`` ns after its read."""
    stats.move(tcp, _qtype(wire), RCODE.REFUSED, _rcode(reply))
    if reply is not None:
        stats.observe_ns(time.perf_counter_ns() - started)


class _Connection:
    """One TCP client: its stream writer and when it last sent a query or got a reply."""

    __slots__ = ("last_active", "peer", "port", "writer")

    def __init__(self, writer: asyncio.StreamWriter, now: float) -> None:
        self.writer = writer
        self.last_active = now
        peer = writer.get_extra_info("peername")
        self.peer: str = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        self.port: int = int(peer[1]) if isinstance(peer, tuple) and len(peer) > 1 else 0

    def close(self) -> None:
        """Close now: with a FIN when every reply was sent, else with a reset, throwing
        away replies the peer has not read (it may have stopped reading)."""
        transport = self.writer.transport
        if transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()


class DnsServers:
    """The running listeners; ``addresses`` holds the (host, port) bound for each
    listen entry (for ``:port``, every address, the IPv4 wildcard ``0.0.0.0``).
    Answer times and forwarding outcomes are counted in ``stats``."""

    def __init__(
        self,
        handler: QueryHandler,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        stats: DnsStats | None = None,
        rrl: RrlConfig | None = None,
    ) -> None:
        self.addresses: list[tuple[str, int]] = []
        self.stats = stats if stats is not None else DnsStats()
        self._handler = handler
        self._rrl = rrl
        self._idle_timeout = idle_timeout
        budget = fdlimit.tcp_budget(max_connections)
        self._max_connections, self._accept_batch = budget.max_connections, budget.accept_batch
        self._udp: list[_UdpListener] = []
        self._tcp: list[asyncio.Server] = []
        self._connections: dict[asyncio.Task[None], _Connection] = {}

    @property
    def tcp_connections(self) -> int:
        """How many TCP connections are open."""
        return len(self._connections)

    async def close(self) -> None:
        """Stop listening and close every open TCP connection."""
        for listener in self._udp:
            listener.close()
        for server in self._tcp:
            server.close()
        tasks = list(self._connections)
        for connection in self._connections.values():
            connection.close()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=2)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for server in self._tcp:
            await server.wait_closed()
        self._udp.clear()
        self._tcp.clear()

    async def _listen(self, sockets: Sequence[socket.socket]) -> None:
        for sock in sockets:
            if sock.type == socket.SOCK_DGRAM:
                self._udp.append(_UdpListener(self._handler, sock, self.stats, self._limiter(sock)))
            else:
                server = await asyncio.start_server(
                    self._serve_tcp, sock=sock, backlog=self._accept_batch
                )
                # asyncio listened with the batch; let the kernel queue more
                sock.listen(max(LISTEN_BACKLOG, self._accept_batch))
                self._tcp.append(server)

    def _limiter(self, sock: socket.socket) -> RateLimiter | None:
        """A rate limiter for a UDP socket whose address ``[server.rrl]`` covers."""
        settings = self._rrl
        host = sock.getsockname()[0]
        if settings is None or not settings.applies_to(host):
            return None
        log.info(
            "rate-limiting UDP responses on %s: %g/s per client prefix, slip %d",
            host,
            settings.responses_per_second,
            settings.slip,
        )
        return RateLimiter(
            settings.responses_per_second,
            window=settings.window,
            slip=settings.slip,
            exempt=settings.exempt,
        )

    @property
    def rate_limited(self) -> int:
        """UDP responses slipped or dropped by rate limiting since start."""
        return sum(u.rrl.limited for u in self._udp if u.rrl is not None)

    def _make_room(self) -> None:
        """RFC 7766 §6.2.3: at the connection cap, close the longest-idle connection,
        so that a new client is served rather than refused."""
        while len(self._connections) >= self._max_connections:
            task, oldest = min(self._connections.items(), key=lambda item: item[1].last_active)
            del self._connections[task]
            oldest.close()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """RFC 7766: two-octet length framing, any number of queries per connection
        (answered in order, each as soon as it is made), closed after ``idle_timeout``
        without a query, or when the peer leaves replies unread that long."""
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        self._make_room()
        connection = _Connection(writer, loop.time())
        self._connections[task] = connection
        writer.transport.set_write_buffer_limits(high=WRITE_BUFFER)
        _no_delay(writer)
        try:
            while await self._tcp_exchange(reader, connection):
                pass
        except Exception:
            log.exception("TCP connection handler failed")
        finally:
            self._connections.pop(task, None)
            if writer.transport.get_write_buffer_size():
                writer.transport.abort()
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), self._idle_timeout)

    async def _tcp_exchange(self, reader: asyncio.StreamReader, connection: _Connection) -> bool:
        """Read one framed query and write its answer; False when the connection is done.

        A peer has ``idle_timeout`` to send each message once it started it, and to read
        its replies: one that stalls half-way, or stops reading, only loses its own
        connection.
        """
        try:
            # asyncio.timeout, not wait_for: no task per read (wait_for makes one on 3.11)
            async with asyncio.timeout(self._idle_timeout):
                prefix = await reader.readexactly(2)
            (length,) = struct.unpack("!H", prefix)
            if length < _MIN_MESSAGE:
                return False
            async with asyncio.timeout(self._idle_timeout):
                wire = await reader.readexactly(length)
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            return False
        started = time.perf_counter_ns()
        loop = asyncio.get_running_loop()
        connection.last_active = loop.time()
        transfers = _transfers(self._handler)
        if transfers is not None and transfers.wants(wire):
            return await self._transfer(transfers, wire, connection)
        try:
            reply = self._handler.handle(wire, tcp=True)
        except Exception:
            log.exception("DNS handler failed on a TCP query")
            return True
        forwarder = _forwarder(self._handler)
        stats = self.stats
        if forwarder is not None and reply is not None and forwarder.allowed(connection.peer):
            if is_refused(reply) and forwarder.wants(wire):
                stats.forwarded[1] += 1
                try:
                    reply = await forwarder.resolve(wire, tcp=True)
                except Exception:
                    log.exception("forwarding a TCP query failed")
                    reply = None
                _forwarded(stats, wire, reply, started, tcp=True)
            else:
                reply = with_ra(reply)
                stats.observe_ns(time.perf_counter_ns() - started)
        else:
            stats.observe_ns(time.perf_counter_ns() - started)
        query_log = _query_log(self._handler)
        if query_log is not None:
            seconds = (time.perf_counter_ns() - started) / 1e9
            query_log.record("tcp", connection.peer, connection.port, wire, reply, seconds)
        if reply is not None:
            writer = connection.writer
            writer.write(struct.pack("!H", len(reply)) + reply)
            try:
                async with asyncio.timeout(self._idle_timeout):
                    await writer.drain()
            except (TimeoutError, ConnectionError):
                return False
            connection.last_active = loop.time()
        return True

    async def _transfer(self, transfers: Transfers, wire: bytes, connection: _Connection) -> bool:
        """Send every message of a transfer (or the reply to a signed query), waiting for
        the peer to read each as ``_tcp_exchange`` does; False when the connection is done."""
        handle = self._handler.handle
        try:
            if transfers.is_transfer(wire):  # the zone is built and packed off the loop
                replies = await asyncio.to_thread(
                    transfers.respond, wire, connection.peer, tcp=True, answer=None
                )
            else:
                replies = None
            if replies is None:
                replies = transfers.respond(
                    wire, connection.peer, tcp=True, answer=lambda query: handle(query, tcp=True)
                )
        except Exception:
            log.exception("answering a transfer or signed query from %s failed", connection.peer)
            return True
        loop = asyncio.get_running_loop()
        writer = connection.writer
        for reply in replies or ():
            writer.write(struct.pack("!H", len(reply)) + reply)
            try:
                await asyncio.wait_for(writer.drain(), self._idle_timeout)
            except (TimeoutError, ConnectionError):
                return False
            connection.last_active = loop.time()
        return True


def _no_delay(writer: asyncio.StreamWriter) -> None:
    """Send each reply at once (TCP_NODELAY).  asyncio only does so for sockets made with
    proto IPPROTO_TCP; without it, a reply written while the previous one is unacknowledged
    waits for the client's delayed ACK (40 ms on Linux) - every pipelined query pays it."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def start(
    handler: QueryHandler,
    listen: Sequence[ListenAddress],
    *,
    idle_timeout: float = IDLE_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
    stats: DnsStats | None = None,
    reuse_port: bool = False,
    rrl: RrlConfig | None = None,
) -> DnsServers:
    """Listen on UDP and TCP at each address and answer with ``handler``; count in
    ``stats`` (see ``DnsServers``).

    TCP connections close after ``idle_timeout`` seconds without a query; beyond
    ``max_connections`` open at once, the longest-idle one is closed for a new one.
    ``rrl`` rate-limits UDP responses on the listeners it applies to.

    Port 0 binds TCP on a free port, then UDP (and, for ``:port``, IPv6) on that same
    port number, trying again with another port if it is taken.  TCP goes first: the
    kernel picks a TCP port no connection uses (TIME_WAIT ones included), and UDP ports
    are rarely taken, while a free UDP port is often some client's TCP port.  Host ""
    means every IPv4 and IPv6 address; IPv6 sockets are IPV6_V6ONLY.  Raises OSError
    naming the address when a socket cannot be bound; nothing is left listening then.
    With ``reuse_port`` every socket is SO_REUSEPORT, so that other processes (``serve
    --workers``) bind the same addresses and the kernel spreads queries over them.
    """
    servers = DnsServers(
        handler,
        idle_timeout=idle_timeout,
        max_connections=max_connections,
        stats=stats,
        rrl=rrl,
    )
    try:
        for address in listen:
            port, sockets = _bind(address, reuse_port=reuse_port)
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
    family: socket.AddressFamily,
    kind: socket.SocketKind,
    host: str,
    port: int,
    reuse_port: bool = False,
) -> socket.socket:
    sock = socket.socket(family, kind)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
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


def _bind(address: ListenAddress, *, reuse_port: bool = False) -> tuple[int, list[socket.socket]]:
    """Bind UDP and TCP sockets for every family of ``address`` on one port number."""
    attempts = BIND_ATTEMPTS if address.port == 0 else 1
    for attempt in range(1, attempts + 1):
        port = address.port
        sockets: list[socket.socket] = []
        try:
            for family, host in _families(address.host):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    sockets.append(_bind_one(family, kind, host, port, reuse_port))
                    port = port or sockets[-1].getsockname()[1]
            return port, sockets
        except OSError as exc:
            for sock in sockets:
                sock.close()
            if exc.errno == errno.EADDRINUSE and attempt < attempts:
                continue
            raise OSError(exc.errno, f"cannot listen for DNS on {address}: {exc.strerror}") from exc
    raise AssertionError("unreachable")  # pragma: no cover
