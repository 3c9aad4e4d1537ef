"""A throw-away PostgreSQL database per test, on the server SRVDNS_TEST_POSTGRES_URL names.

Tests that need PostgreSQL call ``require_postgres()`` (a clean skip when the variable is
unset) and ``fresh_database()``, which creates an empty database of a unique name next to
the named one and drops it afterwards, so that tests never see each other's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

ENV = "SRVDNS_TEST_POSTGRES_URL"


def require_postgres() -> str:
    """The server URL from the environment; skips the test when it is unset."""
    url = os.environ.get(ENV)
    if not url:
        pytest.skip(f"needs PostgreSQL: set {ENV}=postgresql+psycopg://user@host:port/db")
    return url


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """An empty database on the server of ``server_url``; its URL, dropped at exit."""
    name = f"srvdns_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(make_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
