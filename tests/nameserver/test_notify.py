"""NOTIFY: a burst of changes is announced once per target, retried until acknowledged."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.tsigkeyring

from srvdns.catalog import CatalogHolder
from srvdns.config import parse
from srvdns.nameserver.notify import Notifier
from srvdns.nameserver.xfr import Transfers

from .dnstest import catalog

SECRET = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


class Secondary(asyncio.DatagramProtocol):
    """Answers NOTIFY on loopback like a secondary; ignores the first ``deaf`` ones."""

    def __init__(self, deaf: int = 0, keyring: object = None) -> None:
        self.deaf = deaf
        self.keyring = keyring
        self.received: list[dns.message.Message] = []
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def close(self) -> None:
        assert self.transport is not None
        self.transport.close()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = dns.message.from_wire(data, keyring=self.keyring)
        self.received.append(message)
        if len(self.received) <= self.deaf:
            return
        reply = dns.message.make_response(message)
        assert self.transport is not None
        self.transport.sendto(reply.to_wire(), addr)


async def secondary(deaf: int = 0, keyring: object = None) -> tuple[Secondary, int]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: Secondary(deaf, keyring), local_addr=("127.0.0.1", 0)
    )
    return protocol, transport.get_extra_info("sockname")[1]


def notifier(holder: CatalogHolder, port: int, *, key: bool = False, **options: float) -> Notifier:
    target: object = f"127.0.0.1:{port}"
    if key:
        target = {"address": f"127.0.0.1:{port}", "key": "xfr-key"}
    loaded = parse(
        {
            "tsig_key": [{"name": "xfr-key", "secret": SECRET}],
            "zone": [{"name": "service.local", "notify": [target]}],
        }
    )
    transfers = Transfers(loaded.zone, holder, loaded.tsig_secrets())
    return Notifier(transfers, loaded.tsig_secrets(), **options)  # type: ignore[arg-type]


async def wait_until(predicate: object, timeout: float = 5) -> None:
    assert callable(predicate)
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def test_a_burst_of_changes_sends_few_notifies_with_the_last_serial() -> None:
    protocol, port = await secondary()
    holder = CatalogHolder(catalog(index=1))
    sender = notifier(holder, port, delay=0.01, interval=0.2)
    sender.start()
    try:
        await wait_until(lambda: len(protocol.received) == 1)  # the serial at start
        for index in range(2, 52):  # 50 changes within a few milliseconds
            holder.swap(catalog(index=index))
            sender.changed()
            await asyncio.sleep(0.001)
        await wait_until(lambda: protocol.received[-1].answer[0][0].serial == 51)
        await asyncio.sleep(0.3)
    finally:
        await sender.stop()
        protocol.close()
    assert 2 <= len(protocol.received) <= 4
    first = protocol.received[0]
    assert first.opcode() == dns.opcode.NOTIFY
    assert first.flags & dns.flags.AA
    assert first.question[0].name.to_text() == "service.local."
    assert sender.acknowledged == len(protocol.received)


async def test_an_unanswered_notify_is_retried_until_acknowledged_then_stops() -> None:
    protocol, port = await secondary(deaf=2)
    sender = notifier(CatalogHolder(catalog(index=3)), port, delay=0.01, timeout=0.05)
    sender.start()
    try:
        await wait_until(lambda: sender.acknowledged == 1)
        await asyncio.sleep(0.3)
    finally:
        await sender.stop()
        protocol.close()
    assert len(protocol.received) == 3
    assert {m.id for m in protocol.received} == {m.id for m in protocol.received[:3]}


async def test_a_secondary_that_never_answers_gets_a_bounded_number_of_tries() -> None:
    protocol, port = await secondary(deaf=1000)
    sender = notifier(CatalogHolder(catalog(index=3)), port, delay=0.01, timeout=0.01, attempts=4)
    sender.start()
    try:
        await wait_until(lambda: len(protocol.received) == 4)
        await asyncio.sleep(0.3)
    finally:
        await sender.stop()
        protocol.close()
    assert len(protocol.received) == 4
    assert sender.acknowledged == 0


async def test_a_notify_is_signed_when_its_target_names_a_key() -> None:
    keyring = dns.tsigkeyring.from_text({"xfr-key.": ("hmac-sha256", SECRET)})
    protocol, port = await secondary(keyring=keyring)
    sender = notifier(CatalogHolder(catalog(index=3)), port, key=True, delay=0.01)
    sender.start()
    try:
        await wait_until(lambda: sender.acknowledged == 1)
    finally:
        await sender.stop()
        protocol.close()
    assert protocol.received[0].had_tsig
