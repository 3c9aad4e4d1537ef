"""The async face of the registry store that the API, the health loop and the runtime use.

Every write runs on a single worker thread (so the event loop never blocks on the
database), and only after it committed is the catalog holder patched and the call
returned.  Writes that queue up while one transaction runs are committed together in the
next one (group commit, a savepoint each), so concurrent writers share a commit.
Reads come from the in-memory catalog, never from the database.

A heartbeat that only renews a running lease (see ``heartbeat``) is acknowledged from
memory and persisted with the next transaction, at the latest ``heartbeat_flush``
seconds later (``srvdns.registry.renewals``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import replace
from typing import Any, TypeVar

import pydantic_core

from srvdns import errors
from srvdns.catalog import Catalog, CatalogHolder
from srvdns.config import HealthConfig, StaticServiceConfig
from srvdns.health.definitions import resolve_checks
from srvdns.model import Check, CheckKind, CheckSpec, Instance, Service, Source, Status, worst
from srvdns.registry import migrate, trouble
from srvdns.registry import renewals as renew
from srvdns.registry.checkpoint import WalCheckpointer
from srvdns.registry.engine import READ_ONLY, create_engine
from srvdns.registry.follower import DEFAULT_INTERVAL as DEFAULT_FOLLOW_INTERVAL
from srvdns.registry.follower import ChangeFollower, Followed
from srvdns.registry.handback import Handback
from srvdns.registry.renewals import RenewalBuffer
from srvdns.registry.repository import (
    Change,
    CheckUpdate,
    LeaseRenewal,
    Repository,
    initial_check,
    store_errors,
)
from srvdns.registry.stats import RegistryStats
from srvdns.registry.worker import WorkerThread

T = TypeVar("T")
log = logging.getLogger(__name__)

Listener = Callable[[Change], None]
"""Called on the event loop thread with every committed change, after the catalog swap."""

MAX_BATCH = 256
"""At most this many queued writes share one transaction."""

DEFAULT_HEARTBEAT_FLUSH = 1.0
"""Seconds a heartbeat acknowledged from memory may wait before it is persisted."""


class _Write:
    """A write waiting for the worker thread, and where its outcome goes."""

    __slots__ = ("fn", "loop", "operation", "result", "started")

    def __init__(
        self,
        fn: Callable[[], Change],
        loop: asyncio.AbstractEventLoop,
        result: asyncio.Future[Change],
        operation: str = "write",
    ) -> None:
        self.fn = fn
        self.loop = loop
        self.result = result
        self.operation = operation
        """What the write does, for the write latency and error metrics."""
        self.started = time.perf_counter()

    @property
    def cancelled(self) -> bool:
        """Whether the caller gave up on the write (read on the worker thread: a
        future's state is one field, and a cancellation is final)."""
        return self.result.cancelled()


def static_instances(
    services: Sequence[StaticServiceConfig], now: float, health: HealthConfig | None = None
) -> list[Instance]:
    """The instances the config file declares, as the registry stores them."""
    defaults = health or HealthConfig()
    out = []
    for service in services:
        for instance_id, config in zip(service.instance_ids(), service.instances, strict=True):
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
                last_heartbeat=now,
                source=Source.STATIC,
                registered_at=now,
            )
            if config.checks:  # else, the common case at scale, one construction is all
                specs = resolve_checks(config.checks, config.address, config.port, defaults)
                checks = tuple(Check(spec=spec, status=spec.initial_status) for spec in specs)
                instance = with_initial_checks(replace(instance, checks=checks), now)
            out.append(instance)
    return out


STATIC_FORMAT = "1"
"""Part of every ``static_digest``: change it when ``static_instances`` derives instances
differently from the same config, so that the next start syncs."""


def static_digest(
    services: Sequence[StaticServiceConfig], health: HealthConfig | None = None
) -> str:
    """A digest of everything ``static_instances`` builds the static set from (not the
    time): equal digests, equal static sets.  Serialised by pydantic's core, ~0.05 s for
    100,000 instances."""
    digest = hashlib.sha256(f"srvdns static set {STATIC_FORMAT}\n".encode())
    digest.update(pydantic_core.to_json(list(services)))
    digest.update(pydantic_core.to_json(health or HealthConfig()))
    return digest.hexdigest()


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


def with_initial_checks(instance: Instance, now: float, **changes: Any) -> Instance:
    """``instance`` with each check in its initial state since ``now`` (and ``changes``
    to its other fields made in the same step).

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
        **changes,
        ttl=ttl,
        last_heartbeat=last_heartbeat,
        checks=found,
        status=worst(c.status for c in found),
    )


def _as_registered(
    instance: Instance, now: float, tags: tuple[str, ...], meta: tuple[tuple[str, str], ...]
) -> Instance:
    """``instance`` as ``Registry.register`` stores it: ``with_initial_checks`` at ``now``
    with its service lower-cased, ``tags`` and ``meta``, registered at ``now`` from the
    API.  An instance without checks and lease (most registrations) is built in one step,
    field by field, which costs it less than ``with_initial_checks``'s copy."""
    if instance.checks or instance.ttl is not None:
        return with_initial_checks(
            instance,
            now,
            service=instance.service.lower(),
            tags=tags,
            meta=meta,
            registered_at=now,
            source=Source.API,
        )
    return Instance(
        service=instance.service.lower(),
        id=instance.id,
        address=instance.address,
        port=instance.port,
        tags=tags,
        meta=meta,
        weight=instance.weight,
        priority=instance.priority,
        ttl=None,
        last_heartbeat=now,
        status=Status.PASSING,
        source=Source.API,
        registered_at=now,
        target=instance.target,
        warning_weight=instance.warning_weight,
        checks=(),
    )


class Registry:
    """Registry store + catalog holder, for one process."""

    holder: CatalogHolder

    def __init__(
        self,
        repository: Repository,
        holder: CatalogHolder,
        *,
        executor: WorkerThread,
        clock: Callable[[], float] = time.time,
        heartbeat_flush: float = DEFAULT_HEARTBEAT_FLUSH,
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
        self.stats = RegistryStats()
        """Write latency and errors, snapshot times (see ``registry.metrics``)."""
        self._heartbeat_flush = heartbeat_flush
        self._lock = threading.Lock()
        self._queue: list[_Write] = []
        self._draining = False
        self._flush_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._renewals = RenewalBuffer()
        self._flush_timer: asyncio.TimerHandle | None = None
        self._staged: dict[tuple[str, str], tuple[Instance, Instance]] = {}
        """(service, id) -> (the catalog's instance, renewed) for this loop iteration."""
        self._staged_done: asyncio.Future[None] | None = None
        self._trouble: str | None = None
        """What the last write that the database refused said; None after a success."""
        self._checkpointer: WalCheckpointer | None = None
        self._handback: Handback | None = None
        """How the worker thread hands committed batches to the loop of the writes
        (``handback``); None: through ``call_soon_threadsafe``."""
        self._handbacks: list[Handback] = []
        """Every hand-back made, released at ``close``."""
        self._threadsafe_only = False
        """Make no hand-back for a new loop: a change follower reads on the worker thread
        (``follower``), or the loop cannot watch a descriptor."""

    @classmethod
    def open(
        cls,
        url: str,
        *,
        clock: Callable[[], float] = time.time,
        upgrade: bool = True,
        heartbeat_flush: float = DEFAULT_HEARTBEAT_FLUSH,
        durability: str = "process",
    ) -> Registry:
        """Connect (synchronously, before the loop serves), apply migrations when
        ``upgrade`` (SQLite by default; ``srvdns db upgrade`` otherwise), and load the catalog.

        Without ``upgrade`` a schema that is not at the newest revision is an error.
        ``heartbeat_flush`` is how long a lease renewal may live only in memory (0: every
        heartbeat is committed before it is acknowledged).
        ``durability`` is the config's ``[server] durability`` (see ``engine``).
        Raises StoreUnavailableError when the database cannot be reached.
        """
        repository = Repository(create_engine(url, durability))
        checkpointer = WalCheckpointer.attach(repository.engine)
        executor = WorkerThread("srvdns-registry")
        try:
            services, index = executor.submit(_start, repository, upgrade).result()
        except BaseException:
            executor.shutdown(wait=True)
            repository.engine.dispose()
            raise
        started = time.perf_counter()
        holder = CatalogHolder(Catalog.build(services, index=index))
        registry = cls(
            repository, holder, executor=executor, clock=clock, heartbeat_flush=heartbeat_flush
        )
        registry.stats.snapshot("build", time.perf_counter() - started)
        if checkpointer is not None:
            registry._checkpointer = checkpointer
            checkpointer.start()
        return registry

    def close(self) -> None:
        """Persist the lease renewals held in memory, stop the worker thread (after the
        writes already queued) and dispose of the engine."""
        if self._closed:
            return
        self._closed = True
        if self._flush_timer is not None:
            self._flush_timer.cancel()
        with self._lock:
            self._flush_requested = True
            if not self._draining:
                self._draining = True
                self._executor.call(self._drain)
        with contextlib.suppress(RuntimeError):  # on the thread that used it, last
            self._executor.submit(self._repository.close_writer)
        self._executor.shutdown(wait=True)
        for handback in self._handbacks:  # after the worker's last hand-back
            handback.close()
        if self._checkpointer is not None:
            self._checkpointer.stop()
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

        When the database says it was last synced with this very static set (the same
        ``static_digest``), there is nothing to do and nothing is read or written: with
        100,000 static instances that is most of a restart's time.
        """
        digest = static_digest(services, health)
        if self._call(self._repository.static_digest) == digest:
            log.debug("static services unchanged since the last sync (digest %s)", digest)
            return
        desired = static_instances(services, self._clock(), health)
        change = self._call(lambda: self._repository.sync_static(desired, digest))
        if change.services:
            started = time.perf_counter()
            self.holder.patch(change.services, index=change.index)
            self.stats.snapshot("patch", time.perf_counter() - started)

    async def ping(self, timeout: float = 2.0, *, write: bool = False) -> None:
        """Reach the database (``SELECT 1`` on the worker thread) within ``timeout`` seconds.

        With ``write``, commit an empty write instead (``trouble.probe``): a locked,
        read-only, full or removed SQLite database fails that although it answers reads.
        Raises StoreUnavailableError naming what went wrong; when the worker is still busy
        with writes that fail, the last of their errors.
        """

        def select_one() -> None:
            reader = self._repository.engine.execution_options(**{READ_ONLY: True})
            with reader.connect() as connection:  # a read need not wait for the write lock
                connection.exec_driver_sql("SELECT 1")

        def probe() -> None:
            trouble.probe(self._repository.engine)
            self._trouble = None

        try:
            job = self._submit(probe if write else select_one)
            await asyncio.wait_for(asyncio.wrap_future(job), timeout)
        except TimeoutError:
            if self._trouble is not None:
                raise errors.StoreUnavailableError(f"error: {self._trouble}") from None
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
        digest = static_digest(services, health)
        await self._write(lambda: self._repository.sync_static(desired, digest), "resync_static")

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
        tags, meta = instance.tags, instance.meta
        stored = _as_registered(
            instance,
            now,  # (most registrations have no tags or meta: nothing to normalise)
            tags=tuple(dict.fromkeys(tag.lower() for tag in tags)) if tags else (),
            meta=tuple(sorted(dict(meta).items())) if meta else (),
        )
        change = await self._write(
            lambda: self._repository.upsert_instance(stored, exclusive_id=exclusive_id),
            "register",
        )
        if change.instance is None:
            raise AssertionError("a registration returns the stored instance")
        return change.instance

    async def deregister(self, service: str, instance_id: str) -> None:
        """Remove an instance; a service left without instances disappears.

        Raises NotFoundError (unknown service or id) or ConflictError (static instance).
        """
        name = service.lower()
        await self._write(lambda: self._repository.delete_instance(name, instance_id), "deregister")

    async def heartbeat(
        self,
        service: str,
        instance_id: str,
        *,
        status: Status = Status.PASSING,
        output: str = "",
    ) -> Instance:
        """Renew the instance's TTL lease (``last_heartbeat`` = now).

        Its ttl check gets ``status`` (passing for a plain heartbeat; the Consul API's warn
        and fail set warning or critical until the next heartbeat or the lease lapses) and
        ``output``.  Raises NotFoundError, or ConflictError when the instance has no ``ttl``.

        A heartbeat that changes nothing but the lease's start, the check's output and its
        counters (the lease is running and the check keeps its status) is applied to the
        catalog at once and persisted with the next transaction, at the latest
        ``heartbeat_flush`` seconds later: a crash in between loses at most that much of
        the lease's renewal, i.e. after a restart the lease ends up to ``heartbeat_flush``
        seconds earlier than acknowledged.  Any other heartbeat (a lapsed lease, a status
        change, an unknown instance) is committed before it returns.
        """
        renewed = await self.renew_lease(service, instance_id, status=status, output=output)
        if renewed is not None:
            return renewed
        name, now = service.lower(), self._clock()
        change = await self._write(
            lambda: self._repository.heartbeat(
                name, instance_id, now, status=status, output=output
            ),
            "heartbeat",
        )
        if change.instance is None:
            raise AssertionError("a heartbeat returns the renewed instance")
        return change.instance

    async def renew_lease(
        self,
        service: str,
        instance_id: str,
        *,
        status: Status = Status.PASSING,
        output: str = "",
    ) -> Instance | None:
        """The in-memory half of ``heartbeat``: renew a running lease whose ttl check keeps
        its status, in the catalog at once and persisted within ``heartbeat_flush``
        seconds; returns the renewed instance, or None (and changes nothing) when the
        heartbeat needs a transaction (or heartbeats are not held in memory)."""
        if self._heartbeat_flush <= 0 or self._closed:
            return None
        renewed = self._renew_in_memory(service.lower(), instance_id, self._clock(), status, output)
        if renewed is not None:
            await self._publish_staged_soon()
        return renewed

    async def apply_health(
        self, updates: Sequence[CheckUpdate], removals: Sequence[CheckUpdate] = ()
    ) -> Change:
        """The health loop's one write: new check states, and instances critical too long to
        remove, in one transaction (see ``repository.apply_health``)."""
        if not updates and not removals:
            return Change((), self.holder.current.index, health_only=True)
        return await self._write(
            lambda: self._repository.apply_health(updates, removals), "apply_health"
        )

    async def save_counters(self, updates: Sequence[CheckUpdate]) -> None:
        """Store check output and counters without a status change (the health loop, at
        shutdown); the catalog keeps its copy until the next start."""
        if updates:
            await self._write(lambda: self._repository.save_counters(updates), "save_counters")

    async def flush_renewals(self) -> None:
        """Persist the lease renewals held in memory now, rather than within
        ``heartbeat_flush`` seconds: they ride along with a write that changes nothing,
        which also waits for renewals a transaction in progress has already taken."""
        index = self.holder.current.index
        await self._write(lambda: Change((), index), "flush_renewals")

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

    def follower(self, interval: float = DEFAULT_FOLLOW_INTERVAL) -> ChangeFollower:
        """A change follower that keeps this registry's catalog current with the writes
        of other processes sharing the database (other nodes); ``start()`` it on the loop.

        It reads on the registry's own worker thread, so its reads and this process's
        writes reach the catalog in commit order; what it finds wakes blocking queries
        and reaches the listeners like a local write (``keys`` None: any instance).
        The follower hands its reads to the loop through ``call_soon_threadsafe``, so the
        writes' hand-back does too from now on (``Handback.threadsafe``), in order.
        """
        self._threadsafe_only = True
        if self._handback is not None:
            self._handback.threadsafe = True
        return ChangeFollower(
            self._repository,
            self.holder,
            interval=interval,
            executor=self._executor,
            on_change=self._followed,
            prepare=_keep_newest_leases,
        )

    def _followed(self, followed: Followed) -> None:
        """Loop thread: a follower patched the catalog; tell whoever waits for changes."""
        self._wake_waiters()
        change = Change(followed.services, followed.index)
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                log.exception("a registry listener failed")

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

    async def _write(self, fn: Callable[[], Change], operation: str = "write") -> Change:
        """Queue a write for the worker thread; once it committed, patch the catalog.

        The patch happens on the loop thread even when the awaiting task was cancelled
        meanwhile, so a committed write always reaches the catalog, in commit order.  A
        write cancelled before its transaction started is not run.  Its latency and any
        error are counted in ``stats`` under ``operation``.
        """
        loop = asyncio.get_running_loop()
        handback = self._handback
        if (handback is None or handback.loop is not loop) and not self._threadsafe_only:
            self._hand_back_to(loop)
        result: asyncio.Future[Change] = loop.create_future()
        write = _Write(fn, loop, result, operation)
        with self._lock:
            self._queue.append(write)
            try:
                self._start_drain()
            except errors.StoreUnavailableError as exc:
                self._queue.remove(write)
                self.stats.write(operation, time.perf_counter() - write.started, exc)
                raise
        return await result

    def _hand_back_to(self, loop: asyncio.AbstractEventLoop) -> None:
        """Loop thread, before the first write from ``loop``: have the worker thread
        hand committed batches back to it through a ``Handback`` (which wakes the loop
        without holding the GIL), unless another loop, still open, has one."""
        if self._handback is not None and not self._handback.loop.is_closed():
            return
        try:
            self._handback = Handback(loop)
        except NotImplementedError:  # a loop that cannot watch descriptors
            self._handback = None
            self._threadsafe_only = True
            return
        self._handbacks.append(self._handback)

    def _start_drain(self) -> None:
        """With ``_lock`` held: make sure the worker thread will run the queue."""
        if self._draining:
            return
        try:
            self._executor.call(self._drain)
        except RuntimeError:  # the executor has been shut down
            raise errors.StoreUnavailableError("the registry is closed") from None
        self._draining = True

    def _drain(self) -> None:
        """Worker thread: run queued writes, up to ``MAX_BATCH`` per transaction, with the
        lease renewals held in memory persisted first in the same transaction; then hand
        every outcome to the loop in one call.  A write's outcome is delivered only after
        the commit; if the commit fails, every write of the batch fails with it."""
        while True:
            with self._lock:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                flush, self._flush_requested = self._flush_requested, False
                if not batch and not flush:
                    self._draining = False
                    return
                renewals = self._renewals.take()
            outcomes: list[Change | BaseException | None] = []
            try:
                with self._repository.batch(renewals, writes=len(batch)):
                    for write in batch:
                        if write.cancelled:
                            outcomes.append(None)
                            continue
                        try:
                            outcomes.append(write.fn())
                        except errors.StoreUnavailableError:
                            # The database failed, not the write: the transaction is lost
                            # (SQLite may have rolled all of it back already: disk full).
                            raise
                        except Exception as exc:  # this write's own failure: rolled back
                            outcomes.append(exc)
            except Exception as exc:  # the transaction failed: nothing of it is stored
                self._renewals.restore(renewals)
                log.debug("registry batch of %d writes failed: %s", len(batch), exc)
                outcomes = [exc] * len(batch)
                if renewals and self._loop is not None:  # try them again a flush later
                    with contextlib.suppress(RuntimeError):
                        self._loop.call_soon_threadsafe(self._arm_flush)
            with self._lock:  # done before the hand-over, so that this thread is done
                # too when the loop wakes up for it (rather than holding the GIL it wants)
                done = not self._queue and not self._flush_requested
                if done:
                    self._draining = False
            if batch:
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting
                    handback = self._handback
                    if handback is not None and handback.loop is batch[0].loop:
                        handback.call(self._finish, batch, outcomes)
                    else:
                        batch[0].loop.call_soon_threadsafe(self._finish, batch, outcomes)
            if done:
                return

    def _finish(self, batch: list[_Write], outcomes: list[Change | BaseException | None]) -> None:
        """Loop thread: publish a committed batch in commit order, then hand each outcome
        to its caller."""
        before = self.holder.current.index
        published = self._publish_all(outcomes)
        if self.holder.current.index > before:
            self._wake_waiters()
        for outcome in published:
            if isinstance(outcome, Change):
                for listener in list(self._listeners):
                    try:
                        listener(outcome)
                    except Exception:  # a listener's bug must not lose a committed write
                        log.exception("a registry listener failed")
        finished = time.perf_counter()
        for write, outcome in zip(batch, published, strict=True):
            if outcome is not None:
                error = None if isinstance(outcome, Change) else outcome
                self.stats.write(write.operation, finished - write.started, error)
                self._note_trouble(error)
            if write.result.done() or outcome is None:
                continue
            if isinstance(outcome, Change):
                write.result.set_result(outcome)
            else:
                write.result.set_exception(outcome)

    def _note_trouble(self, error: BaseException | None) -> None:
        """Remember what the database said when it refused a write (for ``/readyz``);
        forget it after a write that committed."""
        if error is None:
            self._trouble = None
        elif isinstance(error, errors.StoreUnavailableError):
            cause = error.__cause__
            self._trouble = str(getattr(cause, "orig", None) or cause or error)

    def _publish_all(
        self, outcomes: list[Change | BaseException | None]
    ) -> list[Change | BaseException | None]:
        """Loop thread: ``_publish`` each committed change of a batch, in commit order,
        except that consecutive changes that only write instances (registrations,
        deregistrations) are patched in together while none of them writes an instance
        another one wrote: one catalog copy for all of them instead of one each, which
        costs a copy of the service map per write.  They committed together, so each
        gets its services as they are after all of them."""
        published = list(outcomes)
        run: list[int] = []
        written: set[tuple[str, str]] = set()
        for at, outcome in enumerate(outcomes):
            if not isinstance(outcome, Change):  # failed or cancelled: nothing to publish
                continue
            keys = {(i.service, i.id) for i in outcome.upserts} | set(outcome.removals)
            if keys and not outcome.services:
                if not keys.isdisjoint(written):
                    self._publish_run(run, published)
                    written.clear()
                run.append(at)
                written |= keys
                continue
            self._publish_run(run, published)
            written.clear()
            published[at] = self._publish(outcome)
        self._publish_run(run, published)
        return published

    def _publish_run(self, run: list[int], published: list[Change | BaseException | None]) -> None:
        """Patch the instance writes of the changes at ``run`` (positions in
        ``published``) into the catalog at once, replace each with its services as they
        now are, and empty ``run``."""
        if not run:
            return
        started = time.perf_counter()
        if len(run) == 1 and isinstance(change := published[run[0]], Change):
            # one change: its services are exactly those the patch returns, in name order
            catalog, services = self.holder.current.with_instances(
                change.upserts, change.removals, index=change.index
            )
            self.holder.swap(catalog)
            published[run[0]] = change.with_services(tuple(services))
            self.stats.snapshot("patch", time.perf_counter() - started)
            run.clear()
            return
        together = [change for at in run if isinstance(change := published[at], Change)]
        catalog, services = self.holder.current.with_instances(
            [instance for change in together for instance in change.upserts],
            [key for change in together for key in change.removals],
            index=max(change.index for change in together),
        )
        self.holder.swap(catalog)
        by_name = {service.name: service for service in services}
        for at, change in zip(run, together, strict=True):
            names = {i.service for i in change.upserts} | {name for name, _ in change.removals}
            published[at] = change.with_services(tuple(by_name[n] for n in sorted(names)))
        self.stats.snapshot("patch", time.perf_counter() - started)
        run.clear()

    def _publish(self, change: Change) -> Change:
        """Loop thread: patch the catalog with one committed change, timed in ``stats``;
        returns the change with ``services`` as the catalog now has them."""
        started = time.perf_counter()
        try:
            return self._patch(change)
        finally:
            self.stats.snapshot("patch", time.perf_counter() - started)

    def _patch(self, change: Change) -> Change:
        if change.upserts or change.removals:
            catalog, services = self.holder.current.with_instances(
                change.upserts, change.removals, index=change.index
            )
            self.holder.swap(catalog)
            return change.with_services((*services, *change.services))
        if change.services:
            current = self.holder.current
            newest = tuple(renew.newest_leases(s, current) for s in change.services)
            self.holder.patch(newest, index=change.index)
            return change.with_services(newest)
        return change

    # -- heartbeats from memory ---------------------------------------------------------

    def _renew_in_memory(
        self, service: str, instance_id: str, now: float, status: Status, output: str
    ) -> Instance | None:
        """Loop thread: renew a running lease whose check keeps ``status`` in memory and
        queue it for persisting; None when the heartbeat needs a transaction."""
        key = (service, instance_id)
        staged = self._staged.get(key)
        if staged is None:
            view = self.holder.current.get_service(service)
            label = None if view is None else view.target_of.get(instance_id)
            if view is None or label is None:
                return None
            base = instance = view.targets[label]
        else:
            base, instance = staged
        renewed = renew.renew(instance, now, status, output)
        if renewed is None:
            return None
        instance, check = renewed
        self._staged[key] = (base, instance)
        self._renewals.add(
            LeaseRenewal(
                service,
                instance_id,
                now,
                check.id,
                check.status,
                check.output,
                check.successes,
                check.failures,
            )
        )
        self._arm_flush()
        return instance

    def _arm_flush(self) -> None:
        """Loop thread: have the renewals held persisted ``heartbeat_flush`` from now,
        unless that is planned already."""
        if self._flush_timer is None and not self._closed:
            self._loop = loop = asyncio.get_running_loop()
            self._flush_timer = loop.call_later(self._heartbeat_flush, self._flush_renewals)

    def _flush_renewals(self) -> None:
        """Loop thread, ``heartbeat_flush`` after the first renewal held in memory: have
        the worker thread persist them (an empty batch carries them)."""
        self._flush_timer = None
        with self._lock:
            if self._renewals:
                self._flush_requested = True
                with contextlib.suppress(errors.StoreUnavailableError):
                    self._start_drain()

    async def _publish_staged_soon(self) -> None:
        """Wait until the renewals of this loop iteration are in the catalog: they are
        published together, one catalog swap for all of them."""
        if self._staged_done is None:
            loop = asyncio.get_running_loop()
            self._staged_done = loop.create_future()
            loop.call_soon(self._publish_staged)
        await asyncio.shield(self._staged_done)

    def _publish_staged(self) -> None:
        staged, self._staged = self._staged, {}
        done, self._staged_done = self._staged_done, None
        current = self.holder.current
        live = [renewed for base, renewed in staged.values() if _still_there(current, base)]
        if live:
            catalog, services = current.with_instances(live, index=current.index)
            self.holder.swap(catalog)
            change = Change(
                tuple(services), catalog.index, keys=tuple((i.service, i.id) for i in live)
            )
            for listener in list(self._listeners):
                try:
                    listener(change)
                except Exception:
                    log.exception("a registry listener failed")
        if done is not None and not done.done():
            done.set_result(None)

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


def _keep_newest_leases(followed: Followed, current: Catalog) -> Followed:
    """A follower's read with each lease no older than the one the catalog holds: a
    renewal this process acknowledged from memory may not be in the database yet."""
    services = tuple(renew.newest_leases(s, current) for s in followed.services)
    return replace(followed, services=services)


def _still_there(catalog: Catalog, base: Instance) -> bool:
    """Whether ``catalog`` still holds the very instance a renewal was made from (a write
    published in the same loop iteration may have deleted or replaced it)."""
    view = catalog.get_service(base.service)
    label = None if view is None else view.target_of.get(base.id)
    return view is not None and label is not None and view.targets[label] is base


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
