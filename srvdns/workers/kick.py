"""A hint from the primary to the DNS-only workers: "I committed a change, poll now".

Followers poll the database every ``follow_interval`` anyway; the kick only cuts the
wait after a write from half an interval on average to about a millisecond.  Each
follower binds a datagram socket in Linux's abstract namespace named after the
supervisor's pid and its worker number; the primary sends one empty datagram to each
after every committed change, without blocking and ignoring every error (a worker being
restarted just polls on its own).  A stray datagram costs one extra poll, nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from srvdns.registry.registry import Registry
    from srvdns.registry.repository import Change
    from srvdns.workers.role import WorkerRole

log = logging.getLogger(__name__)


def address(supervisor: int, number: int) -> str:
    """The abstract socket name of worker ``number`` of the supervisor with pid ``supervisor``."""
    return f"\0srvdns-kick-{supervisor}-{number}"


class KickListener:
    """In a follower: call ``wake`` whenever a kick arrives (several at once: once)."""

    def __init__(self, name: str, wake: Callable[[], None]) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._wake = wake
        try:
            self._sock.bind(name)
        except OSError:
            self._sock.close()
            raise
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._ready)

    def _ready(self) -> None:
        with contextlib.suppress(OSError):  # BlockingIOError: every kick read
            while True:
                self._sock.recv(64)
        self._wake()

    def close(self) -> None:
        """Stop listening."""
        if self._sock.fileno() >= 0:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()


class Kicker:
    """In the primary: ``kick()`` every follower (a registry listener calls it)."""

    def __init__(self, names: list[str]) -> None:
        self._names = names
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def on_change(self, change: Change) -> None:
        """A registry listener: kick after every change that touched a service."""
        if change.services:
            self.kick()

    def kick(self) -> None:
        """Send the hint to every follower; never blocks, never fails."""
        for name in self._names:
            with contextlib.suppress(OSError):  # not listening (restarting), queue full
                self._sock.sendto(b"", name)

    def close(self) -> None:
        """Release the socket."""
        self._sock.close()


def kick_followers(registry: Registry, role: WorkerRole) -> Kicker | None:
    """In the primary: kick the other workers after each of ``registry``'s commits."""
    if role.count <= 1:
        return None
    supervisor = os.getppid()
    kicker = Kicker([address(supervisor, n) for n in range(2, role.count + 1)])
    registry.add_listener(kicker.on_change)
    return kicker


def listen_for_kicks(role: WorkerRole, wake: Callable[[], None]) -> KickListener | None:
    """In a follower: the listener of the primary's kicks, None if the name is taken."""
    try:
        return KickListener(address(os.getppid(), role.number), wake)
    except OSError as exc:
        log.warning("dns worker %d: no kicks from the primary (%s); polling only", role.number, exc)
        return None
