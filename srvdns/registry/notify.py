"""PostgreSQL LISTEN/NOTIFY wake-ups for the change follower of each node.

Every committed write on PostgreSQL sends ``NOTIFY srvdns_changes`` (in
``repository.record_changes``, so it is delivered at commit and never for a rollback).
A node runs one ``ChangeListener`` thread with a connection of its own that LISTENs and,
for each notification, wakes the node's follower at once instead of at the end of its
poll interval.  Polling stays the source of truth: a notification lost while the
listener reconnects only delays a change to the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CHANNEL = "srvdns_changes"
"""The notification channel every write notifies and every node listens on."""

RECONNECT_DELAY = 1.0
"""Seconds between attempts to reconnect a listener whose connection failed."""


def is_postgres(url: str) -> bool:
    """Whether the SQLAlchemy URL names a PostgreSQL database."""
    return make_url(url).get_backend_name() == "postgresql"


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL ``postgresql+psycopg://...`` as a libpq connection URI."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class ChangeListener:
    """A thread that LISTENs on ``CHANNEL`` and calls ``wake`` on ``loop`` for each
    notification (several arriving together wake once)."""

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop, wake: Callable[[], None]) -> None:
        self._conninfo = libpq_url(url)
        self._loop = loop
        self._wake = wake
        self._stopping = threading.Event()
        self._connection: Any = None
        self._thread = threading.Thread(target=self._run, name="srvdns-listen", daemon=True)
        self.notifications = 0
        """How many notifications arrived (for tests)."""
        self.listening = threading.Event()
        """Set once the LISTEN is in place."""

    def start(self) -> None:
        """Start listening in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and close the connection (waits up to a second for the thread)."""
        self._stopping.set()
        self._thread.join(timeout=1.5)

    def _run(self) -> None:
        import psycopg

        failing = False
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    if failing:
                        log.info("listening for registry changes again")
                        failing = False
                    while not self._stopping.is_set():
                        woke = False
                        for _ in conn.notifies(timeout=0.5):
                            self.notifications += 1
                            woke = True
                            break  # one wake-up; the follower reads everything new
                        if woke:
                            with contextlib.suppress(RuntimeError):  # the loop closed
                                self._loop.call_soon_threadsafe(self._wake)
            except psycopg.Error as exc:
                if not failing:
                    log.warning(
                        "cannot listen for registry changes (%s); polling only until it works",
                        exc,
                    )
                    failing = True
                self.listening.clear()
                self._stopping.wait(RECONNECT_DELAY)
