"""The health loop: runs every check on its own schedule and writes status changes.

It runs on the event loop that answers DNS.  The checks come from the catalog (so from
the registry): the loop loads them at start and follows every committed change through
a registry listener.  Each check has its own schedule (``schedule.Schedule``); one timer
wakes the loop for the next due check, on a grid of ``TICK`` (so that checks due close
together start in one batch and share the event loop's wake-up, which costs more than a
TCP connect; under a heavy load, every ``BUSY_TICK``, in batches of at most ``BATCH``
checks per pass, which keeps DNS answers from waiting long behind them).  A due check
whose checker can start it at once (``check_now``: a TCP connect to an IP address, a TTL
lease) runs in the timer callback itself, and when it is over at once (a target on this
host answers inside the connect) its result is recorded there, without a task or a
timeout; the other checks, and those that must wait, run as tasks, at most
``concurrency`` at a time, and the rest wait in line, so a burst waits instead of being
dropped; a check that overruns its timeout is cancelled and counted critical, unless the
event loop itself stalled meanwhile (then the result is not counted at all: a live
instance is never dropped because srvdns fell behind).

Results pass through flap damping (``damping.step``).  A result that changes a check's
status becomes a registry write; the writes that pile up while one is in flight go
together in the next transaction, so a thousand instances dying at once cost a handful
of commits.  Results that change nothing write nothing: counters and output stay in
memory (``states``), and are saved once at shutdown.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from srvdns.catalog import in_panic
from srvdns.config import HealthConfig, ZoneConfig
from srvdns.durations import format_duration
from srvdns.errors import RegistryError
from srvdns.health import damping
from srvdns.health.checkers import Checker, Result, Unfinished, default_checkers
from srvdns.health.lag import LagMonitor
from srvdns.health.metrics import HealthMetrics
from srvdns.health.schedule import Schedule
from srvdns.model import Check, CheckKind, CheckSpec, Instance, Source, Status
from srvdns.registry.registry import Registry
from srvdns.registry.repository import Change, CheckUpdate

log = logging.getLogger(__name__)

TICK = 0.025
"""The scheduler wakes on a grid of this step (of the event loop's clock); due checks are
started in batches.  A wake-up of the event loop costs more CPU than a TCP check itself,
so a check may start up to this much after its due time (well inside the default
jitter of a tenth of the interval); a check registered while the loop runs still starts
at once.  The lag monitor samples on the same grid (``LagMonitor.period`` is a multiple
of it), so its timer and the scheduler's fire in one wake-up."""


BATCH = 32
"""At most this many checks start in one pass of the event loop; the rest start in the
next pass, after the I/O that is ready (DNS queries) is served, without sleeping."""

BUSY_RATE = 2000.0
"""Checks started per second above which the scheduler wakes every ``BUSY_TICK`` instead
of on the grid: the batches are big enough to pay for the wake-ups, and smaller batches
keep the event loop's pauses between DNS answers short."""
BUSY_TICK = 0.005


def on_grid(when: float) -> float:
    """The first point of the TICK grid at or after ``when``."""
    return math.ceil(when / TICK) * TICK


NOT_OWNED_RECHECK = 0.5
"""A ttl check another node runs is looked at again this long after its due time (so
that it is picked up soon once this node owns it)."""

Owner = Callable[[tuple[str, str, str]], bool]
"""Whether this node runs a check (service, instance id, check id) now; several nodes
sharing a registry each run their share (``srvdns.cluster``)."""

_InstanceKey = tuple[str, str]
_CheckKey = tuple[str, str, str]


def describe(spec: CheckSpec) -> str:
    """How a check's output starts: ``HTTP GET http://...``, ``TCP connect host:port``."""
    if spec.kind is CheckKind.HTTP:
        return f"HTTP {spec.method} {spec.target}"
    if spec.kind is CheckKind.TCP:
        return f"TCP connect {spec.target}"
    return "TTL"


@dataclass(eq=False, slots=True)
class _Entry:
    """One check the loop runs, with its live state.

    ``check`` is the state as of ``repeats`` results ago: a result that repeats the last
    one (the same status and output) only moves a counter, so it is counted here and
    built into the check when the check is read (``current``), not on every run."""

    service: str
    instance_id: str
    check: Check
    has_result: bool
    removed: bool = False
    busy: bool = False
    dirty: bool = False
    due: float = 0.0
    repeats: int = 0

    @property
    def key(self) -> _CheckKey:
        return (self.service, self.instance_id, self.check.id)

    def current(self) -> Check:
        """The check with every result counted."""
        if self.repeats:
            self.check = damping.repeat(self.check, self.repeats)
            self.repeats = 0
        return self.check

    def replace(self, check: Check) -> None:
        """Take ``check`` (stored by another writer) as the live state."""
        self.check = check
        self.repeats = 0


class HealthLoop:
    """Runs the checks of every instance in ``registry`` and records what they find.

    ``config`` gives the concurrency and the jitter; ``zones`` the panic thresholds the
    loop logs and honours (no deregistration while a service is in panic).  ``wall`` is
    the wall clock of stored times and leases; schedules use the event loop's clock.
    """

    def __init__(
        self,
        registry: Registry,
        config: HealthConfig | None = None,
        zones: Sequence[ZoneConfig] = (),
        *,
        metrics: HealthMetrics | None = None,
        checkers: Mapping[CheckKind, Checker] | None = None,
        rng: random.Random | None = None,
        wall: Callable[[], float] = time.time,
        lag: LagMonitor | None = None,
        owner: Owner | None = None,
    ) -> None:
        self._registry = registry
        self._owner = owner
        self._config = config or HealthConfig()
        self._zones = tuple(z for z in zones if z.panic_threshold is not None)
        self.metrics = metrics or HealthMetrics()
        self._checkers = dict(checkers) if checkers is not None else default_checkers(wall)
        self._starts_now: dict[
            CheckKind, Callable[[CheckSpec, Instance], Result | Unfinished | None]
        ] = {
            kind: method
            for kind, checker in self._checkers.items()
            if (method := getattr(checker, "check_now", None)) is not None
        }
        self._wall = wall
        self._schedule: Schedule[_Entry] = Schedule(jitter=self._config.jitter, rng=rng)
        self.lag = lag or LagMonitor(on_sample=self._lag_sample)
        self._entries: dict[_InstanceKey, dict[str, _Entry]] = {}
        self._count = 0
        self._aio: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._planned_wake = math.inf
        self._last_tick = -math.inf
        self._waiting: collections.deque[_Entry] = collections.deque()
        self._jobs: set[asyncio.Task[None]] = set()
        self._unfinished: set[Unfinished] = set()
        self._late = 0.0
        self._tally: dict[tuple[CheckKind, Status], int] = {}
        self._pending: dict[_CheckKey, CheckUpdate] = {}
        self._removals: dict[_InstanceKey, CheckUpdate] = {}
        self._inflight: set[_CheckKey] = set()
        self._write_wanted = asyncio.Event()
        self._writing = False
        self._panic: set[tuple[str, str]] = set()
        self._panic_noted: set[str] = set()
        self._last_index = -1
        self._running = 0
        self._tasks: list[asyncio.Task[None]] = []
        # read when scraped, not set on every check
        self.metrics.running.set_function(lambda: self._running)
        self.metrics.queued.set_function(lambda: len(self._waiting))
        self.metrics.schedule_lag.set_function(lambda: self._late)
        self.metrics.lag_max.set_function(self.lag.max_lag)

    def set_zones(self, zones: Sequence[ZoneConfig]) -> None:
        """Honour the panic thresholds of ``zones`` from now on (a config reload)."""
        self._zones = tuple(z for z in zones if z.panic_threshold is not None)

    # -- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Load every check of the catalog, spread over its interval, and start running."""
        loop = asyncio.get_running_loop()
        catalog = self._registry.holder.current
        now = loop.time()
        for view in catalog.services.values():
            for instance in view.instances:
                for check in instance.checks:
                    self._add(instance, check, now, spread=True)
        self._last_index = catalog.index
        self._registry.add_listener(self._on_change)
        for name in catalog.services:
            self._check_panic(name)
        self._tasks = [
            asyncio.create_task(self.lag.run(), name="health-lag"),
            asyncio.create_task(self._writer(), name="health-writer"),
        ]
        self._aio = loop
        self._arm()
        log.info(
            "health checks: %d scheduled, concurrency %d", self._count, self._config.concurrency
        )

    async def stop(self) -> None:
        """Stop running checks, then write what is pending and the in-memory counters."""
        self._registry.remove_listener(self._on_change)
        self._aio = None  # no more checks start
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._waiting.clear()
        tasks, self._tasks = [*self._tasks, *self._jobs], []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for unfinished in self._unfinished:  # their tasks were cancelled before they ran
            unfinished.close()
        self._unfinished.clear()
        self._count_results()
        updates, removals = list(self._pending.values()), list(self._removals.values())
        self._pending, self._removals = {}, {}
        counters = [
            self._update(entry)
            for entries in self._entries.values()
            for entry in entries.values()
            if entry.dirty
        ]
        try:
            if updates or removals:
                await self._registry.apply_health(updates, removals)
            await self._registry.save_counters(counters)
        except RegistryError as exc:
            log.warning("could not save the health checks' state at shutdown: %s", exc)

    # -- what the API shows -------------------------------------------------------------

    def states(self, service: str, instance_id: str) -> dict[str, Check]:
        """The live state of each check of an instance (counters and output included)."""
        entries = self._entries.get((service, instance_id), {})
        return {check_id: entry.current() for check_id, entry in entries.items()}

    def panic_zones(self, service: str) -> list[str]:
        """The zones that answer ``service`` in panic mode now."""
        view = self._registry.holder.current.get_service(service)
        if view is None:
            return []
        now = self._wall()
        return [z.name for z in self._zones if in_panic(view.instances, now, z)]

    @property
    def scheduled(self) -> int:
        """How many checks the loop runs."""
        return self._count

    # -- the check set follows the registry ---------------------------------------------

    def _add(self, instance: Instance, check: Check, now: float, *, spread: bool) -> None:
        has_result = bool(check.output or check.successes or check.failures)
        entry = _Entry(instance.service, instance.id, check, has_result)
        self._entries.setdefault((instance.service, instance.id), {})[check.id] = entry
        self._count += 1
        self.metrics.checks.set(self._count)
        if check.spec.kind is CheckKind.TTL:
            due = self._ttl_due(entry, instance, now)
        else:
            due = self._schedule.first_due(now, check.spec.interval, spread=spread)
        if due is not None:
            self._plan(entry, due)

    def _drop(self, entry: _Entry) -> None:
        entry.removed = True
        self._schedule.discard(entry)
        entries = self._entries.get((entry.service, entry.instance_id))
        if entries is not None and entries.get(entry.check.id) is entry:
            del entries[entry.check.id]
            if not entries:
                del self._entries[entry.service, entry.instance_id]
            self._count -= 1
            self.metrics.checks.set(self._count)

    def _on_change(self, change: Change) -> None:
        """Registry listener: follow registrations, deregistrations and heartbeats."""
        if change.keys is not None:
            for name, instance_id in change.keys:
                self._reconcile(name, instance_id)
        elif not change.health_only:
            for service in change.services:
                ids = {i.id for i in service.instances}
                ids |= {key[1] for key in self._entries if key[0] == service.name}
                for instance_id in ids:
                    self._reconcile(service.name, instance_id)
        if change.index != self._last_index:
            self._last_index = change.index
            for service in change.services:
                self._check_panic(service.name)

    def _reconcile(self, service: str, instance_id: str) -> None:
        """Make the loop's checks of one instance those the catalog has."""
        instance = self._instance(service, instance_id)
        wanted = {c.id: c for c in instance.checks} if instance is not None else {}
        for check_id, old in list(self._entries.get((service, instance_id), {}).items()):
            stored = wanted.get(check_id)
            if stored is None or stored.spec != old.check.spec:
                self._drop(old)
        if instance is None:
            return
        now = asyncio.get_running_loop().time()
        entries = self._entries.get((service, instance_id), {})
        for check_id, stored in wanted.items():
            entry = entries.get(check_id)
            if entry is None:
                self._add(instance, stored, now, spread=False)
                continue
            key = entry.key
            if stored.spec.kind is CheckKind.TTL:
                expires = instance.lease_expires
                if expires is not None and expires > self._wall():
                    # a heartbeat renewed the lease: a lapse not yet written is stale
                    self._pending.pop(key, None)
                    entry.replace(stored)
            elif (
                stored.status is not entry.check.status
                and key not in self._pending
                and key not in self._inflight
            ):
                entry.replace(stored)  # another writer (a registration) set it
            if stored.spec.kind is CheckKind.TTL and not entry.busy:
                due = self._ttl_due(entry, instance, now)
                planned = self._schedule.due_at(entry)
                if due is not None and (planned is None or due < planned):
                    self._plan(entry, due)

    def _instance(self, service: str, instance_id: str) -> Instance | None:
        view = self._registry.holder.current.get_service(service)
        if view is None:
            return None
        label = view.target_of.get(instance_id)
        return None if label is None else view.targets.get(label)

    # -- scheduling ---------------------------------------------------------------------

    def _ttl_due(self, entry: _Entry, instance: Instance, now: float) -> float | None:
        """When a TTL check needs a look: at lease expiry, at once when it lapsed unnoticed,
        at its deregistration time when it is critical; None when nothing can change."""
        wall = self._wall()
        expires = instance.lease_expires
        after = entry.check.spec.deregister_critical_after
        deregister_at = None
        if (
            entry.check.status is Status.CRITICAL
            and after is not None
            and instance.source is Source.API
        ):  # critical since a lapse, or since a Consul ``fail`` that renewed the lease
            deregister_at = now + max(0.0, entry.check.last_change + after - wall)
        if expires is not None and expires > wall:
            lapse_at = now + (expires - wall)
            return lapse_at if deregister_at is None else min(lapse_at, deregister_at)
        if entry.check.status is not Status.CRITICAL:
            return now
        return deregister_at

    def _plan(self, entry: _Entry, due: float) -> None:
        entry.due = due
        self._schedule.at(entry, due)
        if due < self._planned_wake and self._aio is not None:
            # sooner than the timer: at once when due now (a new check), else on the grid
            if due > self._aio.time():
                due = on_grid(due)
            if due < self._planned_wake:
                self._rearm(due)

    def _rearm(self, wake: float) -> None:
        assert self._aio is not None
        if self._timer is not None:
            self._timer.cancel()
        self._planned_wake = wake
        self._timer = self._aio.call_at(wake, self._tick)

    def _arm(self, earliest: float | None = None) -> None:
        """Set the timer for the next due check: on the grid, or no sooner than
        ``earliest`` when given."""
        self._timer = None
        upcoming = self._schedule.next_time()
        if upcoming is None:
            self._planned_wake = math.inf
            return
        self._rearm(on_grid(upcoming) if earliest is None else max(upcoming, earliest))

    def _tick(self) -> None:
        """Timer callback: start every check that is due, then set the timer again."""
        assert self._aio is not None
        self._timer = None
        # checks that end at once plan their next runs in here: none may set the timer
        # (to its own next run, past other checks due sooner); it is set below
        self._planned_wake = -math.inf
        now = self._aio.time()
        due = self._schedule.pop_due(now, BATCH)
        try:
            for entry in due:
                if not entry.removed:
                    entry.busy = True
                    self._start(entry)
        finally:
            self._planned_wake = math.inf
            self._count_results()
        since, self._last_tick = now - self._last_tick, now
        if self._timer is None and self._aio is not None:
            if len(due) == BATCH:
                self._rearm(now)  # more may be due: the next pass, not the next grid point
            elif len(due) >= BUSY_RATE * since:
                self._arm(now + BUSY_TICK)
            else:
                self._arm()

    # -- running checks -----------------------------------------------------------------

    def _start(self, entry: _Entry) -> None:
        """Run ``entry``: at once when its checker can start it so (``check_now``), in a
        task of its own when it must wait; in line while ``concurrency`` checks wait."""
        if self._running >= self._config.concurrency:
            self._waiting.append(entry)
            return
        if entry.removed:
            entry.busy = False
            return
        check_now = self._starts_now.get(entry.check.spec.kind)
        if check_now is None:
            self._spawn(entry)
            return
        try:
            self._run_now(entry, check_now)
        except Exception:
            entry.busy = False
            log.exception("health check of %s/%s failed", *entry.key[:2])

    def _spawn(
        self,
        entry: _Entry,
        instance: Instance | None = None,
        started: float = 0.0,
        unfinished: Unfinished | None = None,
    ) -> None:
        """Run ``entry`` in a task: all of it; or, with the ``instance`` it checks and
        when it ``started``, its checker's ``check``, or the wait of the check
        ``check_now`` started (``unfinished``)."""
        assert self._aio is not None
        self._running += 1
        if unfinished is not None:
            self._unfinished.add(unfinished)
        task = self._aio.create_task(self._job(entry, instance, started, unfinished))
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    async def _job(
        self,
        entry: _Entry,
        instance: Instance | None,
        started: float,
        unfinished: Unfinished | None,
    ) -> None:
        try:
            if instance is None:
                if not entry.removed:
                    await self._run(entry)
            elif unfinished is not None:
                await self._finish(entry, instance, started, unfinished.result())
            else:
                spec = entry.check.spec
                checker = self._checkers[spec.kind]
                await self._finish(entry, instance, started, checker.check(spec, instance))
        except Exception:
            log.exception("health check of %s/%s failed", *entry.key[:2])
        finally:
            if unfinished is not None:
                unfinished.close()
                self._unfinished.discard(unfinished)
            entry.busy = False
            self._running -= 1
            self._drain()

    def _drain(self) -> None:
        """Start the checks waiting in line while slots are free; at most ``BATCH`` in
        one pass (checks that end at once free no slot), the rest in the next.  Every
        task's check ends here too: the results it tallied are counted."""
        try:
            begun = 0
            while (
                self._waiting and self._aio is not None and self._running < self._config.concurrency
            ):
                if begun == BATCH:
                    self._aio.call_soon(self._drain)
                    return
                waiting = self._waiting.popleft()
                if waiting.removed:
                    waiting.busy = False
                    continue
                self._start(waiting)
                begun += 1
        finally:
            self._count_results()

    def _runnable(self, entry: _Entry, now: float) -> Instance | None:
        """The instance ``entry`` checks, when this node is to run it now; else None,
        with the entry dropped (its instance is gone) or planned again (another node
        runs it)."""
        instance = self._instance(entry.service, entry.instance_id)
        if instance is None:
            self._drop(entry)
            return None
        if self._owner is not None and not self._owner(entry.key):
            self._skip(entry, instance, now)
            return None
        return instance

    def _run_now(
        self,
        entry: _Entry,
        check_now: Callable[[CheckSpec, Instance], Result | Unfinished | None],
    ) -> None:
        """``_run`` without a task: the result is recorded at once when the check is
        over at once; a task waits only for a check that must wait."""
        loop = self._aio
        assert loop is not None
        started = loop.time()
        instance = self._runnable(entry, started)
        if instance is None:
            entry.busy = False
            return
        spec = entry.check.spec
        self._late = max(0.0, started - entry.due)
        try:
            outcome = check_now(spec, instance)
        except Exception:
            log.exception("the %s checker failed on %s/%s", spec.kind, *entry.key[:2])
            outcome = Result(Status.CRITICAL, f"{describe(spec)}: internal error")
        if outcome is None:
            self._spawn(entry, instance, started)  # the checker's ``check`` runs it
            return
        if not isinstance(outcome, Result):
            self._spawn(entry, instance, started, outcome)
            return
        if not entry.removed:
            self._record(entry, instance, outcome)
            self._reschedule(entry, instance, loop.time())
        entry.busy = False

    async def _run(self, entry: _Entry) -> None:
        """Run one check once, record the result, and plan the next run."""
        loop = self._aio
        assert loop is not None
        instance = self._runnable(entry, loop.time())
        if instance is None:
            return
        spec = entry.check.spec
        started = loop.time()
        self._late = max(0.0, started - entry.due)
        checker = self._checkers[spec.kind]
        await self._finish(entry, instance, started, checker.check(spec, instance))

    async def _finish(
        self, entry: _Entry, instance: Instance, started: float, running: Awaitable[Result]
    ) -> None:
        """Await the check ``running`` (under its timeout), record the result, and plan
        the next run."""
        loop = self._aio
        assert loop is not None
        spec = entry.check.spec
        try:
            if spec.kind is CheckKind.TTL:
                result = await running
            else:
                async with asyncio.timeout(spec.timeout):
                    result = await running
        except TimeoutError:
            if self.lag.stall_since(started) >= spec.timeout / 2:
                # srvdns, not the target, was too slow: do not count this run
                self.metrics.inconclusive.inc()
                self._reschedule(entry, instance, loop.time())
                return
            self.metrics.timeout(spec.kind)
            timeout = format_duration(spec.timeout)
            result = Result(Status.CRITICAL, f"{describe(spec)}: timed out after {timeout}")
        except Exception:
            log.exception("the %s checker failed on %s/%s", spec.kind, *entry.key[:2])
            result = Result(Status.CRITICAL, f"{describe(spec)}: internal error")
        if entry.removed:
            return
        self._record(entry, instance, result)
        self._reschedule(entry, instance, loop.time())

    def _reschedule(self, entry: _Entry, instance: Instance, finished: float) -> None:
        if entry.removed:
            return
        spec = entry.check.spec
        if spec.kind is CheckKind.TTL:
            due = self._ttl_due(entry, instance, finished)
            if due is not None:
                self._plan(entry, max(due, finished + TICK))
            return
        self._plan(entry, self._schedule.next_due(entry.due, spec.interval, finished))

    def _skip(self, entry: _Entry, instance: Instance, now: float) -> None:
        """Another node runs this check: plan to look again (at the next interval, or
        for a ttl check no sooner than ``NOT_OWNED_RECHECK``), in case it becomes ours."""
        if entry.check.spec.kind is not CheckKind.TTL:
            self._reschedule(entry, instance, now)
            return
        due = self._ttl_due(entry, instance, now)
        if due is not None:
            self._plan(entry, max(due, now + NOT_OWNED_RECHECK))

    def _record(self, entry: _Entry, instance: Instance, result: Result) -> None:
        """Apply a result: damping, a write when the status changed, deregistration.

        The result is tallied (``_tally``), counted in the metrics at the end of the
        timer callback or the drain that ran it (``_count_results``)."""
        check = entry.check
        status = result.status
        tallied = (check.spec.kind, status)
        self._tally[tallied] = self._tally.get(tallied, 0) + 1
        if status is check.status and entry.has_result and result.output == check.output:
            self._repeated(entry, instance, check)
            return
        wall = self._wall()
        old = entry.current()
        new = damping.step(old, status, result.output, wall, first=not entry.has_result)
        entry.has_result = True
        entry.check = new
        key = entry.key
        if new.status is not old.status:
            self.metrics.changes.labels(new.status.value).inc()
            log.info(
                "%s/%s check %s: %s -> %s: %s",
                entry.service,
                entry.instance_id,
                new.id,
                old.status,
                new.status,
                " ".join(new.output[:300].split())[:200],
            )
            self._pending[key] = self._update(entry)
            self._write_wanted.set()
            entry.dirty = False
        elif key in self._pending:
            self._pending[key] = self._update(entry)
        elif not entry.dirty and new is not old and new != old:
            entry.dirty = True
        after = new.spec.deregister_critical_after
        if (
            new.status is Status.CRITICAL
            and after is not None
            and instance.source is Source.API
            and wall - new.last_change >= after
        ):
            self._deregister(entry, new)

    def _repeated(self, entry: _Entry, instance: Instance, check: Check) -> None:
        """``_record`` of a result that repeats the last one (``step`` would move only a
        counter): counted in ``entry.repeats``; the rest as ``_record`` does it."""
        entry.repeats += 1
        if self._pending and (key := entry.key) in self._pending:
            self._pending[key] = self._update(entry)
        elif not entry.dirty and damping.repeat_moves(check):
            entry.dirty = True
        if check.status is Status.CRITICAL:
            after = check.spec.deregister_critical_after
            if (
                after is not None
                and instance.source is Source.API
                and self._wall() - check.last_change >= after
            ):
                self._deregister(entry, entry.current())

    def _count_results(self) -> None:
        """Count the tallied results in the metrics."""
        if self._tally:
            self.metrics.add_results(self._tally)
            self._tally.clear()

    def _deregister(self, entry: _Entry, check: Check) -> None:
        service = entry.service
        if self._in_panic(service):
            if service not in self._panic_noted:
                self._panic_noted.add(service)
                log.warning(
                    "service %s is in panic mode: not deregistering %s although it has been "
                    "critical for over %s",
                    service,
                    entry.instance_id,
                    format_duration(check.spec.deregister_critical_after or 0),
                )
            return
        self._panic_noted.discard(service)
        self._removals[service, entry.instance_id] = CheckUpdate(service, entry.instance_id, check)
        self._write_wanted.set()

    def _update(self, entry: _Entry) -> CheckUpdate:
        return CheckUpdate(entry.service, entry.instance_id, entry.current())

    # -- writing ------------------------------------------------------------------------

    async def _writer(self) -> None:
        """Write pending results; while the database refuses, keep them (and the live
        state ``states`` shows) in memory and retry with a backoff up to 5 s."""
        backoff = 0.1
        failed = 0
        while True:
            await self._write_wanted.wait()
            self._write_wanted.clear()
            if not self._pending and not self._removals:
                continue
            updates, self._pending = self._pending, {}
            removals, self._removals = self._removals, {}
            self._inflight = set(updates)
            try:
                change = await self._registry.apply_health(
                    list(updates.values()), list(removals.values())
                )
            except RegistryError as exc:
                failed += 1
                log.warning("cannot record check results, retrying: %s", exc)
                for key, update in updates.items():
                    self._pending.setdefault(key, update)
                for ikey, removal in removals.items():
                    self._removals.setdefault(ikey, removal)
                self._inflight = set()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                self._write_wanted.set()
                continue
            self._inflight = set()
            backoff = 0.1
            if failed:
                log.warning("check results recorded again after %d failed attempts", failed)
                failed = 0
            self.metrics.writes.inc()
            for service, instance_id in change.keys or ():
                self.metrics.deregistrations.inc()
                removal = removals[service, instance_id]
                log.warning(
                    "deregistered %s/%s: check %s critical for over %s",
                    service,
                    instance_id,
                    removal.check.id,
                    format_duration(removal.check.spec.deregister_critical_after or 0),
                )

    # -- panic --------------------------------------------------------------------------

    def _in_panic(self, service: str) -> bool:
        return bool(self.panic_zones(service))

    def _check_panic(self, service: str) -> None:
        """Log loudly when a service enters or leaves panic mode in a zone."""
        if not self._zones:
            return
        view = self._registry.holder.current.get_service(service)
        now = self._wall()
        for zone in self._zones:
            key = (zone.name, service)
            active = view is not None and in_panic(view.instances, now, zone)
            if active and key not in self._panic:
                assert view is not None
                critical = sum(
                    1 for i in view.instances if i.effective_status(now) is Status.CRITICAL
                )
                self._panic.add(key)
                log.warning(
                    "PANIC: %d of %d instances of %s are critical (over %g%%): zone %s "
                    "answers all of them until fewer are",
                    critical,
                    len(view.instances),
                    service,
                    (zone.panic_threshold or 0) * 100,
                    zone.name,
                )
            elif not active and key in self._panic:
                self._panic.discard(key)
                log.warning(
                    "panic over: zone %s answers only healthy %s instances", zone.name, service
                )
        self.metrics.panic.set(len(self._panic))

    def _lag_sample(self, lag: float) -> None:
        self.metrics.lag.set(lag)
