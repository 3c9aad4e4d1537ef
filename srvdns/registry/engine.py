"""The registry's SQLAlchemy engine: SQLite tuned for one writer and crash safety, or any URL.

SQLite gets WAL journaling (readers never block the writer), a 5 s busy timeout,
enforced foreign keys and the ``synchronous`` level of the chosen durability: NORMAL for
"process" (a committed transaction survives a crash of the process, and the WAL is
fsynced at checkpoints) or FULL for "power" (the WAL is fsynced at every commit, so a
committed transaction also survives a power loss or an OS crash).

SQLAlchemy, not the ``sqlite3`` module, emits BEGIN: writes start with ``BEGIN
IMMEDIATE`` so they take the write lock up front and wait for it (busy timeout) instead
of failing half-way; reads that ask for ``READ_ONLY`` start a plain deferred ``BEGIN``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, ExceptionContext, make_url
from sqlalchemy.pool import StaticPool

from srvdns.registry import driver, trouble

BUSY_TIMEOUT_MS = 5000
SYNCHRONOUS = {"process": "NORMAL", "power": "FULL"}
"""SQLite's ``synchronous`` level for each ``[server] durability`` setting."""
READ_ONLY = "srvdns_read_only"
"""Execution option: ``engine.execution_options(**{READ_ONLY: True})`` for read transactions."""


def is_sqlite(url: str | URL) -> bool:
    """Whether the URL names a SQLite database (any driver)."""
    return make_url(url).get_backend_name() == "sqlite"


def is_memory_sqlite(url: str | URL) -> bool:
    """Whether the URL names a private in-memory SQLite database."""
    parsed = make_url(url)
    return is_sqlite(parsed) and parsed.database in (None, "", ":memory:")


def create_engine(url: str | URL, durability: str = "process") -> Engine:
    """An engine for the registry at ``url``, with the SQLite settings above when it is SQLite.

    ``durability`` ("process" or "power", see ``SYNCHRONOUS``) only matters for SQLite;
    other databases keep their own settings.

    A private in-memory SQLite database (``sqlite://``) uses one shared connection so that
    every thread sees the same database (tests only).
    """
    parsed = make_url(url)
    kwargs: dict[str, Any] = {}
    if is_memory_sqlite(parsed):
        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    elif not is_sqlite(parsed):
        kwargs = {"pool_pre_ping": True}
    engine = sa.create_engine(parsed, **kwargs)
    if is_sqlite(parsed):
        synchronous = SYNCHRONOUS.get(durability)
        if synchronous is None:
            raise ValueError(f"durability must be one of {sorted(SYNCHRONOUS)}, not {durability!r}")

        def connect(dbapi_connection: Any, record: Any) -> None:
            _sqlite_connect(dbapi_connection, record, synchronous)

        sa.event.listen(engine, "connect", connect)
        if not is_memory_sqlite(parsed):
            database = trouble.watch(engine, Path(str(parsed.database)).absolute())
            sa.event.listen(engine, "connect", lambda *_: database.remember())
        sa.event.listen(engine, "begin", _sqlite_begin)
        sa.event.listen(engine, "handle_error", _discard_after_io_error)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any, synchronous: str = "NORMAL") -> None:
    # Take BEGIN away from the sqlite3 module (its legacy mode skips it before SELECT
    # and DDL); _sqlite_begin emits it instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    if getattr(connection.connection.driver_connection, "in_transaction", False):
        return  # joins the transaction begun on the driver (``driver.transaction``)
    if connection.get_execution_options().get(READ_ONLY):
        connection.exec_driver_sql("BEGIN")
    else:
        trouble.check_file(connection.engine)  # never write into a removed file
        driver.execute(connection, "BEGIN IMMEDIATE")  # on every write: the short way


def _discard_after_io_error(context: ExceptionContext) -> None:
    """A connection that hit an I/O error (a file made immutable under it, a failing
    disk) or that could open the file only read-only is dropped from the pool, so that
    the next one opens the file afresh (see ``trouble.needs_reopen``)."""
    if trouble.needs_reopen(context.original_exception):
        context.is_disconnect = True
