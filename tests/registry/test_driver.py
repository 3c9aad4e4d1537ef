"""Statements run on SQLite's driver store what SQLAlchemy stores and fail as it fails."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from registry.test_repository import api, http_check
from sqlalchemy.engine import Connection

from srvdns.model import Status
from srvdns.registry import driver, migrate
from srvdns.registry.driver import DriverStatement
from srvdns.registry.engine import create_engine
from srvdns.registry.repository import Repository
from srvdns.registry.tables import instances, service_changes, services


def _written(url: str) -> object:
    """Register, replace and stamp through a repository; what it then holds."""
    engine = create_engine(url)
    repo = Repository(engine)
    with repo.batch(writes=2):
        repo.upsert_instance(
            api("web", "a", tags=("x", "y"), meta=(("k", "v\u00e9"),), ttl=12.5, checks=())
        )
        repo.upsert_instance(api("web", "b", checks=(http_check("h", Status.PASSING),)))
    with repo.batch(writes=1):
        repo.upsert_instance(api("web", "a", port=81, checks=(http_check("h"),)))
    changed = http_check("h", Status.WARNING, interval=2.0)  # the check row is updated
    with repo.batch(writes=2):
        repo.upsert_instance(api("web", "b", port=82, checks=(changed,)))
        repo.upsert_instance(api("web", "a", port=83, ttl=9.0, checks=(http_check("h"),)))
    repo.heartbeat("web", "a", 1_700_000_001.0)  # reads the checks back on its own
    with engine.connect() as conn:
        stamps = sorted(conn.execute(sa.select(service_changes)).all())
    held = (repo.load(), stamps)
    engine.dispose()
    return held


def test_the_driver_path_stores_what_sqlalchemy_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct, through = f"sqlite:///{tmp_path}/direct.db", f"sqlite:///{tmp_path}/through.db"
    for url in (direct, through):
        migrate.upgrade(url)
    by_driver = _written(direct)
    monkeypatch.setattr(driver, "_direct", lambda conn: False)
    assert _written(through) == by_driver


def test_a_driver_error_is_the_error_sqlalchemy_raises(sqlite_url: str) -> None:
    migrate.upgrade(sqlite_url)
    engine = create_engine(sqlite_url)
    insert = DriverStatement(services.insert())
    with engine.begin() as conn:
        pk = insert.insert(conn, {"name": "web"})
        assert conn.execute(sa.select(services.c.name).where(services.c.id == pk)).scalar() == "web"
        with pytest.raises(sa.exc.IntegrityError):
            insert.insert(conn, {"name": "web"})
        assert not conn.invalidated
    engine.dispose()


def test_a_connection_that_must_reopen_the_file_is_invalidated(sqlite_url: str) -> None:
    """A read-only connection (SQLITE_READONLY) is dropped, as the engine's error
    listener drops one that failed through SQLAlchemy."""
    migrate.upgrade(sqlite_url)
    path = sqlite_url.removeprefix("sqlite:///")
    engine = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    statement = DriverStatement(instances.delete().where(instances.c.id == sa.bindparam("b")))
    with engine.connect() as conn:
        with pytest.raises(sa.exc.OperationalError, match="readonly"):
            statement.run_many(conn, [{"b": 1}])
        assert conn.invalidated
    engine.dispose()


def _names(url: str) -> list[str]:
    """The service names in the file, read by a connection of the test's own."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(conn.scalars(sa.select(services.c.name)))
    finally:
        engine.dispose()


class _Boom(Exception):
    """Raised inside a transaction to see it rolled back."""


def _fail_in(conn: Connection, *steps: Callable[[], object]) -> None:
    """Run ``steps`` in a driver transaction, then raise ``_Boom`` inside it."""
    with driver.transaction(conn):
        for step in steps:
            step()
        raise _Boom


def test_a_driver_transaction_commits_at_the_end_and_rolls_back_on_an_error(
    sqlite_url: str,
) -> None:
    migrate.upgrade(sqlite_url)
    engine = create_engine(sqlite_url)
    insert = DriverStatement(services.insert())
    with engine.connect() as conn:
        with driver.transaction(conn):
            insert.insert(conn, {"name": "kept"})
            assert _names(sqlite_url) == []  # not before the commit
        assert _names(sqlite_url) == ["kept"]
        with pytest.raises(_Boom):
            _fail_in(conn, lambda: insert.insert(conn, {"name": "undone"}))
        with driver.transaction(conn):  # the connection goes on
            insert.insert(conn, {"name": "next"})
    engine.dispose()
    assert _names(sqlite_url) == ["kept", "next"]


def test_sqlalchemy_statements_join_a_driver_transaction(sqlite_url: str) -> None:
    migrate.upgrade(sqlite_url)
    engine = create_engine(sqlite_url)
    insert = DriverStatement(services.insert())
    with engine.connect() as conn:
        with pytest.raises(_Boom):
            _fail_in(
                conn,
                lambda: insert.insert(conn, {"name": "a"}),
                lambda: conn.execute(services.insert().values(name="b")),  # no second BEGIN
            )
        assert not conn.in_transaction()
        with driver.transaction(conn):
            conn.execute(services.insert().values(name="c"))
            insert.insert(conn, {"name": "d"})
        assert not conn.in_transaction()
    engine.dispose()
    assert _names(sqlite_url) == ["c", "d"]


@pytest.mark.parametrize(
    ("tags", "meta"),
    [([], {}), (["x"], {"k": "v"}), ((), None), ([], {"": ""})],
)
def test_parameters_are_bound_in_order_and_processed(
    tmp_path: Path, tags: object, meta: object
) -> None:
    """In order, JSON serialised (empty lists and dicts too; None stays NULL), floats as
    floats, literals filled in where the parameters leave them out."""
    engine = create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    statement = instances.update().where(instances.c.id == sa.bindparam("b_pk"))
    params = {"b_pk": 3, "tags": tags, "meta": meta, "ttl": 2, "port": 80}
    with engine.connect() as conn:
        compiled = DriverStatement(statement)._for(conn, tuple(params))
        assert compiled.sql.startswith("UPDATE instances SET port=?, tags=?, meta=?, ttl=? ")
        dumped = None if meta is None else json.dumps(meta)
        assert compiled.values(params) == (80, json.dumps(list(tags)), dumped, 2.0, 3)
        literal = DriverStatement(
            sa.update(services).where(services.c.id == 7).values(name=sa.bindparam("b_name"))
        )._for(conn, ("b_name",))
        assert literal.values({"b_name": "web"}) == ("web", 7)
    engine.dispose()
