"""The change follower: keeps a process's catalog current from the registry database alone.

A process that does not write (a ``--workers`` DNS worker, another srvdns node sharing
a PostgreSQL registry) cannot learn of changes from its own commits.  Every write bumps
``registry_state.change_seq`` and stamps the names of the services it changed with it
in ``service_changes`` (``repository.record_changes``, deletions included), so the
follower polls one row every ``interval`` and, when the counter moved, reloads just
the services stamped since the last counter it saw, and patches the catalog with them
exactly as a local write would (``CatalogHolder.patch``).  Heartbeats move the counter
too (not the index), so leases and TTL caps come out the same as in the writer.

Only portable SQL through ``repository``: the same code follows SQLite and PostgreSQL.
Under READ COMMITTED a poll may read a service newer than the counter it read first;
that service is simply read again at the next poll, so nothing is ever missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

from sqlalchemy.engine import Connection

from srvdns.catalog import Catalog, CatalogHolder
from srvdns.errors import StoreUnavailableError
from srvdns.model import Service
from srvdns.registry import migrate, repository
from srvdns.registry.engine import READ_ONLY, create_engine
from srvdns.registry.repository import Repository, store_errors

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 0.15
"""Seconds between polls: a change reaches a follower's answers within about this long."""

ERROR_LOG_INTERVAL = 30.0
"""While the database stays unreachable, a warning at most this often."""


@dataclass(frozen=True, slots=True)
class Followed:
    """What one poll found.

    ``services`` are the services changed since the previous poll as they are stored
    now; one without instances has been deleted.  With ``full`` they are the whole
    registry instead (the first poll, or a counter that went backwards: a database
    restored or replaced), and every service not among them is gone (``publish`` adds
    an empty service for each one the holder had).
    """

    change_seq: int
    index: int
    services: tuple[Service, ...]
    full: bool = False


def read_changes(conn: Connection, since: int | None) -> Followed | None:
    """The changes after ``change_seq`` ``since`` (None: everything), or None when there
    are none."""
    seq, index = repository.read_change_seq(conn)
    if since is None or seq < since:
        return Followed(seq, index, tuple(repository.load_services(conn)), full=True)
    if seq == since:
        return None
    names = repository.changed_since(conn, since)
    return Followed(seq, index, repository.current_services(conn, names))


def apply(holder: CatalogHolder, followed: Followed) -> Catalog:
    """Publish ``followed`` in ``holder`` (on the thread that owns it); returns the snapshot."""
    if followed.full:
        current = holder.current
        catalog = Catalog.build(
            followed.services, index=followed.index, generation=current.generation + 1
        )
        holder.swap(catalog)
        return catalog
    return holder.patch(followed.services, index=followed.index)


Listener = Callable[[Followed], None]
"""Called on the event loop thread after each poll that changed the catalog."""

Prepare = Callable[[Followed, Catalog], Followed]
"""Adjusts what a poll read against the snapshot it replaces, before it is published."""


class ChangeFollower:
    """Polls the registry for changes and patches a catalog holder with them.

    ``load()`` (blocking) fills the holder before anything answers from it; ``start()``
    then polls every ``interval`` seconds on the event loop, reading on ``executor`` (a
    registry's own single worker thread when it writes too, so its commits and the
    follower's reads reach the holder in the order they happened).  A database error is
    logged and the last snapshot keeps serving; the next poll tries again.
    """

    def __init__(
        self,
        repo: Repository,
        holder: CatalogHolder,
        *,
        interval: float = DEFAULT_INTERVAL,
        executor: Executor | None = None,
        on_change: Listener | None = None,
        prepare: Prepare | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"follow interval must be positive, not {interval!r}")
        self.holder = holder
        self.interval = interval
        self.change_seq: int | None = None
        """The counter the holder reflects (None: nothing loaded yet)."""
        self.polls = 0
        self._repository = repo
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="srvdns-follower"
        )
        self._on_change = on_change
        self._prepare = prepare
        self._task: asyncio.Task[None] | None = None
        self._woken = asyncio.Event()
        self._last_error_log = -ERROR_LOG_INTERVAL
        self._failing = False
        self._owns_engine = False

    @classmethod
    def open(cls, url: str, *, interval: float = DEFAULT_INTERVAL) -> ChangeFollower:
        """A follower of the database at ``url`` with a holder of its own, loaded (blocking).

        The schema must be at the newest revision (the writer migrates it); raises
        StoreUnavailableError otherwise or when the database cannot be reached.
        """
        repo = Repository(create_engine(url))
        follower = cls(repo, CatalogHolder(), interval=interval)
        follower._owns_engine = True
        try:
            reader = repo.engine.execution_options(**{READ_ONLY: True})
            with store_errors("read the schema revision"), reader.begin() as conn:
                migrate.ensure_current(conn)
            follower.load()
        except BaseException:
            follower.close()
            raise
        return follower

    def read(self) -> Followed | None:
        """One poll's read of the database (blocking; any thread); raises
        StoreUnavailableError."""
        reader = self._repository.engine.execution_options(**{READ_ONLY: True})
        with store_errors("read the registry's changes"), reader.begin() as conn:
            return read_changes(conn, self.change_seq)

    def publish(self, followed: Followed | None) -> None:
        """Patch the holder with a poll's result (on the thread that owns the holder)."""
        self.polls += 1
        if followed is None:
            return
        if (
            self.change_seq is not None
            and not followed.full
            and followed.change_seq <= (self.change_seq)
        ):
            return  # an older read overtaken by a newer one: nothing new in it
        if followed.full:  # name what disappeared, so listeners hear of deletions too
            kept = {service.name for service in followed.services}
            gone = [Service(name, ()) for name in self.holder.current.services if name not in kept]
            followed = replace(followed, services=(*followed.services, *gone))
        if self._prepare is not None:
            followed = self._prepare(followed, self.holder.current)
        apply(self.holder, followed)
        self.change_seq = followed.change_seq
        if self._on_change is not None:
            try:
                self._on_change(followed)
            except Exception:  # a listener's bug must not stop following
                log.exception("a change follower listener failed")

    def load(self) -> None:
        """Read and publish synchronously: before serving, and in tests."""
        self.publish(self._executor.submit(self.read).result())

    def start(self) -> None:
        """Poll from now on, on the running loop, until ``stop``."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="follower")

    async def stop(self) -> None:
        """Stop polling; a poll in progress is abandoned.  The holder keeps its snapshot."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def close(self) -> None:
        """Release the follower's own reading thread (not a borrowed executor), and the
        engine when ``open`` made it."""
        if self._own_executor:
            self._executor.shutdown(wait=True)
        if self._owns_engine:
            self._repository.engine.dispose()

    async def poll(self) -> None:
        """One poll: read on the executor, publish on the loop as soon as the read ends
        (in a callback, so that a write queued behind the read on the same thread is
        published after it)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def finished(job: Future[Followed | None]) -> None:  # executor thread
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits
                loop.call_soon_threadsafe(deliver, job)

        def deliver(job: Future[Followed | None]) -> None:  # loop thread
            exc = job.exception()
            if exc is None:
                self.publish(job.result())
            if not done.done():
                if exc is None:
                    done.set_result(None)
                else:
                    done.set_exception(exc)

        self._executor.submit(self.read).add_done_callback(finished)
        await done

    def wake(self) -> None:
        """Poll now rather than at the end of the interval (on the loop thread): a hint
        from a writer that it committed something; polling stays the source of truth."""
        self._woken.set()

    async def _run(self) -> None:
        while True:
            self._woken.clear()  # a wake() during the poll below polls once more
            try:
                await self.poll()
            except StoreUnavailableError as exc:
                self._log_failure(exc)
            else:
                if self._failing:
                    log.info("change follower: the registry database answers again")
                    self._failing = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), self.interval)

    def _log_failure(self, exc: StoreUnavailableError) -> None:
        self._failing = True
        now = time.monotonic()
        if now - self._last_error_log >= ERROR_LOG_INTERVAL:
            self._last_error_log = now
            log.warning("change follower: %s; still answering from the last snapshot", exc)
