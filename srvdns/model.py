"""Plain data shared by the registry, the snapshot and the API: no ORM, no DNS."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field


class Status(enum.StrEnum):
    """Health of an instance or a check, in Consul's vocabulary; ordered from best to worst."""

    PASSING = "passing"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def severity(self) -> int:
        """0 for passing, 1 for warning, 2 for critical."""
        return _SEVERITY[self]


_SEVERITY = {Status.PASSING: 0, Status.WARNING: 1, Status.CRITICAL: 2}


def worst(statuses: Iterable[Status]) -> Status:
    """The worst of ``statuses``; PASSING when there are none (no checks: healthy)."""
    result = Status.PASSING
    for status in statuses:
        if _SEVERITY[status] > _SEVERITY[result]:
            result = status
    return result


class Source(enum.StrEnum):
    """Who owns an instance: the HTTP API, or a ``[[zone.service]]`` block of the config."""

    API = "api"
    STATIC = "static"


class CheckKind(enum.StrEnum):
    """How a check decides an instance's health."""

    HTTP = "http"
    """A request to a URL: 2xx passing, 429 warning, anything else critical."""
    TCP = "tcp"
    """A TCP connect: accepted is passing."""
    TTL = "ttl"
    """A heartbeat lease: passing while the instance renews it, critical once it lapses."""


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """What one health check of an instance is, with every default already applied.

    ``target`` is the URL of an HTTP check or the ``host:port`` of a TCP check (empty for
    TTL).  A TTL check's lease length is ``ttl`` (the instance's ``ttl`` too); its
    ``interval`` equals it and its ``timeout`` is 0.  ``deregister_critical_after`` is how
    long the check may stay critical before the instance is removed (None: never).
    ``name`` and ``notes`` are free text for people (the Consul API's check ``Name`` and
    ``Notes``); empty unless given.
    """

    id: str
    kind: CheckKind
    interval: float
    timeout: float
    target: str = ""
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    tls_skip_verify: bool = False
    ttl: float | None = None
    success_before_passing: int = 1
    failures_before_critical: int = 1
    deregister_critical_after: float | None = None
    initial_status: Status = Status.CRITICAL
    name: str = ""
    notes: str = ""


@dataclass(frozen=True, slots=True)
class Check:
    """A check and its last recorded state.

    ``successes`` and ``failures`` count consecutive non-critical and critical results
    (flap damping); ``last_change`` is the wall-clock time ``status`` last changed.
    """

    spec: CheckSpec
    status: Status
    output: str = ""
    last_change: float = 0.0
    successes: int = 0
    failures: int = 0

    @property
    def id(self) -> str:
        """The check's id, unique within its instance."""
        return self.spec.id


@dataclass(frozen=True, slots=True)
class Instance:
    """One registered endpoint of a service, as the registry holds it.

    ``service`` and ``tags`` are lower-case DNS labels; ``id`` keeps the case it was
    registered with.  ``ttl`` is the heartbeat lease in seconds (``None``: no lease);
    ``last_heartbeat`` is the wall-clock time (Unix seconds) the lease last started.
    ``status`` is the stored health, the worst of the checks' stored statuses (passing
    without checks); a lapsed lease overrides it (see ``effective_status``).  ``weight``
    is the SRV weight while passing, ``warning_weight`` while warning.
    """

    service: str
    id: str
    address: str
    port: int
    tags: tuple[str, ...] = ()
    meta: tuple[tuple[str, str], ...] = ()
    weight: int = 1
    priority: int = 0
    ttl: float | None = None
    last_heartbeat: float = 0.0
    status: Status = Status.PASSING
    source: Source = Source.API
    registered_at: float = 0.0
    target: str = field(default="", compare=False)
    warning_weight: int = 1
    checks: tuple[Check, ...] = ()

    @property
    def lease_expires(self) -> float | None:
        """Wall-clock time the heartbeat lease runs out, or None without a lease."""
        if self.ttl is None:
            return None
        return self.last_heartbeat + self.ttl

    def effective_status(self, now: float) -> Status:
        """The stored status, or CRITICAL once the heartbeat lease has lapsed."""
        expires = self.lease_expires
        if expires is not None and now >= expires:
            return Status.CRITICAL
        return self.status

    def is_answerable(self, now: float) -> bool:
        """Whether DNS may hand this instance out at ``now`` (passing or warning)."""
        return self.effective_status(now) is not Status.CRITICAL

    @property
    def srv_weight(self) -> int:
        """The SRV weight DNS publishes: ``warning_weight`` while warning, else ``weight``."""
        return self.warning_weight if self.status is Status.WARNING else self.weight

    def check_status(self, check: Check, now: float) -> Status:
        """A check's status at ``now``: a TTL check is critical once the lease has lapsed."""
        if check.spec.kind is CheckKind.TTL:
            expires = self.lease_expires
            if expires is not None and now >= expires:
                return Status.CRITICAL
        return check.status


@dataclass(frozen=True, slots=True)
class Service:
    """A service name and all its registered instances, healthy or not."""

    name: str
    instances: tuple[Instance, ...] = ()
