"""Asyncio UDP and TCP listeners: they only move bytes between sockets and the handler."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import time
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

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


class _TcpConnection(asyncio.Protocol):
    """One DNS-over-TCP client (RFC 7766): two-octet length framing, any number of
    queries per connection, answered in order.

    A protocol rather than a stream reader: each read answers every complete message it
    holds and writes their replies at once, with no task, timeout or await per message
    (a pipelining client sends many per read).  One watchdog timer per connection closes
    it when it has been idle ``idle_timeout`` seconds, when a message it started has not
    arrived whole within that time, or when it has left replies unread that long (so it
    only loses its own connection).  Reading stops while replies wait for the peer to
    read them, and while a query is forwarded or a transfer is sent (these take turns
    with the rest, in order, as a task).
    """

    def __init__(self, servers: DnsServers) -> None:
        self._servers = servers
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self.last_active = self._loop.time()
        """When it last sent a whole query or read its replies."""
        self._started: float | None = None
        """When the message now partly read began to arrive."""
        self._paused_at: float | None = None
        """Since when the peer has left too many replies unread (writing paused)."""
        self._resumed: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._eof = False
        self._timer: asyncio.TimerHandle | None = None
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self.peer = ""
        self.port = 0

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._transport = transport
        servers = self._servers
        servers._make_room()
        servers._connections[self] = None
        transport.set_write_buffer_limits(high=WRITE_BUFFER)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        self.port = int(peer[1]) if isinstance(peer, tuple) and len(peer) > 1 else 0
        self._timer = self._loop.call_at(self.last_active + servers._idle_timeout, self._watch)

    def data_received(self, data: bytes) -> None:
        if not self._buffer and self._started is None:
            self._started = self._loop.time()
        self._buffer += data
        if self._task is None and self._paused_at is None:
            self._answer()

    def eof_received(self) -> bool:
        """The peer sent everything it will: answer what is pending, then close."""
        self._eof = True
        if self._task is None and self._paused_at is None:
            self._finish()
        return True

    def pause_writing(self) -> None:
        self._paused_at = self._loop.time()
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused_at = None
        self.last_active = self._loop.time()
        if self._resumed is not None:
            self._resumed.set()
        if self._task is None:
            self._continue()

    def connection_lost(self, exc: Exception | None) -> None:
        self._servers._connections.pop(self, None)
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
        if self._resumed is not None:
            self._resumed.set()
        if not self.closed.done():
            self.closed.set_result(None)

    # -- answering ----------------------------------------------------------------------

    def _answer(self) -> None:
        """Answer every whole message in the buffer, replies written together; stop at a
        message that needs a task (forwarding, a transfer) or when the peer is slow to
        read (``pause_writing``)."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        servers = self._servers
        handler, stats = servers._handler, servers.stats
        handle, buffer = handler.handle, self._buffer
        forwarder, query_log = _forwarder(handler), _query_log(handler)
        transfers = _transfers(handler)
        out: list[bytes] = []
        pending = position = 0
        clock, now = time.perf_counter_ns, self._loop.time()
        while len(buffer) - position >= 2:
            length = buffer[position] << 8 | buffer[position + 1]
            end = position + 2 + length
            if length < _MIN_MESSAGE:
                self._write(out)
                self.close()
                return
            if len(buffer) < end:
                break
            wire = bytes(buffer[position + 2 : end])
            position = end
            self.last_active = now
            started = clock()
            if transfers is not None and transfers.wants(wire):
                self._later(out, position, now, self._transfer(transfers, wire))
                return
            try:
                reply = handle(wire, tcp=True)
            except Exception:
                log.exception("DNS handler failed on a TCP query")
                continue
            if forwarder is not None and reply is not None and forwarder.allowed(self.peer):
                if is_refused(reply) and forwarder.wants(wire):
                    stats.forwarded[1] += 1
                    self._later(out, position, now, self._forward(forwarder, wire, started))
                    return
                reply = with_ra(reply)
            elapsed = clock() - started
            stats.observe_ns(elapsed)
            if query_log is not None:
                query_log.record("tcp", self.peer, self.port, wire, reply, elapsed / 1e9)
            if reply is not None:
                out.append(len(reply).to_bytes(2, "big") + reply)
                pending += len(reply) + 2
                if pending >= WRITE_BUFFER:
                    self._write(out)
                    out, pending = [], 0
                    if self._paused_at is not None:
                        break
        if position:
            self._consume(position, now)
        self._write(out)
        if self._eof and self._paused_at is None:
            self._finish()  # a message still incomplete can never end now

    def _write(self, out: list[bytes]) -> None:
        if out and self._transport is not None:
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _consume(self, position: int, now: float) -> None:
        """Drop the first ``position`` octets, whole messages read ``now``: what is left,
        if anything, is a message that began in that read."""
        del self._buffer[:position]
        self._started = now if self._buffer else None

    def _later(
        self, out: list[bytes], position: int, now: float, work: Coroutine[Any, Any, None]
    ) -> None:
        """Send what is answered, then run ``work`` (the message up to ``position``)
        before reading on."""
        self._consume(position, now)
        self._write(out)
        assert self._transport is not None
        self._transport.pause_reading()
        self._task = self._loop.create_task(work)
        self._task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._task = None
        if not task.cancelled() and task.exception() is not None:
            log.error("TCP connection handler failed", exc_info=task.exception())
            self.close()
            return
        if self._paused_at is None:
            self._continue()

    def _continue(self) -> None:
        """Read on after a pause: answer what arrived meanwhile."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._answer()
        if self._task is None and self._paused_at is None and not transport.is_closing():
            transport.resume_reading()

    def _finish(self) -> None:
        """After the peer's end of stream: close once the replies are sent."""
        if self._transport is not None:
            self._transport.close()

    async def _send(self, reply: bytes) -> bool:
        """Write one reply of a task; wait, up to the idle timeout, for the peer to read
        enough of it.  False when the connection is done."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return False
        transport.write(len(reply).to_bytes(2, "big") + reply)
        if self._paused_at is not None:
            self._resumed = resumed = asyncio.Event()
            try:
                async with asyncio.timeout(self._servers._idle_timeout):
                    await resumed.wait()
            except TimeoutError:
                self.close()
                return False
            finally:
                self._resumed = None
        self.last_active = self._loop.time()
        return not transport.is_closing()

    async def _forward(self, forwarder: Forwarder, wire: bytes, started: int) -> None:
        stats = self._servers.stats
        reply: bytes | None = None
        try:
            reply = await forwarder.resolve(wire, tcp=True)
        except Exception:
            log.exception("forwarding a TCP query failed")
        _forwarded(stats, wire, reply, started, tcp=True)
        query_log = _query_log(self._servers._handler)
        if query_log is not None:
            seconds = (time.perf_counter_ns() - started) / 1e9
            query_log.record("tcp", self.peer, self.port, wire, reply, seconds)
        if reply is not None:
            await self._send(reply)

    async def _transfer(self, transfers: Transfers, wire: bytes) -> None:
        """Send every message of a transfer (or the reply to a signed query), waiting for
        the peer to read them as ``_send`` does."""
        handle = self._servers._handler.handle
        try:
            if transfers.is_transfer(wire):  # the zone is built and packed off the loop
                replies = await asyncio.to_thread(
                    transfers.respond, wire, self.peer, tcp=True, answer=None
                )
            else:
                replies = None
            if replies is None:
                replies = transfers.respond(
                    wire, self.peer, tcp=True, answer=lambda query: handle(query, tcp=True)
                )
        except Exception:
            log.exception("answering a transfer or signed query from %s failed", self.peer)
            return
        for reply in replies or ():
            if not await self._send(reply):
                return

    # -- closing ------------------------------------------------------------------------

    def _watch(self) -> None:
        """The watchdog: close the connection when its deadline has passed, else look
        again at the deadline."""
        now = self._loop.time()
        idle = self._servers._idle_timeout
        if self._paused_at is not None:
            deadline = self._paused_at + idle
        elif self._task is not None:
            deadline = now + idle  # forwarding and transfers time themselves
        elif self._started is not None:
            deadline = self._started + idle
        else:
            deadline = self.last_active + idle
        if now >= deadline:
            self.close()
            return
        self._timer = self._loop.call_at(deadline, self._watch)

    def close(self) -> None:
        """Close now: with a FIN when every reply was sent, else with a reset, throwing
        away replies the peer has not read (it may have stopped reading)."""
        transport = self._transport
        if transport is None:
            return
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
        self._connections: dict[_TcpConnection, None] = {}

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
        connections = list(self._connections)
        for connection in connections:
            connection.close()
        if connections:
            await asyncio.wait([c.closed for c in connections], timeout=2)
        for server in self._tcp:
            await server.wait_closed()
        self._udp.clear()
        self._tcp.clear()

    async def _listen(self, sockets: Sequence[socket.socket]) -> None:
        for sock in sockets:
            if sock.type == socket.SOCK_DGRAM:
                self._udp.append(_UdpListener(self._handler, sock, self.stats, self._limiter(sock)))
            else:
                no_delay(sock)
                server = await asyncio.get_running_loop().create_server(
                    lambda: _TcpConnection(self), sock=sock, backlog=self._accept_batch
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
            oldest = min(self._connections, key=lambda connection: connection.last_active)
            del self._connections[oldest]
            oldest.close()


def no_delay(sock: socket.socket) -> socket.socket:
    """``sock`` with Nagle's algorithm off (TCP only; accepted connections inherit it from
    the listening socket).  Without it, a reply written while the previous one is
    unacknowledged waits for the client's delayed ACK (40 ms on Linux)."""
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


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
