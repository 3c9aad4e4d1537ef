"""The async face of the registry store that the API, the health loop and the runtime use.

Every write runs as one transaction on a single worker thread (so the event loop never
blocks on the database), and only after it committed is the catalog holder patched and
the call returned.  Reads come from the in-memory catalog, never from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import TypeVar

from srvdns import errors
from srvdns.catalog import Catalog, CatalogHolder
from srvdns.config import StaticServiceConfig
from srvdns.model import Instance, Service, Source, Status
from srvdns.registry import migrate
from srvdns.registry.engine import READ_ONLY, create_engine
from srvdns.registry.repository import Change, Repository, store_errors

T = TypeVar("T")


def static_instances(services: Sequence[StaticServiceConfig], now: float) -> list[Instance]:
    """The instances the config file declares, as the registry stores them."""
    out = []
    for service in services:
        for instance_id, config in zip(service.instance_ids(), service.instances, strict=True):
            out.append(
                Instance(
                    service=service.name,
                    id=instance_id,
                    address=config.address,
                    port=config.port,
                    tags=tuple(config.tags),
                    meta=tuple(sorted(config.meta.items())),
                    weight=config.weight,
                    priority=config.priority,
                    ttl=None,
                    last_heartbeat=now,
                    status=Status.PASSING,
                    source=Source.STATIC,
                    registered_at=now,
                )
            )
    return out


class Registry:
    """Registry store + catalog holder, for one process."""

    holder: CatalogHolder

    def __init__(
        self,
        repository: Repository,
        holder: CatalogHolder,
        *,
        executor: ThreadPoolExecutor,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Use ``Registry.open``; this only wires already-built parts together."""
        self.holder = holder
        self._repository = repository
        self._executor = executor
        self._clock = clock
        self._closed = False

    @classmethod
    def open(
        cls,
        url: str,
        *,
        clock: Callable[[], float] = time.time,
        upgrade: bool = True,
    ) -> Registry:
        """Connect (synchronously, before the loop serves), apply migrations when
        ``upgrade`` (SQLite by default; ``srvdns db upgrade`` otherwise), and load the catalog.

        Without ``upgrade`` a schema that is not at the newest revision is an error.
        Raises StoreUnavailableError when the database cannot be reached.
        """
        repository = Repository(create_engine(url))
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="srvdns-registry")
        try:
            services, index = executor.submit(_start, repository, upgrade).result()
        except BaseException:
            executor.shutdown(wait=True)
            repository.engine.dispose()
            raise
        holder = CatalogHolder(Catalog.build(services, index=index))
        return cls(repository, holder, executor=executor, clock=clock)

    def close(self) -> None:
        """Stop the worker thread (after the writes already queued) and dispose of the engine."""
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=True)
        self._repository.engine.dispose()

    def sync_static(self, services: Sequence[StaticServiceConfig]) -> None:
        """Make the registry's static instances exactly those of the config (synchronous,
        at start-up): upsert each, delete static instances no longer declared.

        An API instance with the id of a declared static instance becomes static (the config
        file wins).  Unchanged static instances keep their health and times.
        """
        desired = static_instances(services, self._clock())
        change = self._call(lambda: self._repository.sync_static(desired))
        if change.services:
            self.holder.patch(change.services, index=change.index)

    async def register(self, instance: Instance) -> Instance:
        """Create or replace ``instance`` (keyed by service + id).

        ``registered_at`` and ``last_heartbeat`` are set to the clock's now, ``status`` to
        PASSING, ``source`` to API.  Raises ConflictError if a static instance has that id.
        Returns the stored instance.
        """
        now = self._clock()
        stored = replace(
            instance,
            service=instance.service.lower(),
            tags=tuple(dict.fromkeys(tag.lower() for tag in instance.tags)),
            meta=tuple(sorted(dict(instance.meta).items())),
            registered_at=now,
            last_heartbeat=now,
            status=Status.PASSING,
            source=Source.API,
        )
        await self._write(lambda: self._repository.upsert_instance(stored))
        return stored

    async def deregister(self, service: str, instance_id: str) -> None:
        """Remove an instance; a service left without instances disappears.

        Raises NotFoundError (unknown service or id) or ConflictError (static instance).
        """
        name = service.lower()
        await self._write(lambda: self._repository.delete_instance(name, instance_id))

    async def heartbeat(self, service: str, instance_id: str) -> Instance:
        """Renew the instance's TTL lease (``last_heartbeat`` = now), persisted before returning.

        Raises NotFoundError, or ConflictError when the instance has no ``ttl``.
        """
        name, now = service.lower(), self._clock()
        change = await self._write(lambda: self._repository.heartbeat(name, instance_id, now))
        if change.instance is None:
            raise AssertionError("a heartbeat returns the renewed instance")
        return change.instance

    def services(self) -> list[Service]:
        """Every service with all its instances, from the current catalog, sorted by name."""
        views = self.holder.current.services
        return [Service(name, views[name].instances) for name in sorted(views)]

    def find_service(self, name: str) -> Service:
        """One service from the current catalog; raises NotFoundError."""
        view = self.holder.current.get_service(name.lower())
        if view is None:
            raise errors.NotFoundError(f"no service {name!r}")
        return Service(view.name, view.instances)

    def now(self) -> float:
        """The registry's clock (wall-clock Unix seconds)."""
        return self._clock()

    # -- internals --------------------------------------------------------------------

    def _submit(self, fn: Callable[[], T]) -> Future[T]:
        try:
            return self._executor.submit(fn)
        except RuntimeError:  # the executor has been shut down
            raise errors.StoreUnavailableError("the registry is closed") from None

    def _call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the worker thread and wait (start-up only: this blocks)."""
        return self._submit(fn).result()

    async def _write(self, fn: Callable[[], Change]) -> Change:
        """Run a write on the worker thread; once it committed, patch the catalog.

        The patch happens on the loop thread even when the awaiting task was cancelled
        meanwhile, so a committed write always reaches the catalog, in commit order.
        """
        loop = asyncio.get_running_loop()
        result: asyncio.Future[Change] = loop.create_future()
        job = self._submit(fn)

        def finished(done: Future[Change]) -> None:  # worker thread
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting
                loop.call_soon_threadsafe(self._finish, done, result)

        job.add_done_callback(finished)
        result.add_done_callback(lambda r: job.cancel() if r.cancelled() else None)
        return await result

    def _finish(self, job: Future[Change], result: asyncio.Future[Change]) -> None:
        """Loop thread: publish a committed change, then hand the outcome to the caller."""
        if job.cancelled():
            return
        exc = job.exception()
        if exc is None:
            change = job.result()
            if change.services:
                self.holder.patch(change.services, index=change.index)
        if result.done():
            return
        if exc is None:
            result.set_result(job.result())
        else:
            result.set_exception(exc)


def _start(repository: Repository, upgrade: bool) -> tuple[list[Service], int]:
    """Worker thread, at open: migrate or check the schema, then load the registry."""
    if upgrade:
        with store_errors("upgrade the schema"), repository.engine.begin() as connection:
            migrate.upgrade_connection(connection)
    else:
        reader = repository.engine.execution_options(**{READ_ONLY: True})
        with store_errors("read the schema revision"), reader.begin() as connection:
            migrate.ensure_current(connection)
    return repository.load()
