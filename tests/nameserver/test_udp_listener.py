"""The UDP hot path: bursts larger than one read batch are all answered, in any case."""

from __future__ import annotations

import asyncio
import socket

from srvdns.config import ListenAddress
from srvdns.nameserver import server
from srvdns.nameserver.server import start

from .dnstest import make_handler, parse_reply, query


async def test_a_burst_beyond_one_batch_is_answered_in_full() -> None:
    servers = await start(make_handler(), [ListenAddress(host="127.0.0.1", port=0)])
    host, port = servers.addresses[0]
    count = server.UDP_BATCH * 4
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.setblocking(False)
        for msg_id in range(count):
            name = ("web", "API", "cache", "nope")[msg_id % 4] + ".service.local"
            sock.sendto(query(name, "SRV", msg_id=msg_id), (host, port))
        ids: set[int] = set()
        try:
            async with asyncio.timeout(5):
                while len(ids) < count:
                    reply = parse_reply(await loop.sock_recv(sock, 4096))
                    ids.add(reply.id)
        finally:
            await servers.close()
    assert ids == set(range(count))


async def test_closing_stops_answering() -> None:
    servers = await start(make_handler(), [ListenAddress(host="127.0.0.1", port=0)])
    host, port = servers.addresses[0]
    await servers.close()
    await servers.close()  # twice is harmless
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        sock.sendto(query("web.service.local"), (host, port))
        try:
            sock.recv(512)
        except (TimeoutError, ConnectionRefusedError):
            return
    raise AssertionError("a closed listener answered")
