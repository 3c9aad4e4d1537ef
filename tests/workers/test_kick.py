"""srvdns.workers.kick: the primary's "poll now" hint to the DNS-only workers."""

from __future__ import annotations

import asyncio
import os
import time

from srvdns.registry.repository import Change
from srvdns.workers.kick import Kicker, KickListener, address


async def test_a_kick_wakes_the_listener_once_per_burst() -> None:
    name = address(os.getpid(), time.monotonic_ns())
    woken: list[float] = []
    listener = KickListener(name, lambda: woken.append(time.monotonic()))
    kicker = Kicker([name, address(os.getpid(), -1)])  # the second listens nowhere
    try:
        kicker.on_change(Change((), 1))  # nothing changed: no kick
        for _ in range(5):
            kicker.kick()
        async with asyncio.timeout(5):
            while not woken:
                await asyncio.sleep(0.001)
        await asyncio.sleep(0.05)
        assert len(woken) == 1  # five datagrams read in one go
    finally:
        kicker.close()
        listener.close()
