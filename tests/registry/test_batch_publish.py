"""Writes committed together reach the catalog together: one patch for a group commit's
registrations and deregistrations, in commit order, each listener call with its
services as they are after the batch."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from srvdns.errors import NotFoundError
from srvdns.model import Instance
from srvdns.registry.registry import Registry
from srvdns.registry.repository import Change


def inst(service: str, id: str) -> Instance:
    return Instance(service=service, id=id, address="10.0.0.1", port=80)


async def in_one_batch(registry: Registry, *writes: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Run ``writes`` as one group commit: the worker thread is held busy until all of
    them are queued, so its next transaction takes them all."""
    hold = threading.Event()
    held = registry._executor.submit(hold.wait)
    tasks = [asyncio.ensure_future(write()) for write in writes]
    await asyncio.sleep(0)  # every write is queued
    while len(registry._queue) < len(writes):
        await asyncio.sleep(0.001)
    hold.set()
    held.result()
    return list(await asyncio.gather(*tasks, return_exceptions=True))


async def test_a_batch_of_writes_is_published_with_one_catalog_copy(registry: Registry) -> None:
    await registry.register(inst("web", "old"))
    seen: list[Change] = []
    registry.add_listener(seen.append)
    generation = registry.holder.current.generation
    results = await in_one_batch(
        registry,
        lambda: registry.register(inst("web", "b")),
        lambda: registry.register(inst("api", "a")),
        lambda: registry.deregister("web", "old"),
        lambda: registry.deregister("web", "missing"),
        lambda: registry.register(inst("web", "a")),
    )
    assert isinstance(results[3], NotFoundError)
    assert registry.holder.current.generation == generation + 1  # one patch for the batch
    catalog = {s.name: [i.id for i in s.instances] for s in registry.services()}
    assert catalog == {"api": ["a"], "web": ["a", "b"]}
    # each committed write reaches the listeners, in commit order, with its services as
    # they are after the batch
    assert [change.keys for change in seen] == [
        (("web", "b"),),
        (("api", "a"),),
        (("web", "old"),),
        (("web", "a"),),
    ]
    for change in seen:
        assert {s.name: [i.id for i in s.instances] for s in change.services} == {
            name: catalog[name] for name, _ in change.keys or ()
        }


async def test_an_instance_written_twice_in_a_batch_ends_as_written_last(
    registry: Registry,
) -> None:
    await registry.register(inst("web", "a"))
    generation = registry.holder.current.generation
    await in_one_batch(
        registry,
        lambda: registry.deregister("web", "a"),
        lambda: registry.register(inst("web", "a")),
        lambda: registry.register(inst("web", "b")),
        lambda: registry.deregister("web", "b"),
    )
    assert [(s.name, [i.id for i in s.instances]) for s in registry.services()] == [("web", ["a"])]
    # a second write of the same instance starts a new patch, so order is kept
    assert registry.holder.current.generation == generation + 3
    stored = registry._repository.load_services()
    assert [(s.name, [i.id for i in s.instances]) for s in stored] == [("web", ["a"])]
