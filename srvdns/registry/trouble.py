"""Database trouble: whether the registry can write now, and whether its file is still there.

Reads are not enough to tell: a locked, read-only or full SQLite database still answers
``SELECT 1``.  ``probe`` commits an empty write instead (it rewrites ``PRAGMA
user_version`` with its own value: the header page goes through the WAL like any
commit, and no table or trigger is touched), with a short busy timeout so that a lock
held elsewhere shows within a second.

A SQLite file deleted or replaced under a running srvdns is worse than an error: its open
connections would go on committing into a file nobody will ever read again, and every
acknowledged write would be lost at the next start.  ``watch`` remembers which file the
engine opened; ``check_file`` (called before every write) refuses to write when the path
no longer names it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import weakref
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from srvdns.errors import StoreUnavailableError

PROBE_BUSY_TIMEOUT_MS = 1000
"""How long the probe waits for a write lock held elsewhere."""

_files: weakref.WeakKeyDictionary[Engine, DatabaseFile] = weakref.WeakKeyDictionary()


class DatabaseFileError(StoreUnavailableError):
    """The SQLite file srvdns opened is no longer at its path."""


class DatabaseFile:
    """The SQLite file an engine opened: its path and its identity (device, inode)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.identity: tuple[int, int] | None = None

    def remember(self) -> None:
        """Note the identity of the file at ``path`` (the first connection, once)."""
        if self.identity is None:
            with contextlib.suppress(OSError):  # not created yet: the next connection
                found = os.stat(self.path)
                self.identity = (found.st_dev, found.st_ino)

    def check(self) -> None:
        """Raise DatabaseFileError when ``path`` no longer names the file opened."""
        if self.identity is None:
            return
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            raise DatabaseFileError(
                f"the database file {self.path} was removed while srvdns was running "
                "(restore it and restart srvdns)"
            ) from None
        except OSError as exc:
            raise DatabaseFileError(f"the database file {self.path}: {exc}") from exc
        if (found.st_dev, found.st_ino) != self.identity:
            raise DatabaseFileError(
                f"the database file {self.path} was replaced while srvdns was running "
                "(restart srvdns to use the new file)"
            )


def watch(engine: Engine, path: Path) -> DatabaseFile:
    """Track the file of a SQLite ``engine`` (``create_engine`` calls this)."""
    tracked = _files[engine] = DatabaseFile(path)
    return tracked


def check_file(engine: Engine) -> None:
    """``DatabaseFile.check`` for ``engine``'s file; nothing for other databases."""
    tracked = _files.get(engine)
    if tracked is not None:
        tracked.check()


def probe(engine: Engine) -> None:
    """Commit an empty write to a SQLite ``engine`` (``SELECT 1`` on other databases).

    Raises StoreUnavailableError whose message is ``error: `` and what the database said
    (``database is locked``, ``attempt to write a readonly database``, ``database or disk
    is full``, ...).  A connection that ``needs_reopen`` is discarded.
    """
    tracked = _files.get(engine)
    try:
        with engine.connect() as connection:
            if tracked is None:
                connection.exec_driver_sql("SELECT 1")
                connection.rollback()
                return
            try:
                tracked.check()
            except StoreUnavailableError as exc:
                raise StoreUnavailableError(f"error: {exc}") from exc
            raw = connection.connection.dbapi_connection
            assert isinstance(raw, sqlite3.Connection)
            try:
                _empty_commit(raw)
            except sqlite3.Error as exc:
                if needs_reopen(exc):
                    connection.invalidate()
                raise StoreUnavailableError(f"error: {exc}") from exc
    except sa.exc.SQLAlchemyError as exc:
        raise StoreUnavailableError(f"error: {getattr(exc, 'orig', None) or exc}") from exc


def _empty_commit(raw: sqlite3.Connection) -> None:
    from srvdns.registry.engine import BUSY_TIMEOUT_MS

    raw.execute(f"PRAGMA busy_timeout = {PROBE_BUSY_TIMEOUT_MS}")
    try:
        raw.execute("BEGIN IMMEDIATE")
        try:
            (version,) = raw.execute("PRAGMA user_version").fetchone()
            raw.execute(f"PRAGMA user_version = {int(version)}")
            raw.execute("COMMIT")
        finally:
            if raw.in_transaction:
                raw.execute("ROLLBACK")
    finally:
        raw.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


def needs_reopen(exc: BaseException) -> bool:
    """Whether ``exc`` leaves a SQLite connection unfit for the next write: an I/O error
    (SQLITE_IOERR), or a connection that could only open the file read-only, or whose file
    moved (SQLITE_READONLY and its extended codes).  A new connection starts from the file
    as it is then, read-write once it is writable again."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY)
