"""srvdns.registry.checkpoint: WAL checkpoints from their own thread, never from a write."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from srvdns.registry import migrate
from srvdns.registry.checkpoint import BACKSTOP_PAGES, WalCheckpointer
from srvdns.registry.engine import create_engine
from srvdns.registry.registry import Registry
from srvdns.registry.tables import services


def _rows_in_the_main_file(db: Path, tmp_path: Path) -> int:
    """Service rows in the database file alone, as if the WAL were not there."""
    copy = tmp_path / "copy.db"
    shutil.copyfile(db, copy)
    with sqlite3.connect(copy) as conn:
        return int(conn.execute("SELECT count(*) FROM services").fetchone()[0])


@pytest.fixture
def attached(tmp_path: Path) -> Iterator[tuple[Path, Engine, WalCheckpointer]]:
    """A migrated registry file, its engine and the checkpointer attached to it."""
    db = tmp_path / "registry.db"
    url = f"sqlite:///{db}"
    migrate.upgrade(url)
    engine = create_engine(url)
    checkpointer = WalCheckpointer.attach(engine)
    assert checkpointer is not None
    try:
        yield db, engine, checkpointer
    finally:
        checkpointer.stop()
        engine.dispose()


def test_writes_reach_the_database_file_through_the_checkpointer_only(
    attached: tuple[Path, Engine, WalCheckpointer], tmp_path: Path
) -> None:
    db, engine, checkpointer = attached
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == BACKSTOP_PAGES
    for i in range(50):
        with engine.begin() as conn:
            conn.execute(services.insert().values(name=f"svc-{i}"))
    assert _rows_in_the_main_file(db, tmp_path) == 0  # all still in the WAL
    checkpointer.checkpoint()
    assert checkpointer.checkpoints == 1
    assert _rows_in_the_main_file(db, tmp_path) == 50


def test_a_missing_file_is_not_created(tmp_path: Path) -> None:
    checkpointer = WalCheckpointer(tmp_path / "gone.db")
    checkpointer.checkpoint()
    assert checkpointer.checkpoints == 0
    assert list(tmp_path.iterdir()) == []


def test_only_sqlite_files_get_one() -> None:
    engine = sa.create_engine("sqlite://")
    assert WalCheckpointer.attach(engine) is None


def test_the_registry_runs_one_while_open(tmp_path: Path) -> None:
    registry = Registry.open(f"sqlite:///{tmp_path / 'registry.db'}")
    checkpointer = registry._checkpointer
    assert checkpointer is not None
    assert checkpointer._thread is not None
    assert checkpointer._thread.is_alive()
    registry.close()
    assert not checkpointer._thread.is_alive()


def test_a_checkpoint_with_nothing_committed_since_the_last_is_skipped(
    attached: tuple[Path, Engine, WalCheckpointer], tmp_path: Path
) -> None:
    db, engine, checkpointer = attached
    with engine.begin() as conn:
        conn.execute(services.insert().values(name="a"))
    checkpointer.checkpoint()
    checkpointer.checkpoint()  # nothing new: not run
    assert checkpointer.checkpoints == 1
    with engine.begin() as conn:
        conn.execute(services.insert().values(name="b"))
    checkpointer.checkpoint()
    assert checkpointer.checkpoints == 2
    assert _rows_in_the_main_file(db, tmp_path) == 2
