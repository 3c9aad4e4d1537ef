"""srvdns.registry.repository: the SQL, one committed transaction per operation."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from srvdns.errors import ConflictError, NotFoundError, StoreUnavailableError
from srvdns.model import Check, CheckKind, CheckSpec, Instance, Service, Source, Status
from srvdns.registry import migrate, repository
from srvdns.registry.engine import create_engine
from srvdns.registry.repository import CheckUpdate, Repository
from srvdns.registry.tables import checks, instances, services

T = 1_700_000_000.0


def api(service: str, id: str, **kw) -> Instance:
    kw.setdefault("address", "10.0.0.1")
    kw.setdefault("port", 8080)
    kw.setdefault("last_heartbeat", T)
    kw.setdefault("registered_at", T)
    return Instance(service=service, id=id, **kw)


def static(service: str, id: str, **kw) -> Instance:
    return api(service, id, source=Source.STATIC, **kw)


def http_check(id: str = "http", status: Status = Status.CRITICAL, **kw) -> Check:
    spec = CheckSpec(id=id, kind=CheckKind.HTTP, interval=1.0, timeout=0.5, target="http://x/")
    return Check(spec=replace(spec, **kw), status=status, last_change=T)


def tcp_check(status: Status = Status.CRITICAL) -> Check:
    spec = CheckSpec(id="tcp", kind=CheckKind.TCP, interval=1.0, timeout=0.5, target="10.9.9.9:1")
    return Check(spec=spec, status=status, last_change=T)


def count(repo: Repository, table: sa.Table) -> int:
    with repo.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_empty_registry(repo):
    assert repo.load() == ([], 1)
    assert repo.get_service("web") is None


def test_upsert_roundtrips_every_field(repo):
    stored = api(
        "web",
        "Web-1",
        address="2001:db8::1",
        port=443,
        tags=("blue", "canary"),
        meta=(("zone", "eu-1"), ("a", "ünïcode")),
        weight=7,
        warning_weight=3,
        priority=3,
        ttl=12.5,
        status=Status.WARNING,
        checks=(
            http_check(
                status=Status.WARNING,
                method="HEAD",
                headers=(("X-A", "1"), ("Accept", "text/plain")),
                tls_skip_verify=True,
                success_before_passing=3,
                failures_before_critical=2,
                deregister_critical_after=90.0,
                initial_status=Status.WARNING,
            ),
            Check(
                spec=CheckSpec(id="ttl", kind=CheckKind.TTL, interval=12.5, timeout=0.0, ttl=12.5),
                status=Status.PASSING,
                output="ok",
                last_change=T - 1,
                successes=4,
                failures=0,
            ),
        ),
    )
    change = repo.upsert_instance(stored)
    assert change.index == 2
    service = repo.find_service("web")
    [loaded] = service.instances
    assert loaded.tags == ("blue", "canary")
    assert loaded.meta == (("a", "ünïcode"), ("zone", "eu-1"))  # sorted pairs
    assert loaded == replace(stored, meta=(("a", "ünïcode"), ("zone", "eu-1")))
    # the write reports the instance exactly as a read gives it back, without reading
    assert change.upserts == (loaded,)
    assert change.instance == loaded


def test_load_sorts_services_and_instances(repo):
    for service, id in [("web", "b"), ("db", "z"), ("web", "a"), ("api", "x")]:
        repo.upsert_instance(api(service, id))
    services_, index = repo.load()
    assert index == 5
    assert [s.name for s in services_] == ["api", "db", "web"]
    assert [i.id for i in services_[2].instances] == ["a", "b"]


def test_replace_keeps_one_row_and_bumps_index(repo):
    repo.upsert_instance(api("web", "a", port=1))
    change = repo.upsert_instance(api("web", "a", port=2))
    assert change.index == 3
    assert [i.port for i in repo.find_service("web").instances] == [2]
    assert count(repo, instances) == 1


def test_instance_ids_are_case_sensitive(repo):
    repo.upsert_instance(api("web", "node-a"))
    repo.upsert_instance(api("web", "Node-A"))
    assert sorted(i.id for i in repo.find_service("web").instances) == ["Node-A", "node-a"]


def test_delete_last_instance_deletes_service(repo):
    repo.upsert_instance(api("web", "a"))
    repo.upsert_instance(api("web", "b"))
    change = repo.delete_instance("web", "a")
    assert change.removals == (("web", "a"),)
    assert [i.id for i in repo.find_service("web").instances] == ["b"]
    change = repo.delete_instance("web", "b")
    assert change.removals == (("web", "b"),)
    assert change.index == 5
    assert count(repo, services) == 0
    assert repo.get_service("web") is None


def test_delete_unknown(repo):
    repo.upsert_instance(api("web", "a"))
    with pytest.raises(NotFoundError, match="no service 'db'"):
        repo.delete_instance("db", "a")
    with pytest.raises(NotFoundError, match="service 'web' has no instance 'A'"):
        repo.delete_instance("web", "A")
    assert repo.read_index() == 2


def test_api_cannot_touch_static_instances(repo):
    repo.sync_static([static("db", "db-1")])
    index = repo.read_index()
    with pytest.raises(ConflictError, match="config file"):
        repo.upsert_instance(api("db", "db-1", port=1))
    with pytest.raises(ConflictError, match="config file"):
        repo.delete_instance("db", "db-1")
    assert repo.read_index() == index
    assert repo.find_service("db").instances[0].port == 8080
    # another id in the same service is fine
    repo.upsert_instance(api("db", "db-api"))
    assert len(repo.find_service("db").instances) == 2


def test_heartbeat(repo):
    repo.upsert_instance(api("web", "a", ttl=10))
    repo.upsert_instance(api("web", "plain"))
    live = repo.heartbeat("web", "a", T + 5)
    assert live.instance is not None
    assert live.instance.last_heartbeat == T + 5
    assert live.index == 3  # extending a live lease changes no answer
    lapsed = repo.heartbeat("web", "a", T + 5 + 10)  # lease ended exactly now
    assert lapsed.index == 4  # the instance comes back
    assert repo.find_service("web").instances[0].last_heartbeat == T + 15
    with pytest.raises(ConflictError, match="no ttl"):
        repo.heartbeat("web", "plain", T)
    with pytest.raises(NotFoundError):
        repo.heartbeat("web", "nope", T)
    with pytest.raises(NotFoundError):
        repo.heartbeat("nope", "a", T)


def test_sync_static_add_change_remove(repo):
    repo.upsert_instance(api("db", "db-api"))
    change = repo.sync_static([static("db", "db-1"), static("cache", "cache-1")])
    assert [s.name for s in change.services] == ["cache", "db"]
    assert change.index == 3  # one bump for the whole sync

    assert repo.sync_static([static("db", "db-1"), static("cache", "cache-1")]).services == ()
    assert repo.read_index() == 3

    # health and times of an edited static instance are kept
    checked = static("db", "db-1", checks=(tcp_check(Status.PASSING),))
    repo.sync_static([checked, static("cache", "cache-1")])
    repo.apply_health([CheckUpdate("db", "db-1", tcp_check(Status.CRITICAL))])
    edited = replace(checked, port=5433, registered_at=T + 100)
    change = repo.sync_static([edited, static("cache", "cache-1")])
    [db] = change.services
    found = next(i for i in db.instances if i.id == "db-1")
    assert (found.port, found.status, found.registered_at) == (5433, Status.CRITICAL, T)
    assert [c.status for c in found.checks] == [Status.CRITICAL]

    change = repo.sync_static([static("db", "db-1", port=5433)])  # check gone too
    assert change.services[0] == Service("cache", ())
    assert [i.status for i in change.services[1].instances] == [Status.PASSING] * 2
    assert repo.get_service("cache") is None
    assert {i.id for i in repo.find_service("db").instances} == {"db-1", "db-api"}

    repo.sync_static([])
    assert [i.id for i in repo.find_service("db").instances] == ["db-api"]  # API stays


def test_sync_static_takes_over_an_api_instance(repo):
    repo.upsert_instance(api("db", "db-1", ttl=5, status=Status.CRITICAL))
    repo.sync_static([static("db", "db-1", registered_at=T + 1, last_heartbeat=T + 1)])
    [taken] = repo.find_service("db").instances
    assert (taken.source, taken.ttl, taken.status) == (Source.STATIC, None, Status.PASSING)


def test_failed_write_stores_nothing(repo, monkeypatch):
    def broken(conn):
        raise sa.exc.OperationalError("UPDATE registry_state", {}, Exception("disk I/O error"))

    monkeypatch.setattr(repository, "bump_index", broken)
    with pytest.raises(StoreUnavailableError, match="nothing was stored: disk I/O error"):
        repo.upsert_instance(api("web", "a"))
    monkeypatch.undo()
    assert repo.load() == ([], 1)
    assert count(repo, services) == 0


def test_unreachable_database(tmp_path: Path):
    engine = create_engine(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    with pytest.raises(StoreUnavailableError, match="unable to open database file"):
        Repository(engine).load()
    engine.dispose()


def test_unmigrated_database(sqlite_url):
    engine = create_engine(sqlite_url)
    with pytest.raises(StoreUnavailableError, match="no such table"):
        Repository(engine).upsert_instance(api("web", "a"))
    engine.dispose()


def test_deleting_an_instance_cascades_to_its_checks(repo):
    repo.upsert_instance(api("web", "a"))
    with repo.engine.begin() as conn:
        pk = conn.execute(sa.select(instances.c.id)).scalar_one()
        conn.execute(
            checks.insert().values(
                instance_pk=pk,
                check_id="http",
                kind="http",
                definition={"url": "http://10.0.0.1:8080/health"},
                status="passing",
                output="",
                last_change=T,
                successes=0,
                failures=0,
            )
        )
    repo.delete_instance("web", "a")
    assert count(repo, checks) == 0


def test_sqlite_pragmas(sqlite_url):
    engine = create_engine(sqlite_url)
    with engine.connect() as conn:

        def pragma(name: str) -> object:
            return conn.exec_driver_sql(f"PRAGMA {name}").scalar()

        assert pragma("journal_mode") == "wal"
        assert pragma("foreign_keys") == 1
        assert pragma("busy_timeout") == 5000
        assert pragma("synchronous") == 1  # NORMAL
    engine.dispose()


def test_sqlite_writes_take_the_write_lock_up_front(sqlite_url):
    """A second writer waits for the first (busy timeout) instead of failing half-way."""
    migrate.upgrade(sqlite_url)
    engine = create_engine(sqlite_url)
    statements: list[str] = []
    # what SQLite itself runs (the write path sends its BEGIN to the driver directly)
    sa.event.listen(engine, "connect", lambda raw, _: raw.set_trace_callback(statements.append))
    Repository(engine).upsert_instance(api("web", "a"))
    engine.dispose()
    assert statements[0] == "BEGIN IMMEDIATE"


def test_sqlite_batches_share_one_connection_until_the_database_refuses_one(sqlite_url):
    """The writer's connection is kept between batches; after a batch the database
    refused (here a full file), the next one checks a connection out afresh."""
    migrate.upgrade(sqlite_url)
    engine = create_engine(sqlite_url)
    repo = Repository(engine)
    with repo.batch(writes=1):
        repo.upsert_instance(api("web", "a"))
    kept = repo._writer_connection()
    with repo.batch(writes=1):
        repo.upsert_instance(api("web", "b"))
    assert repo._writer_connection() is kept
    pages = kept.exec_driver_sql("PRAGMA page_count").scalar()
    kept.exec_driver_sql(f"PRAGMA max_page_count = {pages}")
    kept.rollback()
    big = tuple((f"k{n}", "v" * 500) for n in range(40))
    with pytest.raises(StoreUnavailableError, match="full"), repo.batch(writes=1):
        repo.upsert_instance(api("web", "c", meta=big))
    fresh = repo._writer_connection()
    assert fresh is not kept
    fresh.exec_driver_sql("PRAGMA max_page_count = 1000000")  # room again
    fresh.rollback()
    with repo.batch(writes=1):
        repo.upsert_instance(api("web", "c", meta=big))
    assert repo._writer_connection() is fresh
    assert [i.id for i in repo.find_service("web").instances] == ["a", "b", "c"]
    repo.close_writer()
    engine.dispose()


def _big_static_config() -> list[Instance]:
    out = []
    for s in range(30):
        for i in range(5):
            found = (http_check("z-http", Status.PASSING), tcp_check()) if i % 2 else ()
            out.append(
                static(
                    f"svc-{s}",
                    f"svc-{s}-{4 - i}",  # not in id order
                    tags=("b", "a"),
                    meta=(("a", "2"), ("z", "1")),
                    port=8000 + i,
                    checks=found,
                )
            )
    return out


@pytest.mark.parametrize("bulk_above", [0, 10_000])
def test_sync_static_bulk_equals_one_by_one(repo, monkeypatch, bulk_above):
    """Inserting many new static instances at once (executemany, services built without a
    read back) stores and reports exactly what inserting them one by one does."""
    monkeypatch.setattr(repository, "_MANY_SERVICES", bulk_above)
    repo.upsert_instance(api("svc-0", "svc-0-api"))  # a service that already has a row
    repo.sync_static([static("svc-1", "svc-1-0", port=1)])  # an existing static one, edited
    desired = _big_static_config()
    change = repo.sync_static(desired)
    loaded, index = repo.load()
    assert change.index == index
    assert list(change.services) == loaded  # the change is what a read gives
    assert sum(len(s.instances) for s in loaded) == len(desired) + 1
    [svc1] = [s for s in loaded if s.name == "svc-1"]
    assert next(i for i in svc1.instances if i.id == "svc-1-0").port == 8004
    checked = next(i for i in loaded[0].instances if i.checks)
    assert [c.id for c in checked.checks] == ["tcp", "z-http"]
    assert checked.status is Status.CRITICAL
    assert repo.sync_static(desired).services == ()  # unchanged config: nothing to do


def test_sync_static_bulk_and_one_by_one_store_the_same(url, monkeypatch, tmp_path):
    stored = []
    for n, bulk_above in enumerate((0, 10_000)):
        other = f"sqlite:///{tmp_path}/r{n}.db"
        migrate.upgrade(other)
        engine = create_engine(other)
        monkeypatch.setattr(repository, "_MANY_SERVICES", bulk_above)
        Repository(engine).sync_static(_big_static_config())
        stored.append(Repository(engine).load())
        engine.dispose()
    assert stored[0] == stored[1]


@pytest.mark.parametrize("writes", [1, 2])
def test_a_batch_write_that_fails_half_way_leaves_nothing(repo: Repository, writes: int) -> None:
    """A batch of one write runs it without a savepoint: its failure after its first
    statements undoes them as a savepoint would, and the next batch works."""

    def state() -> tuple[list[str], tuple[int, int]]:
        with repo.engine.connect() as conn:
            seq = repository.read_change_seq(conn)
        return [i.id for s in repo.load_services() for i in s.instances], seq

    with repo.batch(writes=writes):
        repo.upsert_instance(api("web", "a"))
    before = state()
    twice = api("web", "b", checks=(http_check("x"), http_check("x")))  # the 2nd insert fails
    with repo.batch(writes=writes), pytest.raises(ConflictError):
        repo.upsert_instance(twice)
    assert state() == before
    with repo.batch(writes=writes):
        repo.upsert_instance(api("web", "c"))
    assert state()[0] == ["a", "c"]


def test_a_batch_told_one_write_that_gets_more_stays_safe(repo: Repository) -> None:
    """After its lone write, a batch runs further writes in savepoints; after a failed
    lone write (its transaction is to be rolled back) it refuses them."""
    twice = api("web", "b", checks=(http_check("x"), http_check("x")))
    with repo.batch(writes=1):
        repo.upsert_instance(api("web", "a"))
        with pytest.raises(ConflictError):
            repo.upsert_instance(twice)
    assert [i.id for s in repo.load_services() for i in s.instances] == ["a"]
    with repo.batch(writes=1):
        with pytest.raises(ConflictError):
            repo.upsert_instance(twice)
        if repo.engine.dialect.name == "sqlite":  # the lone write ran without a savepoint
            with pytest.raises(StoreUnavailableError):
                repo.upsert_instance(api("web", "c"))
            expected = ["a"]
        else:  # every write has its savepoint: the failed one undid only itself
            repo.upsert_instance(api("web", "c"))
            expected = ["a", "c"]
    assert [i.id for s in repo.load_services() for i in s.instances] == expected
