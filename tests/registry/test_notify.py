"""LISTEN/NOTIFY wake-ups (``registry.notify``): a committed write on PostgreSQL wakes
every node's listener; a rolled-back one does not.  The URL helpers need no server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from pgdb import fresh_database, require_postgres

from srvdns.registry import migrate, repository
from srvdns.registry.engine import create_engine
from srvdns.registry.notify import ChangeListener, is_postgres, libpq_url


def test_urls() -> None:
    assert is_postgres("postgresql+psycopg://u:p@db:5432/reg")
    assert not is_postgres("sqlite:///registry.db")
    assert (
        libpq_url("postgresql+psycopg://u:p%40ss@db:5432/reg")
        == "postgresql://u:p%40ss@db:5432/reg"
    )


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database(require_postgres()) as url:
        migrate.upgrade(url)
        yield url


async def test_a_commit_wakes_the_listener_and_a_rollback_does_not(database: str) -> None:
    woken = asyncio.Event()
    listener = ChangeListener(database, asyncio.get_running_loop(), woken.set)
    listener.start()
    engine = create_engine(database)
    try:
        assert await asyncio.to_thread(listener.listening.wait, 10)
        with engine.connect() as conn:
            repository.record_changes(conn, ["web"])
            conn.rollback()
        await asyncio.sleep(0.3)
        assert not woken.is_set()
        with engine.begin() as conn:
            repository.record_changes(conn, ["web"])
        await asyncio.wait_for(woken.wait(), 5)
        assert listener.notifications == 1
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT change_seq FROM registry_state")).scalar() == 1
    finally:
        engine.dispose()
        await asyncio.to_thread(listener.stop)
