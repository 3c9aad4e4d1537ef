"""Heartbeats acknowledged from memory: the renewal itself, and the buffer that holds the
renewals until the registry's next transaction persists them.

A heartbeat that only moves a running lease forward changes no DNS answer and no status,
so writing each one in a transaction of its own buys nothing but a bound on what a crash
can lose.  The registry applies such a renewal to the catalog at once, keeps it here, and
persists everything buffered with its next transaction (at the latest after
``heartbeat_flush`` seconds).  A crash loses at most the renewals of that window: the
lease then ends up to ``heartbeat_flush`` seconds earlier than acknowledged, never later.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

from srvdns.catalog import Catalog
from srvdns.model import Check, CheckKind, Instance, Service, Status
from srvdns.registry.repository import LeaseRenewal


def renew(
    instance: Instance, now: float, status: Status, output: str
) -> tuple[Instance, Check] | None:
    """``instance`` with its lease restarted at ``now`` and its ttl check given ``output``
    and the next counters, and that check; None when the heartbeat would change more
    than that (no lease, a lapsed lease, a ttl check whose status changes), which needs
    a transaction.  The same rule as ``repository.heartbeat``, for the cases where it
    bumps no index."""
    expires = instance.lease_expires
    if expires is None or now >= expires or now < instance.last_heartbeat:
        return None
    checks = list(instance.checks)
    for n, check in enumerate(checks):
        if check.spec.kind is CheckKind.TTL:
            if check.status is not status:
                return None
            critical = status is Status.CRITICAL
            renewed = replace(
                check,
                output=output,
                successes=0 if critical else check.successes + 1,
                failures=check.failures + 1 if critical else 0,
            )
            checks[n] = renewed
            return replace(instance, last_heartbeat=now, checks=tuple(checks)), renewed
    return None


def newest_leases(service: Service, current: Catalog) -> Service:
    """``service`` as a write read it back, with each lease no older than the one
    ``current`` holds: a renewal acknowledged from memory while the write ran may not have
    reached the database it read."""
    view = current.get_service(service.name)
    if view is None:
        return service
    instances = list(service.instances)
    changed = False
    for n, instance in enumerate(instances):
        label = view.target_of.get(instance.id)
        held = None if label is None else view.targets[label]
        if (
            held is not None
            and held.ttl is not None
            and held.ttl == instance.ttl
            and held.last_heartbeat > instance.last_heartbeat
        ):
            instances[n] = replace(instance, last_heartbeat=held.last_heartbeat)
            changed = True
    return Service(service.name, tuple(instances)) if changed else service


class RenewalBuffer:
    """Renewals waiting to be persisted, the newest per instance; thread-safe (the loop
    adds, the registry's worker thread takes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], LeaseRenewal] = {}

    def __bool__(self) -> bool:
        return bool(self._pending)

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, renewal: LeaseRenewal) -> None:
        """Hold ``renewal`` (it replaces an older one of the same instance)."""
        with self._lock:
            self._pending[renewal.service, renewal.instance_id] = renewal

    def take(self) -> list[LeaseRenewal]:
        """Everything held, which is then no longer held."""
        if not self._pending:  # most transactions: no lock to take (one added meanwhile
            return []  # waits for the next, as it would had it come just after the take)
        with self._lock:
            taken, self._pending = self._pending, {}
        return list(taken.values())

    def restore(self, renewals: Sequence[LeaseRenewal]) -> None:
        """Hold again renewals whose transaction failed (newer ones added meanwhile win)."""
        with self._lock:
            for renewal in renewals:
                key = (renewal.service, renewal.instance_id)
                held = self._pending.get(key)
                if held is None or held.at < renewal.at:
                    self._pending[key] = renewal
