"""The async face of the registry store that the API, the health loop and the runtime use.

Every write runs as one transaction on a single worker thread (so the event loop never
blocks on the database), and only after it committed is the catalog holder patched and
the call returned.  Reads come from the in-memory catalog, never from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import TypeVar

from srvdns import errors
from srvdns.catalog import Catalog, CatalogHolder
from srvdns.config import HealthConfig, StaticServiceConfig
from srvdns.health.definitions import resolve_checks
from srvdns.model import Check, CheckKind, CheckSpec, Instance, Service, Source, Status, worst
from srvdns.registry import migrate
from srvdns.registry.engine import READ_ONLY, create_engine
from srvdns.registry.repository import (
    Change,
    CheckUpdate,
    Repository,
    initial_check,
    store_errors,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

Listener = Callable[[Change], None]
"""Called on the event loop thread with every committed change, after the catalog swap."""


def static_instances(
    services: Sequence[StaticServiceConfig], now: float, health: HealthConfig | None = None
) -> list[Instance]:
    """The instances the config file declares, as the registry stores them."""
    defaults = health or HealthConfig()
    out = []
    for service in services:
        for instance_id, config in zip(service.instance_ids(), service.instances, strict=True):
            specs = resolve_checks(config.checks, config.address, config.port, defaults)
            instance = Instance(
                service=service.name,
                id=instance_id,
                address=config.address,
                port=config.port,
                tags=tuple(config.tags),
                meta=tuple(sorted(config.meta.items())),
                weight=config.weight,
                warning_weight=config.warning_weight,
                priority=config.priority,
                ttl=None,
                last_heartbeat=now,
                status=Status.PASSING,
                source=Source.STATIC,
                registered_at=now,
                checks=tuple(Check(spec=spec, status=spec.initial_status) for spec in specs),
            )
            out.append(with_initial_checks(instance, now))
    return out


def ttl_spec(ttl: float) -> CheckSpec:
    """The ttl check an instance registered with just a ``ttl`` lease gets."""
    return CheckSpec(
        id="ttl",
        kind=CheckKind.TTL,
        interval=ttl,
        timeout=0.0,
        ttl=ttl,
        initial_status=Status.PASSING,
    )


def with_initial_checks(instance: Instance, now: float) -> Instance:
    """``instance`` with each check in its initial state since ``now``.

    The lease follows the ttl check: ``ttl`` is its lease, and a ttl check that starts
    critical starts with a lapsed lease (critical until the first heartbeat).  An instance
    with a ``ttl`` but no ttl check gets one (``ttl_spec``).  ``status`` is the worst of
    the checks' initial statuses.
    """
    specs = [check.spec for check in instance.checks]
    lease = next((spec for spec in specs if spec.kind is CheckKind.TTL), None)
    if lease is None and instance.ttl is not None:
        lease = ttl_spec(instance.ttl)
        specs.append(lease)
    found = tuple(initial_check(spec, now) for spec in sorted(specs, key=lambda spec: spec.id))
    ttl = None if lease is None else lease.ttl
    last_heartbeat = now
    if lease is not None and ttl is not None and lease.initial_status is Status.CRITICAL:
        last_heartbeat = now - ttl
    return replace(
        instance,
        ttl=ttl,
        last_heartbeat=last_heartbeat,
        checks=found,
        status=worst(c.status for c in found),
    )


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
        self._listeners: list[Listener] = []
        self._waiters: set[asyncio.Future[None]] = set()
        self._blocking = True

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

    def sync_static(
        self, services: Sequence[StaticServiceConfig], health: HealthConfig | None = None
    ) -> None:
        """Make the registry's static instances exactly those of the config (synchronous,
        at start-up, before anything listens): upsert each, delete static instances no
        longer declared.  ``health`` gives the defaults of their checks.

        An API instance with the id of a declared static instance becomes static (the config
        file wins).  Unchanged static instances keep their health and times, and so does
        every check whose definition did not change.
        """
        desired = static_instances(services, self._clock(), health)
        change = self._call(lambda: self._repository.sync_static(desired))
        if change.services:
            self.holder.patch(change.services, index=change.index)

    async def ping(self, timeout: float = 2.0) -> None:
        """Reach the database (``SELECT 1`` on the worker thread) within ``timeout`` seconds.

        Raises StoreUnavailableError naming what went wrong.
        """

        def select_one() -> None:
            with self._repository.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")

        try:
            await asyncio.wait_for(asyncio.wrap_future(self._submit(select_one)), timeout)
        except TimeoutError:
            raise errors.StoreUnavailableError(
                f"the database did not answer within {timeout:g}s"
            ) from None
        except errors.StoreUnavailableError:
            raise
        except Exception as exc:
            raise errors.StoreUnavailableError(f"the database is unreachable: {exc}") from exc

    async def resync_static(
        self, services: Sequence[StaticServiceConfig], health: HealthConfig | None = None
    ) -> None:
        """``sync_static`` while serving (a config reload): the same write, published like
        any other, so that the catalog, blocking queries and the health loop follow it."""
        desired = static_instances(services, self._clock(), health)
        await self._write(lambda: self._repository.sync_static(desired))

    async def register(self, instance: Instance, *, exclusive_id: bool = False) -> Instance:
        """Create or replace ``instance`` (keyed by service + id).

        ``registered_at`` and ``last_heartbeat`` are set to the clock's now and ``source``
        to API.  Each check starts in its initial status (see ``with_initial_checks``)
        unless the instance had the same check (same id and definition) already, which
        keeps its state; ``status`` is the worst of the checks (passing without any).
        Raises ConflictError if a static instance has that id, or with ``exclusive_id`` if
        another service has an instance with that id.  Returns the stored instance.
        """
        now = self._clock()
        stored = with_initial_checks(
            replace(
                instance,
                service=instance.service.lower(),
                tags=tuple(dict.fromkeys(tag.lower() for tag in instance.tags)),
                meta=tuple(sorted(dict(instance.meta).items())),
                registered_at=now,
                source=Source.API,
            ),
            now,
        )
        change = await self._write(
            lambda: self._repository.upsert_instance(stored, exclusive_id=exclusive_id)
        )
        if change.instance is None:
            raise AssertionError("a registration returns the stored instance")
        return change.instance

    async def deregister(self, service: str, instance_id: str) -> None:
        """Remove an instance; a service left without instances disappears.

        Raises NotFoundError (unknown service or id) or ConflictError (static instance).
        """
        name = service.lower()
        await self._write(lambda: self._repository.delete_instance(name, instance_id))

    async def heartbeat(
        self,
        service: str,
        instance_id: str,
        *,
        status: Status = Status.PASSING,
        output: str = "",
    ) -> Instance:
        """Renew the instance's TTL lease (``last_heartbeat`` = now), persisted before returning.

        Its ttl check gets ``status`` (passing for a plain heartbeat; the Consul API's warn
        and fail set warning or critical until the next heartbeat or the lease lapses) and
        ``output``.  Raises NotFoundError, or ConflictError when the instance has no ``ttl``.
        """
        name, now = service.lower(), self._clock()
        change = await self._write(
            lambda: self._repository.heartbeat(name, instance_id, now, status=status, output=output)
        )
        if change.instance is None:
            raise AssertionError("a heartbeat returns the renewed instance")
        return change.instance

    async def apply_health(
        self, updates: Sequence[CheckUpdate], removals: Sequence[CheckUpdate] = ()
    ) -> Change:
        """The health loop's one write: new check states, and instances critical too long to
        remove, in one transaction (see ``repository.apply_health``)."""
        if not updates and not removals:
            return Change((), self.holder.current.index, health_only=True)
        return await self._write(lambda: self._repository.apply_health(updates, removals))

    async def save_counters(self, updates: Sequence[CheckUpdate]) -> None:
        """Store check output and counters without a status change (the health loop, at
        shutdown); the catalog keeps its copy until the next start."""
        if updates:
            await self._write(lambda: self._repository.save_counters(updates))

    async def bump_index(self) -> int:
        """Move the index (the SOA serial) with nothing else changed, and return it: for
        a zone whose contents changed outside the registry (a reload changed its TTLs), so
        that secondaries holding the old serial transfer the zone again."""
        change = await self._write(self._repository.bump_index)
        if change.index > self.holder.current.index:
            self.holder.patch((), index=change.index)
            self._wake_waiters()
        return change.index

    async def wait_for_index(self, index: int, timeout: float) -> int:
        """Wait until the registry's index is above ``index``, or ``timeout`` seconds passed;
        return the index then.

        The long poll behind blocking queries (``?index=N&wait=D``): a committed write that
        bumps the index wakes every waiter at once, with no polling.  After
        ``stop_blocking`` it returns at once.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._blocking and self.holder.current.index <= index:
            woken: asyncio.Future[None] = loop.create_future()
            self._waiters.add(woken)
            try:
                async with asyncio.timeout_at(deadline):
                    await woken
            except TimeoutError:
                break
            finally:
                self._waiters.discard(woken)
        return self.holder.current.index

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` with every change committed from now on (on the loop thread)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener``."""
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

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
            before = self.holder.current.index
            if change.services:
                self.holder.patch(change.services, index=change.index)
            if self.holder.current.index > before:
                self._wake_waiters()
            for listener in list(self._listeners):
                try:
                    listener(change)
                except Exception:  # a listener's bug must not lose a committed write
                    log.exception("a registry listener failed")
        if result.done():
            return
        if exc is None:
            result.set_result(job.result())
        else:
            result.set_exception(exc)

    def stop_blocking(self) -> None:
        """Loop thread, at shutdown: end every ``wait_for_index`` now and any later at once,
        so that pending blocking queries answer instead of holding the API server open."""
        self._blocking = False
        self._wake_waiters()

    def _wake_waiters(self) -> None:
        """Loop thread: the index moved; every ``wait_for_index`` looks again."""
        waiters, self._waiters = self._waiters, set()
        for woken in waiters:
            if not woken.done():
                woken.set_result(None)


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
