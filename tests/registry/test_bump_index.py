"""Registry.bump_index: the SOA serial moves with nothing else changed, and stays moved."""

from __future__ import annotations

import asyncio

from srvdns.registry.registry import Registry


async def test_bump_index_moves_the_index_persistently_and_wakes_watchers(url, clock):
    first = Registry.open(url, clock=clock)
    try:
        before = first.holder.current.index
        services = first.holder.current.services
        watcher = asyncio.create_task(first.wait_for_index(before, timeout=5))
        await asyncio.sleep(0)
        assert await first.bump_index() == before + 1
        assert first.holder.current.index == before + 1
        assert first.holder.current.services == services
        assert await asyncio.wait_for(watcher, 1) == before + 1
    finally:
        first.close()
    second = Registry.open(url, clock=clock)
    try:
        assert second.holder.current.index == before + 1
    finally:
        second.close()
