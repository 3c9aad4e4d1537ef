"""A bounded in-memory record of instance status changes, for the status page's timeline.

The registry calls ``observe`` with every committed change (registrations,
deregistrations, heartbeats, the health loop's status changes); the record compares each
instance with how it last saw it and keeps one event per status change.  It lives only in
the process: it answers "what happened to this service in the last hour", not "what
happened ever", so it is bounded both in age and in count.
"""

from __future__ import annotations

import bisect
import operator
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from srvdns.model import Instance, Service, Status

RETENTION = 3600.0
"""Seconds an event is kept (the status page shows the last hour)."""
MAX_EVENTS = 10_000
"""Events kept at most; the oldest go first when more happen within ``RETENTION``."""


@dataclass(frozen=True, slots=True)
class CheckChange:
    """One check whose status moved as part of an event."""

    id: str
    before: Status | None
    after: Status | None
    output: str


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """An instance appeared, disappeared or changed status at ``time`` (Unix seconds).

    ``before`` is None for a new instance, ``after`` None for a removed one.
    """

    time: float
    service: str
    instance: str
    before: Status | None
    after: Status | None
    checks: tuple[CheckChange, ...] = ()


@dataclass(frozen=True, slots=True)
class _Seen:
    """What the record remembers of an instance: its status and its checks' statuses."""

    status: Status
    checks: tuple[tuple[str, Status], ...]


def _seen(instance: Instance) -> _Seen:
    checks = instance.checks  # most have none: no generator to run then
    return _Seen(instance.status, tuple((c.id, c.status) for c in checks) if checks else ())


class StatusHistory:
    """Status changes of the last ``retention`` seconds, at most ``max_events`` of them."""

    def __init__(
        self,
        *,
        retention: float = RETENTION,
        max_events: int = MAX_EVENTS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Start empty; ``seed`` it with what exists before following changes."""
        self.retention = retention
        self.started = clock()
        self._clock = clock
        self._events: deque[StatusEvent] = deque(maxlen=max_events)
        # per service: instance id -> (the instance object last seen, what it showed);
        # instances are immutable, so an object seen before has not changed
        self._seen: dict[str, dict[str, tuple[Instance, _Seen]]] = {}
        self._seeded: dict[str, tuple[Instance, ...]] = {}
        """Seeded services not indexed into ``_seen`` yet (see ``seed``)."""

    def seed(self, services: Iterable[Service]) -> None:
        """Remember the current state of ``services`` without recording events (what
        existed when the process started is not a change).

        A service is indexed when a change first touches it: indexing 100,000 static
        instances at start-up held the API back ~0.2 s, for services that may never change.
        """
        for service in services:
            self._seeded[service.name] = service.instances
            self._seen.pop(service.name, None)

    def _index_seeded(self, name: str) -> None:
        """Index the seeded state of service ``name`` before a change to it is compared."""
        instances = self._seeded.pop(name, None)
        if instances is not None:
            self._seen[name] = {i.id: (i, _seen(i)) for i in instances}

    def observe(
        self, services: Iterable[Service], keys: Iterable[tuple[str, str]] | None = None
    ) -> None:
        """Record how ``services`` (each with all its instances, as they now are) differ
        from how they were last seen; a service without instances has been deleted.

        ``keys`` (service, instance id), when given, names every instance that may have
        changed (a registry ``Change``'s keys): only those are looked at, so a heartbeat
        or a registration costs the same in a service of ten instances or ten thousand.
        """
        now = self._clock()
        only: dict[str, set[str]] | None = None
        if keys is not None:
            only = {}
            for name, instance_id in keys:
                only.setdefault(name, set()).add(instance_id)
        for service in services:
            ids = None if only is None else only.get(service.name)
            if ids is None or not service.instances:
                self._observe_all(now, service)
            else:
                self._observe_some(now, service, ids)

    def _observe_all(self, now: float, service: Service) -> None:
        name = service.name
        self._index_seeded(name)
        old = self._seen.pop(name, {})
        new: dict[str, tuple[Instance, _Seen]] = {}
        changed: list[tuple[Instance, _Seen | None, _Seen]] = []
        kept = 0  # instances of ``old`` still there
        for instance in service.instances:
            previous = old.get(instance.id)
            if previous is not None:
                kept += 1
                if previous[0] is instance:  # the same object: unchanged, cheaply
                    new[instance.id] = previous
                    continue
            after = _seen(instance)
            new[instance.id] = (instance, after)
            before = None if previous is None else previous[1]
            if before is None or before != after:
                changed.append((instance, before, after))
        if new:
            self._seen[name] = new
        if kept < len(old):
            for instance_id, (_, gone) in old.items():
                if instance_id not in new:
                    checks = tuple(CheckChange(cid, st, None, "") for cid, st in gone.checks)
                    self._add(StatusEvent(now, name, instance_id, gone.status, None, checks))
        for instance, before, after in changed:
            self._add(
                StatusEvent(
                    now,
                    name,
                    instance.id,
                    None if before is None else before.status,
                    after.status,
                    tuple(_check_changes(before, instance)),
                )
            )

    def _observe_some(self, now: float, service: Service, ids: set[str]) -> None:
        name = service.name
        self._index_seeded(name)
        seen = self._seen.setdefault(name, {})
        found = _find(service.instances, ids)
        for instance_id in sorted(ids):
            if instance_id not in found and instance_id in seen:
                gone = seen.pop(instance_id)[1]
                checks = tuple(CheckChange(cid, st, None, "") for cid, st in gone.checks)
                self._add(StatusEvent(now, name, instance_id, gone.status, None, checks))
        for instance_id in sorted(found):
            instance = found[instance_id]
            previous = seen.get(instance_id)
            if previous is not None and previous[0] is instance:
                continue
            after = _seen(instance)
            seen[instance_id] = (instance, after)
            before = None if previous is None else previous[1]
            if before is None or before != after:
                self._add(
                    StatusEvent(
                        now,
                        name,
                        instance_id,
                        None if before is None else before.status,
                        after.status,
                        tuple(_check_changes(before, instance)),
                    )
                )
        if not seen:
            del self._seen[name]

    def events(self, service: str | None = None, since: float | None = None) -> list[StatusEvent]:
        """The events kept, oldest first; only ``service``'s, only those after ``since``."""
        self._expire()
        return [
            event
            for event in self._events
            if (service is None or event.service == service)
            and (since is None or event.time > since)
        ]

    def _add(self, event: StatusEvent) -> None:
        self._events.append(event)
        self._expire()

    def _expire(self) -> None:
        horizon = self._clock() - self.retention
        while self._events and self._events[0].time < horizon:
            self._events.popleft()


_ID = operator.attrgetter("id")


def _find(instances: Sequence[Instance], ids: set[str]) -> dict[str, Instance]:
    """The instances with ``ids`` (those there are), by id: binary searches when the
    instances are in id order (as the registry holds them), a scan otherwise."""
    found: dict[str, Instance] = {}
    for instance_id in ids:
        at = bisect.bisect_left(instances, instance_id, key=_ID)
        if at == len(instances) or instances[at].id != instance_id:
            return {i.id: i for i in instances if i.id in ids}
        found[instance_id] = instances[at]
    return found


def _check_changes(before: _Seen | None, instance: Instance) -> Iterator[CheckChange]:
    """The checks whose status differs from ``before`` (added and removed ones too)."""
    old = dict(before.checks) if before is not None else {}
    for check in instance.checks:
        previous = old.pop(check.id, None)
        if previous is not check.status:
            yield CheckChange(check.id, previous, check.status, check.output)
    for cid, status in old.items():
        yield CheckChange(cid, status, None, "")
