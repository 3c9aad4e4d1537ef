"""The API's listening socket: accepted connections send small writes at once."""

from __future__ import annotations

import socket

from srvdns.config import ListenAddress
from srvdns.nameserver.server import no_delay
from srvdns.runtime import _bind_api_socket


def test_accepted_connections_have_nagle_off() -> None:
    """Without TCP_NODELAY a response's body waits for the client's delayed ACK of its
    headers (~40 ms on Linux) on a keep-alive connection."""
    listener = _bind_api_socket(ListenAddress.parse("127.0.0.1:0", "api_listen"))
    try:
        listener.setblocking(True)
        with socket.create_connection(listener.getsockname()[:2], timeout=5):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        listener.close()


def test_a_socket_from_systemd_gets_it_too() -> None:
    """Socket activation hands over a listener bound elsewhere; only TCP ones are touched."""
    with socket.socket() as tcp, socket.socket(socket.AF_UNIX) as unix:
        assert no_delay(tcp).getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert no_delay(unix) is unix
