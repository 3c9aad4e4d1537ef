"""Fixtures of the registry tests: a fresh database per test and a clock the test moves.

Every database test runs on a SQLite file; set SRVDNS_TEST_POSTGRES_URL to run the
same tests on PostgreSQL too (the database is emptied before each test).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from srvdns.registry import migrate
from srvdns.registry.engine import create_engine
from srvdns.registry.registry import Registry
from srvdns.registry.repository import Repository
from srvdns.registry.tables import metadata

POSTGRES_URL = os.environ.get("SRVDNS_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])

T0 = 1_700_000_000.0


class Clock:
    """A wall clock that only moves when told to."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _empty_postgres(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            metadata.drop_all(conn)
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database (no schema yet)."""
    if request.param == "postgresql":
        assert POSTGRES_URL is not None
        _empty_postgres(POSTGRES_URL)
        return POSTGRES_URL
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A URL of an empty SQLite file."""
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture
def repo(url: str) -> Iterator[Repository]:
    """A repository over a migrated, empty database."""
    migrate.upgrade(url)
    engine = create_engine(url)
    yield Repository(engine)
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(url: str, clock: Clock) -> Iterator[Registry]:
    """A migrated, empty registry."""
    opened = Registry.open(url, clock=clock)
    yield opened
    opened.close()
