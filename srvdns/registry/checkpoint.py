"""WAL checkpoints of a SQLite registry on their own thread, off the write path.

SQLite copies the write-ahead log back into the database file (a checkpoint) inside the
commit that crosses ``wal_autocheckpoint`` pages, on the committing connection: with one
writer thread, every few hundred registrations one of them (and every write queued
behind it) waits for the copy and its fsyncs.  ``WalCheckpointer`` runs a PASSIVE
checkpoint from a connection of its own every ``interval`` seconds instead: a passive
checkpoint never waits for the writer and the writer never waits for it, so the log
stays short without any write paying for it.  The writer's own automatic checkpoint
stays as a backstop at ``BACKSTOP_PAGES`` (should this thread fall behind or stop, the
log is still bounded).  Durability is unchanged: what a commit makes durable depends on
``synchronous``, not on who checkpoints.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from srvdns.registry.engine import BUSY_TIMEOUT_MS, is_memory_sqlite, is_sqlite

log = logging.getLogger(__name__)

INTERVAL = 1.0
"""Seconds between two checkpoints.  Each one that copies anything costs two fsyncs
(the log, then the file), whatever it copies: under a steady trickle of writes, four a
second cost each write more than one does, and the log stays short either way (a
second of writes).  One that finds nothing committed since the last is not run."""
BACKSTOP_PAGES = 16_000
"""The writer's ``wal_autocheckpoint`` (SQLite's default is 1,000 pages, 4 MB): reached
only if the checkpoint thread does not keep up; about 64 MB of log at 4 KiB pages."""


class WalCheckpointer:
    """Checkpoints the WAL of one SQLite database file every ``interval`` seconds."""

    def __init__(self, path: Path, interval: float = INTERVAL) -> None:
        self.path = path
        self.interval = interval
        self.checkpoints = 0
        """Checkpoints run (for tests and the curious)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._copied: int | None = None
        """``PRAGMA data_version`` when the last checkpoint copied the whole log."""

    @classmethod
    def attach(cls, engine: Engine, interval: float = INTERVAL) -> WalCheckpointer | None:
        """A checkpointer for the file of a SQLite ``engine`` (None for other databases
        and in-memory SQLite), with the writer's automatic checkpoint moved to the
        backstop on every connection the engine opens from now on.  Call ``start`` once
        the file exists."""
        if not is_sqlite(engine.url) or is_memory_sqlite(engine.url):
            return None
        sa.event.listen(engine, "connect", _raise_autocheckpoint)
        return cls(Path(str(make_url(engine.url).database)).absolute(), interval)

    def start(self) -> None:
        """Run checkpoints on a daemon thread until ``stop``."""
        self._thread = threading.Thread(target=self._run, name="srvdns-wal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the thread (after a checkpoint in progress) and close its connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def checkpoint(self) -> None:
        """One PASSIVE checkpoint now, unless nothing was committed since the last one
        copied the whole log; a database that cannot be opened or is busy is left for
        the next one (the writer's backstop bounds the log meanwhile)."""
        try:
            if self._conn is None:
                # mode=rw: never create a file that is not (or no longer) there
                self._conn = sqlite3.connect(
                    f"file:{self.path}?mode=rw", uri=True, check_same_thread=False
                )
                self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                self._copied = None
            # changes whenever another connection commits: a cheap look at the log
            (version,) = self._conn.execute("PRAGMA data_version").fetchone()
            if version == self._copied:
                return
            (_, logged, copied) = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.checkpoints += 1
            # a reader still on older pages can hold frames back: try them again
            self._copied = version if logged == copied else None
        except sqlite3.Error as exc:
            log.debug("WAL checkpoint of %s failed: %s", self.path, exc)
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.checkpoint()


def _raise_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
    finally:
        cursor.close()
