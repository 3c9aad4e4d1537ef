"""DNS over TCP as tests and benchmarks speak it: the two-octet length prefix of each
message (RFC 1035 §4.2.2, RFC 7766 §8) on a plain blocking socket."""

from __future__ import annotations

import socket
import struct


def frame(wire: bytes) -> bytes:
    """``wire`` with its length prefix."""
    return struct.pack("!H", len(wire)) + wire


def read_frame(sock: socket.socket) -> bytes | None:
    """The next framed message, or None when the peer closed the connection first (a
    reset raises ConnectionResetError)."""

    def exactly(count: int) -> bytes | None:
        data = b""
        while len(data) < count:
            chunk = sock.recv(count - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    prefix = exactly(2)
    return None if prefix is None else exactly(struct.unpack("!H", prefix)[0])


def closed_by_server(sock: socket.socket, timeout: float = 3) -> bool:
    """Whether the server closes ``sock`` (FIN or reset) within ``timeout``; reads and
    throws away whatever replies are still queued."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    return True
