"""Database trouble: a refused write stores nothing and leaves the catalog alone; the
write probe names what is wrong and passes again once the database is back."""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from srvdns.errors import StoreUnavailableError
from srvdns.model import Instance
from srvdns.registry.registry import Registry
from srvdns.registry.trouble import needs_reopen

from .conftest import Clock


def web(id: str, **kw: object) -> Instance:
    return Instance(service="web", id=id, address="10.0.0.1", port=8080, **kw)  # type: ignore[arg-type]


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "registry.db"


@pytest.fixture
def registry(database: Path, clock: Clock) -> Iterator[Registry]:
    opened = Registry.open(f"sqlite:///{database}", clock=clock)
    yield opened
    opened.close()


def stored_ids(database: Path) -> list[str]:
    """The instance ids in the file, read by a connection of the test's own."""
    connection = sqlite3.connect(database)
    try:
        return sorted(row[0] for row in connection.execute("SELECT instance_id FROM instances"))
    finally:
        connection.close()


def limit_pages(registry: Registry, pages: int | None) -> None:
    """Cap the file size for the registry's writes (SQLite's SQLITE_FULL, as on a full
    disk): the limit is the writing connection's own."""

    def cap() -> None:
        connection = registry._repository._writer_connection()
        count = connection.exec_driver_sql("PRAGMA page_count").scalar()
        wanted = count if pages is None else pages
        connection.exec_driver_sql(f"PRAGMA max_page_count = {wanted}")
        connection.rollback()

    registry._call(cap)


async def test_a_full_disk_refuses_the_write_whole_and_recovers(
    registry: Registry, database: Path
) -> None:
    await registry.register(web("a"))
    limit_pages(registry, None)
    big = tuple((f"k{n}", "v" * 500) for n in range(40))
    refused: StoreUnavailableError | None = None
    for n in range(50):
        try:
            await registry.register(web(f"b{n}", meta=big))
        except StoreUnavailableError as exc:
            refused, missing = exc, f"b{n}"
            break
    assert refused is not None
    assert "database or disk is full" in str(refused)
    assert missing not in stored_ids(database)
    assert registry.holder.current.index == stored_index(database)
    assert [i.id for i in registry.find_service("web").instances] == stored_ids(database)
    limit_pages(registry, 1_000_000)
    await registry.register(web(missing, meta=big))
    assert missing in stored_ids(database)


def stored_index(database: Path) -> int:
    connection = sqlite3.connect(database)
    try:
        return int(connection.execute('SELECT "index" FROM registry_state').fetchone()[0])
    finally:
        connection.close()


async def test_a_held_write_lock_fails_the_probe_within_a_second(
    registry: Registry, database: Path
) -> None:
    holder = sqlite3.connect(database, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreUnavailableError, match=r"^error: database is locked$"):
            await registry.ping(write=True)
        await registry.ping()  # reads still work
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    await registry.ping(write=True)


async def test_a_removed_file_is_never_written_to(registry: Registry, database: Path) -> None:
    await registry.register(web("a"))
    for path in database.parent.glob("registry.db*"):
        path.unlink()
    with pytest.raises(StoreUnavailableError, match="was removed while srvdns was running"):
        await registry.register(web("b"))
    with pytest.raises(StoreUnavailableError, match=r"^error: the database file .* removed"):
        await registry.ping(write=True)
    assert [i.id for i in registry.find_service("web").instances] == ["a"]
    assert not database.exists()


async def test_a_replaced_file_is_never_written_to(registry: Registry, database: Path) -> None:
    await registry.register(web("a"))
    copy = database.with_name("copy.db")
    shutil.copyfile(database, copy)
    os.replace(copy, database)
    with pytest.raises(StoreUnavailableError, match="was replaced while srvdns was running"):
        await registry.register(web("b"))


def test_a_connection_that_could_only_open_the_file_read_only_is_reopened(
    database: Path, registry: Registry
) -> None:
    read_only = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.OperationalError) as refused:
            read_only.execute("PRAGMA user_version = 1")
    finally:
        read_only.close()
    assert needs_reopen(refused.value)
    assert not needs_reopen(sqlite3.OperationalError("no sqlite error code"))
    busy = sqlite3.connect(database, timeout=0, isolation_level=None)
    holder = sqlite3.connect(database, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError) as locked:
            busy.execute("BEGIN IMMEDIATE")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        busy.close()
    assert not needs_reopen(locked.value)  # a lock passes; the connection is fine


async def test_a_probe_stuck_behind_failing_writes_names_their_error(
    registry: Registry, database: Path
) -> None:
    await registry.register(web("a"))
    for path in database.parent.glob("registry.db*"):
        path.unlink()
    with pytest.raises(StoreUnavailableError):
        await registry.register(web("b"))
    release = threading.Event()
    registry._submit(release.wait)  # the worker is busy (a write waiting for a lock)
    try:
        with pytest.raises(StoreUnavailableError, match=r"^error: the database file .* removed"):
            await registry.ping(timeout=0.1, write=True)
    finally:
        release.set()
