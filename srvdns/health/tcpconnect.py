"""One TCP connect on a bare non-blocking socket: what a TCP health check does.

A check only needs to know whether the target accepts: a transport and a protocol
(``loop.create_connection``) cost more than the connect itself, in objects, callbacks and
system calls (the transport sets TCP_NODELAY, starts reading, looks up its
addresses).  Here the socket is created non-blocking and ``connect_ex`` starts the
handshake.  With a target on this host the handshake is already over when the call
returns, and a second ``connect_ex`` says how it went without a trip through the event
loop; otherwise the loop says when the socket turns writable and ``SO_ERROR`` tells.
An accepted connection is closed with a reset (``SO_LINGER`` 0: no FIN exchange and no
TIME_WAIT on this side).

The health loop starts a connect without the event loop (``Connector.begin``, from its
timer) and awaits ``finish`` only when the handshake goes on; the ``Connector`` keeps
the socket of a connect that was over at once for the next one (see there).

A target is parsed once (``parse_target``, cached): an IP address is connected to
directly; a host name is resolved on every connect, through the loop's resolver, and
its addresses are tried in turn, as ``create_connection`` does.
"""

from __future__ import annotations

import _socket
import asyncio
import ctypes
import errno
import functools
import ipaddress
import os
import socket
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from srvdns.health.definitions import split_host_port

_LINGER_RESET = struct.pack("ii", 1, 0)
_PENDING = frozenset({errno.EINPROGRESS, errno.EALREADY})
"""What a non-blocking TCP connect answers while the handshake goes on (EAGAIN is not
one of them: for TCP it means no local port was free)."""
_STREAM = socket.SOCK_STREAM | getattr(socket, "SOCK_NONBLOCK", 0)
"""Non-blocking from creation where the platform allows (one system call fewer)."""

SockAddr = tuple[Any, ...]
"""What ``socket.connect`` takes for an IPv4 or IPv6 address."""


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed ``host:port``: ``family`` and ``address`` are set for an IP address
    (connected to as is), None for a host name (resolved at each connect)."""

    host: str
    port: int
    family: int | None
    address: SockAddr | None


@functools.lru_cache(maxsize=65536)
def parse_target(text: str) -> Target:
    """``host:port`` or ``[v6]:port`` parsed once; raises ValueError."""
    host, port = split_host_port(text)
    if "%" not in host:  # a scoped IPv6 address needs the resolver to find its zone
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            if ip.version == 4:
                return Target(host, port, socket.AF_INET, (host, port))
            return Target(host, port, socket.AF_INET6, (host, port, 0, 0))
    return Target(host, port, None, None)


async def connect(target: Target) -> None:
    """Connect to ``target`` and reset the connection at once.

    Raises OSError (refused, unreachable, a name that does not resolve) when no address
    of the target accepts; cancel it to time it out (the socket is closed either way).
    """
    loop = asyncio.get_running_loop()
    if target.family is not None and target.address is not None:
        sock = begin(target.family, target.address)
        if sock is not None:
            await finish(loop, sock)
        return
    infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    errors: list[tuple[SockAddr, OSError]] = []
    for family, _, _, _, address in infos:
        try:
            sock = begin(family, address)
            if sock is not None:
                await finish(loop, sock)
        except OSError as exc:
            errors.append((address, exc))
        else:
            return
    if not errors:
        raise OSError(f"{target.host} has no address")
    if len(errors) == 1 or all(e.errno == errors[0][1].errno for _, e in errors):
        raise errors[0][1]
    raise OSError(", ".join(f"{a[0]}: {_text(e)}" for a, e in errors))


def _text(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


class Connector:
    """``begin`` that keeps the socket of a connect that was accepted at once for the
    next connect of its family, instead of closing it and opening another.

    A connect to an ``AF_UNSPEC`` address dissolves a TCP connection with a reset (the
    ABORT of RFC 793) and leaves the socket unbound, as if new: that is three system
    calls a check instead of five (no socket(), setsockopt() and close()), and no file
    to allocate and free.  Where libc's connect() cannot be called (not Linux), every
    connect has a socket of its own.  One socket per family is kept: checks started this
    way do not overlap.  A socket still connecting, or whose connect failed, is not kept.
    """

    __slots__ = ("_disconnect", "_spare")

    def __init__(self, *, keep: bool = True) -> None:
        self._spare: dict[int, _socket.socket] = {}
        self._disconnect = _libc_connect() if keep else None
        """None: no socket is kept (``keep`` false, or not Linux)."""

    def begin(self, family: int, address: SockAddr) -> _socket.socket | None:
        """Start connecting to ``address`` without the event loop, on the kept socket of
        ``family`` when there is one, else on a new one.

        Returns None when the connect is already over (accepted, and reset already): the
        usual case for a target on this host, whose handshake ends inside ``connect()``.
        Returns the socket, still connecting, when the handshake goes on: ``finish`` waits
        for it (or close it to give up).  Raises OSError when the target refused.
        """
        sock = self._spare.pop(family, None)
        if sock is None:
            sock = _new_socket(family)
            code = _connect_now(sock, address)
        else:
            code = _connect_now(sock, address)
            if code == errno.EISCONN:  # still connected: this kernel does not disconnect
                sock.close()
                self._disconnect = None
                return self.begin(family, address)
        if code in _PENDING:
            return sock
        if (
            not code
            and self._disconnect is not None
            and not self._disconnect(sock.fileno(), _UNSPEC, len(_UNSPEC))
        ):
            self._spare[family] = sock  # reset and ready for the next connect
            return None
        try:
            _conclude(sock, code)
        finally:
            sock.close()
        return None

    def close(self) -> None:
        """Close the kept sockets."""
        for sock in self._spare.values():
            sock.close()
        self._spare.clear()

    def __del__(self) -> None:
        self.close()


begin = Connector(keep=False).begin
"""``Connector.begin`` with a new socket for every connect (``connect``'s, which may
run several at once)."""


def _libc_connect() -> Callable[[int, bytes, int], int] | None:
    """libc's connect(), which takes the ``AF_UNSPEC`` address Python's sockets refuse."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function: Callable[[int, bytes, int], int] = ctypes.CDLL(None).connect
    except (OSError, AttributeError):
        return None
    return function


_UNSPEC = bytes(16)
"""A ``struct sockaddr`` of family ``AF_UNSPEC`` (0)."""


def _new_socket(family: int) -> _socket.socket:
    sock = _socket.socket(family, _STREAM)
    if not _STREAM & ~socket.SOCK_STREAM:
        sock.setblocking(False)
    return sock


def _connect_now(sock: _socket.socket, address: SockAddr) -> int:
    """Connect ``sock`` without waiting: 0 when accepted, an errno when refused, one of
    ``_PENDING`` while the handshake goes on (the socket is closed when this raises)."""
    try:
        code = sock.connect_ex(address)
        if code in _PENDING:
            # with a target on this host the handshake is over when connect() returns;
            # connecting again says so (0 or EISCONN), or that it failed, or goes on
            code = sock.connect_ex(address)
            if code == errno.EISCONN:
                code = 0
    except BaseException:
        sock.close()
        raise
    return code


async def finish(loop: asyncio.AbstractEventLoop, sock: _socket.socket) -> None:
    """Wait until the connect ``begin`` started on ``sock`` is over, then close the
    socket (with a reset when it was accepted); raises OSError when it failed."""
    try:
        await _writable(loop, sock.fileno())
        _conclude(sock, sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
    finally:
        sock.close()


def _conclude(sock: _socket.socket, code: int) -> None:
    """Raise the error a connect ended with, if any; else arm the reset ``close`` sends."""
    if code:
        raise OSError(code, os.strerror(code))
    try:  # noqa: SIM105 (contextlib.suppress would build an object per check)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    except OSError:
        pass  # reset already: closing is all that is left


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """Until ``fd`` turns writable (a non-blocking connect finished, either way)."""
    writable: asyncio.Future[None] = loop.create_future()
    loop.add_writer(fd, _wake, writable)
    try:
        await writable
    finally:
        loop.remove_writer(fd)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
