"""NOTIFY (RFC 1996): tell a zone's secondaries its serial moved, so they transfer now.

Changes are coalesced: the first change after a quiet spell is announced after
``delay``; later ones wait until ``interval`` has passed since that round and are then
announced at once, together, so a burst of registrations sends one NOTIFY per target
per ``interval``.  Each NOTIFY is sent over UDP and retried with doubling timeouts
until the secondary acknowledges it (a reply with the same ID, opcode and question), at
most ``attempts`` times; a newer serial replaces a round still retrying.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Mapping

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.tsig

from srvdns.nameserver.xfr import Transfers
from srvdns.transferconfig import NotifyTarget

log = logging.getLogger(__name__)

DELAY = 0.05
"""Seconds between the first change after a quiet spell and its NOTIFY round."""

INTERVAL = 0.25
"""Least seconds between two NOTIFY rounds: changes meanwhile share the next one."""

TIMEOUT = 1.0
"""Seconds to wait for the first acknowledgement; doubled at each retry."""

ATTEMPTS = 5
"""NOTIFYs sent per target and serial before giving up (RFC 1996 §3.6: retry, bounded);
the secondary's own SOA refresh timer still finds the change later."""


class Notifier:
    """Sends NOTIFY for each zone of ``transfers`` that has ``notify`` targets."""

    def __init__(
        self,
        transfers: Transfers,
        secrets: Mapping[str, tuple[str, bytes]] | None = None,
        *,
        delay: float = DELAY,
        interval: float = INTERVAL,
        timeout: float = TIMEOUT,
        attempts: int = ATTEMPTS,
    ) -> None:
        self._transfers = transfers
        self._keys = {
            name: dns.tsig.Key(name + ".", secret, algorithm)
            for name, (algorithm, secret) in (secrets or {}).items()
        }
        self._delay = delay
        self._interval = interval
        self._timeout = timeout
        self._attempts = attempts
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._rounds: dict[tuple[str, NotifyTarget], asyncio.Task[bool]] = {}
        self._announced: dict[str, int] = {}
        self.sent = 0
        """NOTIFY messages sent (retries included)."""
        self.acknowledged = 0

    def start(self) -> None:
        """Run on the current loop; the first round announces the serial at start."""
        self._task = asyncio.get_running_loop().create_task(self._run())
        self._changed.set()

    def changed(self, *_: object) -> None:
        """A registry change happened (a registry listener): announce it soon."""
        self._changed.set()

    async def stop(self) -> None:
        """Stop announcing; rounds still retrying are abandoned."""
        tasks = [t for t in (self._task, *self._rounds.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._rounds.clear()

    async def _run(self) -> None:
        while True:
            if not self._changed.is_set():  # a quiet spell: gather what follows the change
                await self._changed.wait()
                await asyncio.sleep(self._delay)
            self._changed.clear()  # changes during the interval were gathered already
            try:
                await self._round()
            except Exception:
                log.exception("cannot start a NOTIFY round")
            await asyncio.sleep(self._interval)

    async def _round(self) -> None:
        # building the zone's new version may take a while for a large zone: not on the loop
        serials = await asyncio.to_thread(self._transfers.refresh)
        loop = asyncio.get_running_loop()
        for zone in self._transfers.zones:
            serial = serials[zone.name]
            if not zone.notify or self._announced.get(zone.name) == serial:
                continue
            self._announced[zone.name] = serial
            for target in zone.notify:
                key = (zone.name, target)
                previous = self._rounds.get(key)
                if previous is not None:
                    previous.cancel()
                task = loop.create_task(self._notify(zone.name, target))
                self._rounds[key] = task
                task.add_done_callback(functools.partial(self._finished, key))

    def _finished(self, key: tuple[str, NotifyTarget], task: asyncio.Task[bool]) -> None:
        if self._rounds.get(key) is task:
            del self._rounds[key]

    async def _notify(self, zone: str, target: NotifyTarget) -> bool:
        """Send the NOTIFY until acknowledged or out of attempts; True when acknowledged."""
        timeout = self._timeout
        for attempt in range(1, self._attempts + 1):
            query = self._message(zone, target)
            self.sent += 1
            try:
                reply = await _exchange(query, target.host, target.port, timeout)
            except (dns.exception.DNSException, OSError, TimeoutError) as exc:
                log.debug(
                    "NOTIFY %s to %s:%d, try %d: %s",
                    zone,
                    target.host,
                    target.port,
                    attempt,
                    exc or type(exc).__name__,
                )
                timeout *= 2
                continue
            if reply.rcode() != dns.rcode.NOERROR:
                log.warning(
                    "NOTIFY %s refused by %s:%d: %s",
                    zone,
                    target.host,
                    target.port,
                    dns.rcode.to_text(reply.rcode()),
                )
                return False
            self.acknowledged += 1
            return True
        log.warning(
            "NOTIFY %s to %s:%d not acknowledged after %d tries",
            zone,
            target.host,
            target.port,
            self._attempts,
        )
        return False

    def _message(self, zone: str, target: NotifyTarget) -> dns.message.Message:
        """RFC 1996 §3.7: opcode NOTIFY, AA, the zone's SOA as question and answer."""
        query = dns.message.make_query(zone, dns.rdatatype.SOA)
        query.flags = dns.flags.AA
        query.set_opcode(dns.opcode.NOTIFY)
        query.answer.append(self._transfers.soa(zone))
        if target.key is not None:
            key = self._keys[target.key]
            query.use_tsig({key.name: key}, keyname=key.name)
        return query


class _Reply(asyncio.DatagramProtocol):
    """Waits for the datagram that answers ``query``; others are ignored."""

    def __init__(self, query: dns.message.Message) -> None:
        self.query = query
        self.reply: asyncio.Future[dns.message.Message] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.reply.done():
            return
        try:
            keyring = None if self.query.keyring is None else self.query.keyring
            message = dns.message.from_wire(data, keyring=keyring, request_mac=self.query.mac)
        except dns.exception.DNSException as exc:
            log.debug("unreadable NOTIFY reply from %s: %s", addr[0], exc)
            return
        if self.query.is_response(message):
            self.reply.set_result(message)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)


async def _exchange(
    query: dns.message.Message, host: str, port: int, timeout: float
) -> dns.message.Message:
    """Send ``query`` over UDP and wait ``timeout`` seconds for its reply (TimeoutError)."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _Reply(query), remote_addr=(host, port)
    )
    try:
        transport.sendto(query.to_wire())
        return await asyncio.wait_for(protocol.reply, timeout)
    finally:
        transport.close()
