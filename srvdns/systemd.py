"""The two systemd protocols srvdns speaks: sd_notify and socket activation (LISTEN_FDS)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from srvdns.errors import SocketActivationError

LISTEN_FDS_START = 3
"""The first file descriptor systemd passes (SD_LISTEN_FDS_START)."""

SOCKET_NAMES = ("dns", "api")
"""The ``FileDescriptorName=`` values srvdns takes over: DNS (UDP and TCP) and the API."""


def notify(state: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Send ``state`` (``READY=1``, ``STOPPING=1``, ``WATCHDOG=1``, ...) to the service
    manager, as sd_notify(3) does: one datagram to the AF_UNIX socket ``$NOTIFY_SOCKET``,
    a leading ``@`` meaning the abstract namespace.  False when there is no manager to
    tell (the variable is unset) or the message could not be sent."""
    address = environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True


def watchdog_interval(environ: Mapping[str, str] = os.environ) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings: half of ``$WATCHDOG_USEC`` (sd_watchdog_enabled),
    or None when the watchdog is off or meant for another process (``$WATCHDOG_PID``)."""
    usec = environ.get("WATCHDOG_USEC")
    pid = environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2_000_000 if value > 0 else None


def listen_fds(environ: dict[str, str] | None = None) -> dict[str, list[socket.socket]]:
    """The sockets systemd passed (sd_listen_fds_with_names), by ``FileDescriptorName=``:
    ``{"dns": [udp and tcp sockets], "api": [one tcp socket]}``; empty when the process was
    not socket-activated.  The variables are removed so that children do not see them.

    Raises SocketActivationError for a socket with another name, several API sockets, or a
    DNS socket that is neither UDP nor TCP.
    """
    env = os.environ if environ is None else environ
    count, pid = env.get("LISTEN_FDS"), env.get("LISTEN_PID")
    names_text = env.get("LISTEN_FDNAMES", "")
    for key in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        env.pop(key, None)
    if not count or pid != str(os.getpid()):
        return {}
    names = names_text.split(":") if names_text else []
    found: dict[str, list[socket.socket]] = {}
    for offset in range(int(count)):
        fd = LISTEN_FDS_START + offset
        name = names[offset] if offset < len(names) else "unknown"
        if name not in SOCKET_NAMES:
            raise SocketActivationError(
                f"socket activation: file descriptor {fd} is named {name!r}; "
                f"name each socket {' or '.join(SOCKET_NAMES)} (FileDescriptorName=)"
            )
        os.set_inheritable(fd, False)
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        kinds = (socket.SOCK_STREAM,) if name == "api" else (socket.SOCK_STREAM, socket.SOCK_DGRAM)
        if sock.type not in kinds or sock.family not in (socket.AF_INET, socket.AF_INET6):
            raise SocketActivationError(
                f"socket activation: the {name} socket (file descriptor {fd}) must be "
                + ("TCP" if name == "api" else "UDP or TCP")
                + " over IPv4 or IPv6"
            )
        found.setdefault(name, []).append(sock)
    if len(found.get("api", ())) > 1:
        raise SocketActivationError("socket activation: more than one socket named api")
    return found
