"""The async face of the registry store that the API, the health loop and the runtime use.

INTERFACE CONTRACT (bodies to be implemented): every write runs as one transaction on a
single worker thread (so the event loop never blocks on the database), and only after it
committed is the catalog holder patched and the call returned.  Reads come from the
in-memory catalog, never from the database.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from srvdns.catalog import CatalogHolder
from srvdns.config import StaticServiceConfig
from srvdns.model import Instance, Service


class Registry:
    """Registry store + catalog holder, for one process."""

    holder: CatalogHolder

    @classmethod
    def open(
        cls,
        url: str,
        *,
        clock: Callable[[], float] = time.time,
        upgrade: bool = True,
    ) -> Registry:
        """Connect (synchronously, before the loop serves), apply migrations when
        ``upgrade`` (SQLite by default; ``srvdns db upgrade`` otherwise), and load the catalog."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop the worker thread and dispose of the engine."""
        raise NotImplementedError

    def sync_static(self, services: Sequence[StaticServiceConfig]) -> None:
        """Make the registry's static instances exactly those of the config (synchronous,
        at start-up): upsert each, delete static instances no longer declared."""
        raise NotImplementedError

    async def register(self, instance: Instance) -> Instance:
        """Create or replace ``instance`` (keyed by service + id).

        ``registered_at`` and ``last_heartbeat`` are set to the clock's now, ``status`` to
        PASSING, ``source`` to API.  Raises ConflictError if a static instance has that id.
        Returns the stored instance.
        """
        raise NotImplementedError

    async def deregister(self, service: str, instance_id: str) -> None:
        """Remove an instance; a service left without instances disappears.

        Raises NotFoundError (unknown service or id) or ConflictError (static instance).
        """
        raise NotImplementedError

    async def heartbeat(self, service: str, instance_id: str) -> Instance:
        """Renew the instance's TTL lease (``last_heartbeat`` = now), persisted before returning.

        Raises NotFoundError, or ConflictError when the instance has no ``ttl``.
        """
        raise NotImplementedError

    def services(self) -> list[Service]:
        """Every service with all its instances, from the current catalog, sorted by name."""
        raise NotImplementedError

    def find_service(self, name: str) -> Service:
        """One service from the current catalog; raises NotFoundError."""
        raise NotImplementedError

    def now(self) -> float:
        """The registry's clock (wall-clock Unix seconds)."""
        raise NotImplementedError
