"""Checks in the registry: stored with the instance, written only through apply_health,
kept across re-registration and restart, and leases as ttl checks."""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa
from alembic import command

from srvdns.model import Check, CheckKind, CheckSpec, Instance, Status
from srvdns.registry import migrate
from srvdns.registry.engine import create_engine
from srvdns.registry.registry import Registry
from srvdns.registry.repository import CheckUpdate

P, W, C = Status.PASSING, Status.WARNING, Status.CRITICAL


def spec(id: str = "http", **kw) -> CheckSpec:
    kw.setdefault("target", "http://10.0.0.1:80/")
    kw.setdefault("timeout", 1.0)
    return CheckSpec(id=id, kind=CheckKind.HTTP, interval=1, **kw)


def web(n: int = 1, *specs: CheckSpec, **kw) -> Instance:
    checks = tuple(Check(spec=s, status=s.initial_status) for s in specs)
    kw.setdefault("port", 80)
    return Instance(service="web", id=f"web-{n}", address="10.0.0.1", checks=checks, **kw)


def checks_of(registry: Registry, n: int = 1) -> dict[str, Check]:
    (found,) = [i for i in registry.find_service("web").instances if i.id == f"web-{n}"]
    return {c.id: c for c in found.checks}


def status_of(registry: Registry, n: int = 1) -> Status:
    (found,) = [i for i in registry.find_service("web").instances if i.id == f"web-{n}"]
    return found.status


async def test_register_starts_checks_in_their_initial_status(registry, clock):
    stored = await registry.register(web(1, spec(), spec("tcp-ok", initial_status=P)))
    assert stored.status is C  # the worst of them
    assert {c.id: (c.status, c.last_change) for c in stored.checks} == {
        "http": (C, clock.now),
        "tcp-ok": (P, clock.now),
    }
    assert registry.find_service("web").instances == (stored,)
    assert (await registry.register(web(2))).status is P  # no checks: passing


async def test_apply_health_bumps_the_index_when_a_status_changes(registry, clock):
    await registry.register(web(1, spec(), spec("second", initial_status=C)))
    index, generation = registry.holder.current.index, registry.holder.current.generation
    http = checks_of(registry)["http"]
    passing = replace(http, status=P, output="200 OK", last_change=clock.now, successes=1)
    change = await registry.apply_health([CheckUpdate("web", "web-1", passing)])
    # the instance stays critical (the second check), but a check's status changed: the
    # index moves so that blocking queries on health wake up
    assert change.index == index + 1
    assert change.health_only
    assert registry.holder.current.generation == generation + 1
    assert checks_of(registry)["http"] == passing
    # new output and counters alone: the catalog shows them, the index stays
    again = replace(passing, output="200 OK again", successes=2)
    change = await registry.apply_health([CheckUpdate("web", "web-1", again)])
    assert change.index == index + 1
    assert checks_of(registry)["http"] == again
    second = replace(checks_of(registry)["second"], status=W)
    change = await registry.apply_health([CheckUpdate("web", "web-1", second)])
    assert change.index == index + 2
    assert status_of(registry) is W
    # nothing to write: no transaction, no new snapshot
    generation = registry.holder.current.generation
    await registry.apply_health([])
    assert registry.holder.current.generation == generation


async def test_results_of_an_old_definition_are_ignored(registry):
    await registry.register(web(1, spec()))
    old = checks_of(registry)["http"]
    await registry.register(web(1, spec(target="http://10.0.0.1:81/")))
    await registry.apply_health([CheckUpdate("web", "web-1", replace(old, status=P))])
    assert checks_of(registry)["http"].status is C
    await registry.apply_health([CheckUpdate("web", "gone", replace(old, status=P))])


async def test_reregistering_keeps_the_state_of_unchanged_checks(registry, clock):
    await registry.register(web(1, spec(), spec("other")))
    http = replace(checks_of(registry)["http"], status=P, successes=4, output="ok")
    other = replace(checks_of(registry)["other"], status=P)
    await registry.apply_health(
        [CheckUpdate("web", "web-1", http), CheckUpdate("web", "web-1", other)]
    )
    assert status_of(registry) is P
    clock.advance(5)
    stored = await registry.register(web(1, spec(), spec("other", timeout=0.5), port=81))
    assert stored.status is C  # "other" changed: it starts over
    assert checks_of(registry)["http"] == http  # unchanged: kept, counters and all
    assert checks_of(registry)["other"].last_change == clock.now
    stored = await registry.register(web(1, spec()))
    assert list(checks_of(registry)) == ["http"]
    assert stored.status is P


async def test_removal_only_while_still_critical_since_the_same_time(registry, clock):
    await registry.register(web(1, spec()))
    await registry.register(web(2, spec()))
    critical = checks_of(registry, 1)["http"]
    moved_on = replace(critical, failures=9, output="later")  # counters live in memory
    stale = replace(critical, last_change=clock.now - 1)
    change = await registry.apply_health([], [CheckUpdate("web", "web-2", stale)])
    assert change.keys == ()
    assert len(registry.find_service("web").instances) == 2
    change = await registry.apply_health([], [CheckUpdate("web", "web-1", moved_on)])
    assert change.keys == (("web", "web-1"),)
    assert [i.id for i in registry.find_service("web").instances] == ["web-2"]


async def test_lease_is_a_ttl_check(registry, clock):
    stored = await registry.register(web(1, ttl=10))
    (ttl,) = stored.checks
    assert (ttl.spec.kind, ttl.spec.ttl, ttl.status) == (CheckKind.TTL, 10, P)
    clock.advance(11)
    assert stored.effective_status(clock.now) is C
    assert stored.check_status(ttl, clock.now) is C
    lapsed = replace(ttl, status=C, last_change=clock.now)
    await registry.apply_health([CheckUpdate("web", "web-1", lapsed)])
    assert registry.find_service("web").instances[0].status is C
    index = registry.holder.current.index
    renewed = await registry.heartbeat("web", "web-1")
    assert renewed.status is P
    assert renewed.checks[0].status is P
    assert renewed.checks[0].last_change == clock.now
    assert registry.holder.current.index == index + 1


async def test_a_ttl_check_may_start_critical(registry, clock):
    lease = CheckSpec(
        id="beat", kind=CheckKind.TTL, interval=30, timeout=0, ttl=30, initial_status=C
    )
    stored = await registry.register(web(1, lease))
    assert stored.ttl == 30
    assert stored.effective_status(clock.now) is C
    renewed = await registry.heartbeat("web", "web-1")
    assert renewed.effective_status(clock.now) is P


async def test_checks_dropped_and_given_again_are_stored_so(url, clock):
    """A replacement reads an instance's stored checks only when it has some: what it
    stores is the same either way, as a restart (a read of the database) shows."""
    first = Registry.open(url, clock=clock)
    await first.register(web(1, spec(), spec("other")))
    await first.register(web(2))
    await first.register(web(1))  # checks dropped
    await first.register(web(2))  # none before, none now
    clock.advance(3)
    await first.register(web(2, spec()))  # checks given to an instance without
    before = first.find_service("web")
    first.close()
    second = Registry.open(url, clock=clock)
    try:
        assert second.find_service("web") == before
        assert checks_of(second, 1) == {}
        assert checks_of(second, 2)["http"].last_change == clock.now
    finally:
        second.close()


async def test_checks_survive_a_restart(url, clock):
    first = Registry.open(url, clock=clock)
    await first.register(web(1, spec(headers=(("X-A", "b"),)), ttl=60))
    http = replace(checks_of(first)["http"], status=P, successes=2, output="fine")
    await first.apply_health([CheckUpdate("web", "web-1", http)])
    before = first.find_service("web")
    first.close()
    second = Registry.open(url, clock=clock)
    try:
        assert second.find_service("web") == before
    finally:
        second.close()


def test_migration_0002_turns_leases_into_ttl_checks(sqlite_url):
    config = migrate.alembic_config(sqlite_url)
    command.upgrade(config, "0001")
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO services (id, name) VALUES (1, 'web')"))
        for pk, ttl in ((1, 30.0), (2, None)):
            conn.execute(
                sa.text(
                    "INSERT INTO instances (id, service_id, instance_id, address, port, weight, "
                    "priority, tags, meta, ttl, last_heartbeat, registered_at, status, source) "
                    "VALUES (:pk, 1, :id, '10.0.0.1', 80, 1, 0, '[]', '{}', :ttl, 100.0, 100.0, "
                    "'passing', 'api')"
                ),
                {"pk": pk, "id": f"web-{pk}", "ttl": ttl},
            )
    engine.dispose()
    migrate.upgrade(sqlite_url)
    opened = Registry.open(sqlite_url)
    try:
        leased, plain = opened.find_service("web").instances
        assert plain.checks == ()
        assert plain.warning_weight == 1
        (ttl,) = leased.checks
        assert (ttl.id, ttl.spec.kind, ttl.spec.ttl, ttl.last_change) == (
            "ttl",
            CheckKind.TTL,
            30.0,
            100.0,
        )
    finally:
        opened.close()
    command.downgrade(config, "0001")
    engine = create_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM checks")).scalar() == 0
        assert "warning_weight" not in {
            c["name"] for c in sa.inspect(conn).get_columns("instances")
        }
    engine.dispose()


async def test_heartbeat_with_a_status(registry, clock):
    """Consul's pass, warn and fail: each renews the lease and sets the ttl check; the
    index moves only when a status does."""
    await registry.register(web(1, ttl=10))
    index = registry.holder.current.index
    clock.advance(2)
    warned = await registry.heartbeat("web", "web-1", status=W, output="slow")
    assert (warned.status, warned.last_heartbeat) == (W, clock.now)
    assert (warned.checks[0].status, warned.checks[0].output) == (W, "slow")
    assert warned.checks[0].last_change == clock.now
    assert registry.holder.current.index == index + 1
    clock.advance(2)
    again = await registry.heartbeat("web", "web-1", status=W, output="slower")
    assert again.checks[0].output == "slower"
    assert again.checks[0].last_change == clock.now - 2  # same status since then
    assert registry.holder.current.index == index + 1
    failed = await registry.heartbeat("web", "web-1", status=C, output="down")
    assert (failed.status, failed.checks[0].failures, failed.checks[0].successes) == (C, 1, 0)
    assert failed.effective_status(clock.now) is C  # critical although the lease runs
    assert registry.holder.current.index == index + 2
    passed = await registry.heartbeat("web", "web-1")
    assert (passed.status, passed.checks[0].output) == (P, "")
    assert registry.holder.current.index == index + 3
