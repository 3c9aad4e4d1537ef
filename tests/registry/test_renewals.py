"""Heartbeats held in memory and persisted in batches; writes committed in groups."""

from __future__ import annotations

import asyncio
import threading

import pytest
from registry.conftest import Clock

from srvdns.errors import ConflictError, NotFoundError
from srvdns.model import Check, CheckKind, CheckSpec, Instance, Status
from srvdns.registry.registry import Registry
from srvdns.registry.renewals import RenewalBuffer, renew
from srvdns.registry.repository import LeaseRenewal, Repository

P, W, C = Status.PASSING, Status.WARNING, Status.CRITICAL


def web(id: str = "web-1", **kw) -> Instance:
    kw.setdefault("address", "10.0.0.1")
    kw.setdefault("port", 8080)
    return Instance(service="web", id=id, **kw)


def stored_lease(repository: Repository, id: str = "web-1") -> tuple[float, int, str]:
    """(last_heartbeat, ttl check successes, its output) as the database has them."""
    [instance] = [i for i in repository.find_service("web").instances if i.id == id]
    [check] = instance.checks
    return instance.last_heartbeat, check.successes, check.output


# -- the pure rule ----------------------------------------------------------------------


def leased(ttl: float = 10, status: Status = P, at: float = 100.0) -> Instance:
    spec = CheckSpec(id="ttl", kind=CheckKind.TTL, interval=ttl, timeout=0, ttl=ttl)
    check = Check(spec=spec, status=status, output="", last_change=at, successes=2)
    return web(ttl=ttl, last_heartbeat=at, status=status, checks=(check,))


def test_renew_moves_a_running_lease_and_counts():
    renewed = renew(leased(), 105.0, P, "ok")
    assert renewed is not None
    instance, check = renewed
    assert instance.last_heartbeat == 105.0
    assert (check.status, check.output, check.successes, check.failures) == (P, "ok", 3, 0)
    assert check.last_change == 100.0  # the status did not change


@pytest.mark.parametrize(
    ("instance", "now", "status"),
    [
        (leased(), 110.0, P),  # the lease lapsed at 110: the health state changes
        (leased(), 105.0, W),  # a status change bumps the index
        (leased(status=C), 105.0, P),
        (web(), 105.0, P),  # no lease at all
        (leased(), 99.0, P),  # the clock went back: never shorten a lease here
    ],
)
def test_renew_leaves_anything_else_to_a_transaction(instance, now, status):
    assert renew(instance, now, status, "") is None


def test_a_repeated_fail_stays_in_memory_and_counts_failures():
    renewed = renew(leased(status=C), 105.0, C, "down")
    assert renewed is not None
    assert (renewed[1].successes, renewed[1].failures) == (0, 1)


def test_buffer_keeps_the_newest_and_restores_without_going_back():
    buffer = RenewalBuffer()

    def at(t: float) -> LeaseRenewal:
        return LeaseRenewal("web", "a", t, "ttl", P, "", 0, 0)

    buffer.add(at(1))
    buffer.add(at(2))
    taken = buffer.take()
    assert [r.at for r in taken] == [2]
    assert not buffer
    buffer.add(at(3))
    buffer.restore(taken)  # a failed flush: the newer renewal wins
    assert [r.at for r in buffer.take()] == [3]
    buffer.restore(taken)
    assert len(buffer) == 1


# -- the registry -----------------------------------------------------------------------


async def test_a_heartbeat_is_in_the_catalog_at_once_and_in_the_database_later(url, clock: Clock):
    registry = Registry.open(url, clock=clock, heartbeat_flush=0.05)
    try:
        await registry.register(web(ttl=30))
        index = registry.holder.current.index
        clock.advance(5)
        renewed = await registry.heartbeat("web", "web-1")
        assert renewed.last_heartbeat == clock.now
        assert registry.find_service("web").instances[0].last_heartbeat == clock.now
        assert registry.holder.current.index == index  # nothing DNS answers changed
        assert stored_lease(registry._repository)[0] == clock.now - 5  # not yet written
        for _ in range(200):  # the flush interval passes
            if stored_lease(registry._repository)[0] == clock.now:
                break
            await asyncio.sleep(0.01)
        assert stored_lease(registry._repository) == (clock.now, 1, "")
    finally:
        registry.close()


async def test_close_persists_the_renewals_held_in_memory(url, clock: Clock):
    registry = Registry.open(url, clock=clock, heartbeat_flush=3600)
    await registry.register(web(ttl=30))
    for _ in range(3):
        clock.advance(1)
        await registry.heartbeat("web", "web-1")
    assert stored_lease(registry._repository)[0] == clock.now - 3
    registry.close()
    reopened = Registry.open(url, clock=clock)
    try:
        assert stored_lease(reopened._repository) == (clock.now, 3, "")
        assert reopened.find_service("web").instances[0].last_heartbeat == clock.now
    finally:
        reopened.close()


async def test_the_next_write_carries_the_renewals(url, clock: Clock):
    registry = Registry.open(url, clock=clock, heartbeat_flush=3600)
    try:
        await registry.register(web(ttl=30))
        clock.advance(2)
        await registry.heartbeat("web", "web-1")
        await registry.register(web("web-2"))  # any transaction writes them too
        assert stored_lease(registry._repository)[0] == clock.now
    finally:
        registry.close()


async def test_flush_zero_commits_every_heartbeat_before_it_returns(url, clock: Clock):
    registry = Registry.open(url, clock=clock, heartbeat_flush=0)
    try:
        await registry.register(web(ttl=30))
        clock.advance(2)
        await registry.heartbeat("web", "web-1")
        assert stored_lease(registry._repository)[0] == clock.now
    finally:
        registry.close()


async def test_a_lapsed_lease_is_renewed_by_a_transaction(registry, clock: Clock):
    await registry.register(web(ttl=10))
    index = registry.holder.current.index
    clock.advance(11)
    await registry.heartbeat("web", "web-1")
    assert registry.holder.current.index == index + 1  # back in DNS: a change
    assert stored_lease(registry._repository)[0] == clock.now


async def test_heartbeat_errors_are_unchanged(registry):
    await registry.register(web())  # no lease
    with pytest.raises(ConflictError, match="has no ttl"):
        await registry.heartbeat("web", "web-1")
    with pytest.raises(NotFoundError):
        await registry.heartbeat("web", "nope")


async def test_a_reread_service_keeps_a_newer_lease_from_memory(url, clock: Clock):
    registry = Registry.open(url, clock=clock, heartbeat_flush=3600)
    try:
        await registry.register(web(ttl=30))
        await registry.register(web("web-2", ttl=30))
        clock.advance(3)
        await registry.heartbeat("web", "web-1")
        renewals = registry._renewals.take()  # as if a transaction already ran
        # a write that reads the service back from a database without that renewal
        await registry.heartbeat("web", "web-2", status=W)
        lease = {i.id: i.last_heartbeat for i in registry.find_service("web").instances}
        assert lease == {"web-1": clock.now, "web-2": clock.now}
        registry._renewals.restore(renewals)
    finally:
        registry.close()


async def test_a_deregistration_wins_over_a_renewal_in_the_same_moment(registry, clock):
    await registry.register(web(ttl=30))
    clock.advance(1)
    beat = asyncio.create_task(registry.heartbeat("web", "web-1"))
    gone = asyncio.create_task(registry.deregister("web", "web-1"))
    await asyncio.gather(beat, gone)
    assert registry.services() == []


# -- group commit -----------------------------------------------------------------------


async def test_queued_writes_commit_together_and_fail_alone(registry, monkeypatch):
    release = threading.Event()
    upsert = registry._repository.upsert_instance

    def held(instance, **options):
        release.wait(5)
        return upsert(instance, **options)

    monkeypatch.setattr(registry._repository, "upsert_instance", held)
    first = asyncio.create_task(registry.register(web("a")))
    await asyncio.sleep(0.05)  # the worker holds the first write; the rest queue up
    others = [asyncio.create_task(registry.register(web(f"w{n}"))) for n in range(5)]
    clash = asyncio.create_task(registry.deregister("web", "missing"))
    await asyncio.sleep(0.05)
    index = registry.holder.current.index
    release.set()
    await first
    stored = await asyncio.gather(*others)
    with pytest.raises(NotFoundError):
        await clash
    # the five queued registrations went into one transaction: one index for all
    assert {i.id for i in stored} == {f"w{n}" for n in range(5)}
    assert registry.holder.current.index == index + 2
    names = sorted(i.id for i in registry._repository.find_service("web").instances)
    assert names == ["a", "w0", "w1", "w2", "w3", "w4"]


async def test_a_failed_commit_fails_every_write_of_the_batch_and_keeps_renewals(
    url, clock, monkeypatch
):
    registry = Registry.open(url, clock=clock, heartbeat_flush=3600)  # no flush meanwhile
    await registry.register(web(ttl=30))
    while registry._draining:  # the worker thread may still look for more work, and
        await asyncio.sleep(0.001)  # would take the renewal into a batch of its own
    clock.advance(1)
    await registry.heartbeat("web", "web-1")
    held = len(registry._renewals)
    assert held == 1

    class Broken(Exception):
        pass

    def broken(renewals=(), writes=2):
        raise Broken("disk full")

    monkeypatch.setattr(registry._repository, "batch", broken)
    with pytest.raises(Broken):
        await registry.register(web("web-2"))
    assert len(registry._renewals) == held  # still to be written
    assert [i.id for i in registry.find_service("web").instances] == ["web-1"]
    monkeypatch.undo()
    await registry.register(web("web-3"))
    assert stored_lease(registry._repository)[0] == clock.now
    registry.close()


async def test_renewal_of_a_replaced_instance_keeps_the_replacement(registry, clock):
    await registry.register(web(ttl=30))
    clock.advance(1)
    beat = asyncio.create_task(registry.heartbeat("web", "web-1"))
    again = asyncio.create_task(registry.register(web(ttl=60, port=9)))
    await asyncio.gather(beat, again)
    [instance] = registry.find_service("web").instances
    assert (instance.port, instance.ttl) == (9, 60)
