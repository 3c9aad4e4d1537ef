"""Plain data shared by the registry, the snapshot and the API: no ORM, no DNS."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Status(enum.StrEnum):
    """Health of an instance, in Consul's vocabulary; ordered from best to worst."""

    PASSING = "passing"
    WARNING = "warning"
    CRITICAL = "critical"


class Source(enum.StrEnum):
    """Who owns an instance: the HTTP API, or a ``[[zone.service]]`` block of the config."""

    API = "api"
    STATIC = "static"


@dataclass(frozen=True, slots=True)
class Instance:
    """One registered endpoint of a service, as the registry holds it.

    ``service`` and ``tags`` are lower-case DNS labels; ``id`` keeps the case it was
    registered with.  ``ttl`` is the heartbeat lease in seconds (``None``: no lease);
    ``last_heartbeat`` is the wall-clock time (Unix seconds) the lease last started.
    ``status`` is the stored health; a lapsed lease overrides it (see ``effective_status``).
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
        """Whether DNS may hand this instance out at ``now``."""
        return self.effective_status(now) is not Status.CRITICAL


@dataclass(frozen=True, slots=True)
class Service:
    """A service name and all its registered instances, healthy or not."""

    name: str
    instances: tuple[Instance, ...] = ()
