"""The bulk paths read and write exactly what the per-row SQLAlchemy paths do."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa

from srvdns.model import Check, CheckKind, CheckSpec, Instance, Source, Status
from srvdns.registry import bulk, repository
from srvdns.registry.tables import service_changes, services

T = 1_700_000_000.0


def instance(service: str, id: str, **kw) -> Instance:
    kw.setdefault("address", "10.0.0.1")
    kw.setdefault("port", 8080)
    return Instance(service=service, id=id, last_heartbeat=T, registered_at=T, **kw)


def http_check() -> Check:
    spec = CheckSpec(id="http", kind=CheckKind.HTTP, interval=1.0, timeout=0.5, target="http://x/")
    return Check(spec=spec, status=Status.WARNING, last_change=T)


def _per_row_load(conn: sa.Connection) -> list:
    """The registry as SQLAlchemy's ``Row`` objects and type processors give it."""
    query = (
        sa.select(*repository._ROW_COLUMNS)
        .select_from(repository._JOINED)
        .order_by(services.c.name, repository.instances.c.instance_id)
    )
    return repository._group(conn.execute(query).all(), repository._checks_by_instance(conn))


def test_the_row_layout_is_the_repository_s():
    assert tuple(c.name for c in repository._ROW_COLUMNS) == bulk.INSTANCE_ROW


def test_load_equals_the_per_row_read(repo):
    """Tags, meta (unicode, sorted), leases, statuses, sources and checks read back the
    same through the bulk read as through SQLAlchemy's rows, on every backend."""
    repo.upsert_instance(
        instance(
            "web",
            "Web-1",
            address="2001:db8::1",
            tags=("blue", "canary"),
            meta=(("zone", "eu-1"), ("a", 'ünïcode "quoted"')),
            ttl=12.5,
            weight=7,
            warning_weight=3,
            priority=2,
            checks=(http_check(),),
        )
    )
    repo.upsert_instance(instance("web", "web-0", tags=("blue",)))
    repo.upsert_instance(instance("api", "api-1", tags=("blue",)))
    repo.sync_static(
        [instance("db", f"db-{n}", port=5432 + n, source=Source.STATIC) for n in (2, 1)]
    )
    loaded = repo.load_services()
    with repo.engine.connect() as conn:
        assert loaded == _per_row_load(conn)
    assert [s.name for s in loaded] == ["api", "db", "web"]
    web = loaded[2].instances
    assert [i.id for i in web] == ["Web-1", "web-0"]
    assert web[0].meta == (("a", 'ünïcode "quoted"'), ("zone", "eu-1"))
    assert web[0].tags == ("blue", "canary")
    assert web[0].status is Status.WARNING
    assert loaded[1].instances[0].source is Source.STATIC


def test_a_bulk_insert_reads_back_like_a_core_insert(repo, monkeypatch):
    """Many new static instances (the executemany path) load as the same services as
    the same instances inserted one by one."""
    desired = [
        instance(
            f"svc-{s}",
            f"svc-{s}-{i}",
            tags=("b", "a") if i else (),
            meta=(("k", str(i)),) if i % 2 else (),
            ttl=None if i else 30.0,
            source=Source.STATIC,
        )
        for s in range(20)
        for i in range(5)
    ]
    repo.sync_static(desired)
    bulk_loaded = repo.load_services()
    with repo.engine.begin() as conn:
        conn.execute(repository.checks.delete())
        conn.execute(repository.instances.delete())
        conn.execute(services.delete())
    monkeypatch.setattr(repository, "_MANY_SERVICES", 10_000)  # one by one
    repo.sync_static(desired, "another digest")
    assert repo.load_services() == bulk_loaded
    assert sum(len(s.instances) for s in bulk_loaded) == 100


def test_insert_many_errors_are_sqlalchemy_errors(repo):
    """A failing bulk insert raises SQLAlchemy's wrapped error (what ``store_errors``
    turns into StoreUnavailableError) and leaves nothing of itself."""
    with repo.engine.begin() as conn:
        bulk.insert_many(conn, service_changes, ("name", "change_seq"), [("a", 1), ("b", 1)])
    with pytest.raises(sa.exc.IntegrityError), repo.engine.begin() as conn:
        bulk.insert_many(conn, service_changes, ("name", "change_seq"), [("c", 2), ("a", 2)])
    with repo.engine.connect() as conn:
        names = conn.scalars(sa.select(service_changes.c.name).order_by("name")).all()
    assert names == ["a", "b"]


def test_insert_many_of_nothing_runs_nothing(repo):
    statements: list[str] = []
    sa.event.listen(repo.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with repo.engine.connect() as conn:
        bulk.insert_many(conn, service_changes, ("name", "change_seq"), [])
    assert statements == []


def test_select_rows_binds_values_and_in_lists(repo):
    with repo.engine.begin() as conn:
        bulk.insert_many(conn, services, ("name",), [("a",), ("b",), ("c",), ("d",)])
        query = (
            sa.select(services.c.name)
            .where(sa.or_(services.c.name.in_(["a", "c"]), services.c.name == "d"))
            .order_by(services.c.name)
        )
        assert [tuple(row) for row in bulk.select_rows(conn, query)] == [("a",), ("c",), ("d",)]


def test_an_edited_static_set_syncs_in_bulk(repo):
    """A changed config over many stored static instances: the edited one changes, the
    dropped one goes, an API instance under a static id becomes static, the rest stay."""
    desired = [
        instance(f"svc-{s}", f"svc-{s}-{i}", source=Source.STATIC, tags=("t",))
        for s in range(80)
        for i in range(2)
    ]
    repo.upsert_instance(instance("svc-1", "api-1"))
    repo.sync_static(desired, "one")
    before = {s.name: s for s in repo.load_services()}
    edited = [
        replace(i, port=9999) if i.id == "svc-3-0" else i for i in desired if i.id != "svc-4-1"
    ] + [instance("svc-1", "api-1", source=Source.STATIC, port=7)]
    change = repo.sync_static(edited, "two")
    after = {s.name: s for s in repo.load_services()}
    assert sorted(s.name for s in change.services) == ["svc-1", "svc-3", "svc-4"]
    assert list(change.services) == [after["svc-1"], after["svc-3"], after["svc-4"]]
    assert next(i for i in after["svc-3"].instances if i.id == "svc-3-0").port == 9999
    assert [i.id for i in after["svc-4"].instances] == ["svc-4-0"]
    assert next(i for i in after["svc-1"].instances if i.id == "api-1").source is Source.STATIC
    assert {k: v for k, v in after.items() if k not in ("svc-1", "svc-3", "svc-4")} == {
        k: v for k, v in before.items() if k not in ("svc-1", "svc-3", "svc-4")
    }
