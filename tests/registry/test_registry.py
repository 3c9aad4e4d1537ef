"""srvdns.registry.registry: async writes on a worker thread, reads from the catalog."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from srvdns.config import StaticInstanceConfig, StaticServiceConfig
from srvdns.errors import ConflictError, NotFoundError, StoreUnavailableError
from srvdns.model import Instance, Service, Source, Status
from srvdns.registry.registry import Registry


def web(id: str = "web-1", **kw) -> Instance:
    kw.setdefault("address", "10.0.0.1")
    kw.setdefault("port", 8080)
    return Instance(service="web", id=id, **kw)


def static_service(name: str, *ports: int) -> StaticServiceConfig:
    return StaticServiceConfig(
        name=name,
        instances=tuple(StaticInstanceConfig(address="10.0.1.1", port=p) for p in ports),
    )


async def test_register_stores_and_patches_the_catalog(registry, clock):
    before = registry.holder.current
    stored = await registry.register(
        web(meta=(("z", "1"), ("a", "2")), status=Status.CRITICAL, source=Source.STATIC)
    )
    assert stored.registered_at == stored.last_heartbeat == clock.now
    assert (stored.status, stored.source) == (Status.PASSING, Source.API)
    assert stored.meta == (("a", "2"), ("z", "1"))
    after = registry.holder.current
    assert after.generation == before.generation + 1
    assert after.index == before.index + 1
    assert registry.services() == [Service("web", (stored,))]
    assert registry.find_service("WEB") == Service("web", (stored,))


async def test_register_replaces(registry):
    await registry.register(web(port=1))
    await registry.register(web(port=2))
    assert [i.port for i in registry.find_service("web").instances] == [2]
    assert registry.holder.current.index == 3  # a new registry starts at 1


async def test_deregister_last_instance_removes_the_service(registry):
    await registry.register(web("a"))
    await registry.register(web("b"))
    await registry.deregister("web", "a")
    assert [i.id for i in registry.find_service("web").instances] == ["b"]
    generation = registry.holder.current.generation
    await registry.deregister("web", "b")
    assert registry.services() == []
    assert registry.holder.current.generation == generation + 1
    with pytest.raises(NotFoundError, match="no service 'web'"):
        registry.find_service("web")


async def test_unknown_service_or_instance(registry):
    await registry.register(web("a"))
    generation = registry.holder.current.generation
    with pytest.raises(NotFoundError, match="no service 'db'"):
        await registry.deregister("db", "a")
    with pytest.raises(NotFoundError, match="has no instance 'b'"):
        await registry.deregister("web", "b")
    with pytest.raises(NotFoundError):
        await registry.heartbeat("web", "b")
    assert registry.holder.current.generation == generation


async def test_heartbeat(registry, clock):
    await registry.register(web(ttl=10))
    index = registry.holder.current.index
    clock.advance(4)
    renewed = await registry.heartbeat("web", "web-1")
    assert renewed.last_heartbeat == clock.now
    assert registry.find_service("web").instances[0].last_heartbeat == clock.now
    assert registry.holder.current.index == index  # a live lease extended: same answers

    clock.advance(30)  # the lease lapsed: the heartbeat brings the instance back
    assert not registry.find_service("web").instances[0].is_answerable(clock.now)
    await registry.heartbeat("web", "web-1")
    assert registry.find_service("web").instances[0].is_answerable(clock.now)
    assert registry.holder.current.index == index + 1


async def test_heartbeat_without_ttl(registry):
    await registry.register(web())
    with pytest.raises(ConflictError, match="no ttl"):
        await registry.heartbeat("web", "web-1")


async def test_static_instances(registry):
    registry.sync_static([static_service("db", 5432, 5433)])
    [db] = registry.services()
    assert [(i.id, i.port, i.source) for i in db.instances] == [
        ("db-1", 5432, Source.STATIC),
        ("db-2", 5433, Source.STATIC),
    ]
    with pytest.raises(ConflictError):
        await registry.register(Instance(service="db", id="db-1", address="10.9.9.9", port=1))
    with pytest.raises(ConflictError):
        await registry.deregister("db", "db-2")
    assert registry.services() == [db]

    registry.sync_static([static_service("db", 6432)])  # changed and removed
    assert [(i.id, i.port) for i in registry.find_service("db").instances] == [("db-1", 6432)]
    registry.sync_static([])
    assert registry.services() == []


async def test_catalog_generation_follows_every_write(registry):
    generations = [registry.holder.current.generation]
    registry.sync_static([static_service("db", 5432)])
    generations.append(registry.holder.current.generation)
    await registry.register(web(ttl=5))
    generations.append(registry.holder.current.generation)
    await registry.heartbeat("web", "web-1")
    generations.append(registry.holder.current.generation)
    await registry.deregister("web", "web-1")
    generations.append(registry.holder.current.generation)
    assert generations == sorted(set(generations))


async def test_restart_keeps_registrations_index_and_lapsed_leases(url, clock):
    first = Registry.open(url, clock=clock)
    first.sync_static([static_service("db", 5432)])
    await first.register(web("short", ttl=10))
    await first.register(web("long", ttl=3600))
    await first.register(web("plain"))
    index = first.holder.current.index
    first.close()

    clock.advance(60)  # down for a minute: the short lease lapsed meanwhile
    second = Registry.open(url, clock=clock)
    try:
        assert second.holder.current.index == index
        second.sync_static([static_service("db", 5432)])  # unchanged config: no change
        assert second.holder.current.index == index
        status = {i.id: i.effective_status(clock.now) for i in second.find_service("web").instances}
        assert status == {
            "long": Status.PASSING,
            "plain": Status.PASSING,
            "short": Status.CRITICAL,
        }
        await second.heartbeat("web", "short")
        assert second.holder.current.index == index + 1
    finally:
        second.close()


async def test_writes_run_on_the_worker_thread(registry, monkeypatch):
    threads: list[str] = []
    upsert = registry._repository.upsert_instance

    def spy(instance, **options):
        threads.append(threading.current_thread().name)
        return upsert(instance, **options)

    monkeypatch.setattr(registry._repository, "upsert_instance", spy)
    await registry.register(web())
    assert threads[0].startswith("srvdns-registry")
    assert threads[0] != threading.current_thread().name


async def test_a_cancelled_write_that_committed_still_reaches_the_catalog(registry, monkeypatch):
    started, release = threading.Event(), threading.Event()
    upsert = registry._repository.upsert_instance

    def slow(instance, **options):
        started.set()
        release.wait(5)
        return upsert(instance, **options)

    monkeypatch.setattr(registry._repository, "upsert_instance", slow)
    task = asyncio.create_task(registry.register(web()))
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(200):
        if registry.holder.current.services:
            break
        await asyncio.sleep(0.01)
    assert [i.id for i in registry.find_service("web").instances] == ["web-1"]


async def test_closed_registry_refuses_writes(url):
    closed = Registry.open(url)
    closed.close()
    closed.close()  # idempotent
    with pytest.raises(StoreUnavailableError, match="closed"):
        await closed.register(web())


def test_open_without_upgrade_needs_a_migrated_schema(sqlite_url):
    with pytest.raises(StoreUnavailableError, match="srvdns db upgrade"):
        Registry.open(sqlite_url, upgrade=False)
    Registry.open(sqlite_url).close()
    Registry.open(sqlite_url, upgrade=False).close()


def test_open_unreachable_database(tmp_path: Path):
    with pytest.raises(StoreUnavailableError, match="unable to open database file"):
        Registry.open(f"sqlite:///{tmp_path / 'missing' / 'registry.db'}")


async def test_in_memory_database():
    memory = Registry.open("sqlite://")
    try:
        await memory.register(web())
        assert [s.name for s in memory.services()] == ["web"]
    finally:
        memory.close()


async def test_concurrent_writes_are_serialised(registry):
    await asyncio.gather(*(registry.register(web(f"w{n}")) for n in range(40)))
    assert len(registry.find_service("web").instances) == 40
    # writes queued together commit together and share one increment of the index
    assert 1 < registry.holder.current.index <= 41


async def test_an_exclusive_id_is_unique_across_services(registry):
    await registry.register(web("shared"))
    with pytest.raises(ConflictError, match="service 'web' already has an instance"):
        await registry.register(
            Instance(service="api", id="shared", address="10.0.0.2", port=1), exclusive_id=True
        )
    assert [s.name for s in registry.services()] == ["web"]
    # the same service may replace it, and without exclusive_id ids are per service
    await registry.register(web("shared", port=9), exclusive_id=True)
    await registry.register(Instance(service="api", id="shared", address="10.0.0.2", port=1))
    assert [s.name for s in registry.services()] == ["api", "web"]


async def test_wait_for_index_wakes_on_a_write_and_times_out(registry):
    index = registry.holder.current.index
    assert await registry.wait_for_index(index - 1, timeout=5) == index  # already past
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await registry.wait_for_index(index, timeout=0.05) == index
    assert 0.05 <= loop.time() - started < 1
    waiters = [asyncio.create_task(registry.wait_for_index(index, timeout=5)) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert not any(w.done() for w in waiters)
    started = loop.time()
    await registry.register(web())
    assert await asyncio.gather(*waiters) == [index + 1] * 3
    assert loop.time() - started < 1
    assert not registry._waiters


async def test_a_write_that_changes_nothing_wakes_nobody(registry):
    await registry.register(web(ttl=30))
    index = registry.holder.current.index
    waiter = asyncio.create_task(registry.wait_for_index(index, timeout=5))
    await asyncio.sleep(0.01)
    await registry.heartbeat("web", "web-1")  # a live lease renewed: same answers
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await registry.heartbeat("web", "web-1", status=Status.WARNING)
    assert await waiter == index + 1


async def test_stop_blocking_ends_every_wait(registry):
    index = registry.holder.current.index
    waiter = asyncio.create_task(registry.wait_for_index(index, timeout=60))
    await asyncio.sleep(0.01)
    registry.stop_blocking()
    assert await asyncio.wait_for(waiter, 1) == index
    assert await asyncio.wait_for(registry.wait_for_index(index, timeout=60), 1) == index
