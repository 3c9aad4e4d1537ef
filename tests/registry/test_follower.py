"""srvdns.registry.follower: a process that does not write follows another's commits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import replace

import pytest
import sqlalchemy as sa
from alembic import command

from srvdns.catalog import CatalogHolder
from srvdns.config import StaticInstanceConfig, StaticServiceConfig
from srvdns.errors import StoreUnavailableError
from srvdns.model import Check, CheckKind, CheckSpec, Instance, Status
from srvdns.registry import migrate
from srvdns.registry.engine import create_engine
from srvdns.registry.follower import ChangeFollower, Followed
from srvdns.registry.registry import Registry
from srvdns.registry.repository import CheckUpdate, Repository

P, C = Status.PASSING, Status.CRITICAL


def web(id: str = "web-1", service: str = "web", **kw: object) -> Instance:
    kw.setdefault("address", "10.0.0.1")
    kw.setdefault("port", 8080)
    return Instance(service=service, id=id, **kw)  # type: ignore[arg-type]


def http_check() -> Check:
    spec = CheckSpec(
        id="http", kind=CheckKind.HTTP, interval=1, timeout=1.0, target="http://10.0.0.1/"
    )
    return Check(spec=spec, status=spec.initial_status)


@pytest.fixture
def follower(registry: Registry, url: str) -> Iterator[ChangeFollower]:
    """A follower of the registry's database with a holder of its own (another process's)."""
    opened = ChangeFollower.open(url, interval=0.01)
    yield opened
    opened.close()


def ids(follower: ChangeFollower, service: str = "web") -> list[str]:
    view = follower.holder.current.get_service(service)
    return [] if view is None else [i.id for i in view.instances]


async def test_a_registration_reaches_the_follower(registry, follower):
    assert follower.holder.current.services == {}
    await follower.poll()
    assert follower.holder.current.services == {}  # nothing changed: nothing published
    stored = await registry.register(web())
    await follower.poll()
    assert follower.holder.current.get_service("web").instances == (stored,)
    assert follower.holder.current.index == registry.holder.current.index


async def test_only_the_changed_services_are_rebuilt(registry, follower):
    await registry.register(web())
    await registry.register(web("db-1", service="db"))
    await follower.poll()
    db_view = follower.holder.current.get_service("db")
    await registry.register(web("web-2"))
    await follower.poll()
    assert ids(follower) == ["web-1", "web-2"]
    assert follower.holder.current.get_service("db") is db_view  # its cache entries live on


async def test_deletes_reach_the_follower(registry, follower):
    await registry.register(web("a"))
    await registry.register(web("b"))
    await follower.poll()
    await registry.deregister("web", "a")
    await follower.poll()
    assert ids(follower) == ["b"]
    await registry.deregister("web", "b")
    await follower.poll()
    assert follower.holder.current.get_service("web") is None
    await registry.register(web("c"))  # a name comes back after its tombstone
    await follower.poll()
    assert ids(follower) == ["c"]


async def test_a_heartbeat_renews_the_lease_in_the_follower(registry, follower, clock):
    await registry.register(web(ttl=10))
    await follower.poll()
    index = follower.holder.current.index
    clock.advance(8)
    await registry.heartbeat("web", "web-1")  # held in memory until the next flush
    await follower.poll()
    (held,) = follower.holder.current.get_service("web").instances
    assert held.last_heartbeat == clock.now - 8
    await registry.flush_renewals()
    await follower.poll()
    (instance,) = follower.holder.current.get_service("web").instances
    assert instance.last_heartbeat == clock.now  # the lease runs from the heartbeat
    assert follower.holder.current.index == index  # a plain renewal leaves the SOA serial
    clock.advance(5)
    assert instance.effective_status(clock.now) is P  # 5 s after the renewal: still leased


async def test_check_status_changes_reach_the_follower(registry, follower, clock):
    await registry.register(web(checks=(http_check(),)))
    await follower.poll()
    (instance,) = follower.holder.current.get_service("web").instances
    assert instance.status is C
    passing = replace(instance.checks[0], status=P, output="200 OK", last_change=clock.now)
    await registry.apply_health([CheckUpdate("web", "web-1", passing)])
    await follower.poll()
    (instance,) = follower.holder.current.get_service("web").instances
    assert (instance.status, instance.checks[0].output) == (P, "200 OK")


async def test_static_sync_of_many_services_reaches_the_follower(registry, follower):
    services = [
        StaticServiceConfig(
            name=f"s{n}", instances=(StaticInstanceConfig(address="10.0.1.1", port=n + 1),)
        )
        for n in range(100)
    ]
    registry.sync_static(services)
    await follower.poll()
    assert sorted(follower.holder.current.services) == sorted(f"s{n}" for n in range(100))
    registry.sync_static(services[:10])
    await follower.poll()
    assert sorted(follower.holder.current.services) == sorted(f"s{n}" for n in range(10))


async def test_a_new_follower_starts_from_the_whole_registry(registry, url):
    await registry.register(web())
    await registry.register(web("db-1", service="db"))
    await registry.deregister("db", "db-1")
    restarted = ChangeFollower.open(url)
    try:
        assert sorted(restarted.holder.current.services) == ["web"]
        assert restarted.holder.current.index == registry.holder.current.index
    finally:
        restarted.close()


async def test_a_counter_that_went_back_reloads_everything(registry, follower, url):
    await registry.register(web("a"))
    await registry.register(web("b", service="db"))
    await follower.poll()
    seen: list[Followed] = []
    follower._on_change = seen.append
    engine = create_engine(url)  # a database restored from an older copy, say
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM checks"))
        conn.execute(sa.text("DELETE FROM instances"))
        conn.execute(sa.text("DELETE FROM services WHERE name = 'db'"))
        conn.execute(sa.text("UPDATE registry_state SET change_seq = 0"))
    engine.dispose()
    await registry.register(web("c"))  # change_seq 1: below what the follower saw
    await follower.poll()
    assert sorted(follower.holder.current.services) == ["web"]
    assert ids(follower) == ["c"]
    (followed,) = seen
    assert followed.full
    assert {s.name: len(s.instances) for s in followed.services} == {"web": 1, "db": 0}


async def test_start_follows_in_the_background(registry, follower):
    follower.start()
    try:
        await registry.register(web())
        async with asyncio.timeout(5):
            while not ids(follower):
                await asyncio.sleep(0.005)
    finally:
        await follower.stop()
    polls = follower.polls
    await asyncio.sleep(0.03)
    assert follower.polls == polls  # stopped


async def test_a_failing_database_keeps_the_last_snapshot(registry, follower, caplog):
    await registry.register(web())
    await follower.poll()
    catalog = follower.holder.current
    follower._repository.engine.dispose()
    follower._repository = Repository(create_engine("sqlite:////nonexistent/dir/registry.db"))
    with caplog.at_level(logging.WARNING):
        follower.start()
        async with asyncio.timeout(5):
            while "still answering from the last snapshot" not in caplog.text:
                await asyncio.sleep(0.005)
        await follower.stop()
    assert follower.holder.current is catalog


def test_open_needs_a_migrated_schema(sqlite_url):
    with pytest.raises(StoreUnavailableError, match="db upgrade"):
        ChangeFollower.open(sqlite_url)


def test_interval_must_be_positive(sqlite_url):
    migrate.upgrade(sqlite_url)
    repo = Repository(create_engine(sqlite_url))
    with pytest.raises(ValueError, match="positive"):
        ChangeFollower(repo, CatalogHolder(), interval=0)
    repo.engine.dispose()


async def test_a_writer_follows_another_writer(registry, url):
    """Two nodes on one database: each sees the other's writes, blocking queries wake."""
    other = Registry.open(url, clock=registry.now)
    following = other.follower(interval=0.01)
    heard: list[int] = []
    other.add_listener(lambda change: heard.append(change.index))
    following.load()
    following.start()
    try:
        start = other.holder.current.index
        waiting = asyncio.ensure_future(other.wait_for_index(start, timeout=5))
        await registry.register(web())
        assert await waiting > start
        assert [i.id for i in other.find_service("web").instances] == ["web-1"]
        assert heard
        assert heard[-1] == registry.holder.current.index
        await other.register(web("web-2"))  # its own write is published at once
        assert [i.id for i in other.find_service("web").instances] == ["web-1", "web-2"]
    finally:
        await following.stop()
        other.close()


async def test_migration_0004_keeps_the_registry_and_starts_following_it(url, clock):
    config = migrate.alembic_config(url)
    first = Registry.open(url, clock=clock)
    try:
        await first.register(web())
    finally:
        first.close()
    command.downgrade(config, "0003")  # a registry as an older srvdns left it
    engine = create_engine(url)
    with engine.connect() as conn:
        assert "service_changes" not in sa.inspect(conn).get_table_names()
    engine.dispose()
    migrate.upgrade(url)
    writer = Registry.open(url, clock=clock)
    following = ChangeFollower.open(url)
    try:
        assert ids(following) == ["web-1"]
        assert following.change_seq == 0
        await writer.register(web("web-2"))
        await following.poll()
        assert ids(following) == ["web-1", "web-2"]
        assert following.change_seq == 1
    finally:
        following.close()
        writer.close()


async def test_wake_polls_before_the_interval_ends(registry, url):
    slow = ChangeFollower.open(url, interval=60)
    slow.start()
    try:
        polls = slow.polls
        async with asyncio.timeout(5):
            while slow.polls == polls:  # the first poll is done; the next is a minute away
                await asyncio.sleep(0.005)
        await registry.register(web())
        slow.wake()
        async with asyncio.timeout(5):
            while not ids(slow):
                await asyncio.sleep(0.005)
    finally:
        await slow.stop()
        slow.close()


async def test_a_follower_keeps_a_lease_renewed_in_memory(registry, url, clock):
    """A node's heartbeat held in memory is not undone when its follower reloads the
    service for another node's write made before the renewal reached the database."""
    other = Registry.open(url, clock=clock, heartbeat_flush=60)
    following = other.follower(interval=0.01)
    following.load()
    try:
        await other.register(web(ttl=30.0))
        clock.advance(10)
        renewed = await other.heartbeat("web", "web-1")  # held in memory only
        assert renewed.last_heartbeat == clock.now
        await registry.register(web("web-2"))  # another node touches the service
        await following.poll()
        view = other.find_service("web")
        assert [i.id for i in view.instances] == ["web-1", "web-2"]
        assert view.instances[0].last_heartbeat == clock.now  # not the stored, older one
    finally:
        other.close()
