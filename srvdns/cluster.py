"""What a node does when it shares its registry database with other srvdns nodes.

On SQLite a node is alone and its own writes keep its catalog current; nothing here runs.
On PostgreSQL several nodes may serve one registry, so each one

* follows the changes the others commit: a ``ChangeFollower`` polls the change counter
  every ``follow_interval``, and a ``notify.ChangeListener`` wakes it at once on each
  committed write;
* runs only its share of the health checks: every third of ``check_lease`` it renews its
  check leases and claims free ones (``registry.ownership``); the health loop asks
  ``Node.owns`` before each run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from srvdns.config import ServerConfig
from srvdns.errors import StoreUnavailableError
from srvdns.registry import ownership
from srvdns.registry.engine import create_engine
from srvdns.registry.follower import ChangeFollower
from srvdns.registry.notify import ChangeListener, is_postgres
from srvdns.registry.ownership import CheckKey, Leases
from srvdns.registry.registry import Registry
from srvdns.registry.repository import store_errors

log = logging.getLogger(__name__)


def is_shared(url: str) -> bool:
    """Whether a registry at ``url`` may be shared by several nodes (PostgreSQL)."""
    return is_postgres(url)


def heartbeat_flush(url: str, configured: float) -> float:
    """How long a node may hold lease renewals in memory: on a shared database never
    (0), so that a node judging a lease sees every renewal made through any node."""
    return 0.0 if is_shared(url) else configured


def default_node_name() -> str:
    """Host name and process id: unique among the nodes, new at every start."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class Node:
    """The follower, the change listener and the check leases of one node."""

    registry: Registry
    name: str
    lease: float
    follower: ChangeFollower
    listener: ChangeListener
    engine: Engine
    leases: Leases = field(default_factory=Leases)
    clock: Callable[[], float] = time.time
    _task: asyncio.Task[None] | None = None
    _failing: bool = False
    _rng: random.Random = field(default_factory=random.Random)

    @classmethod
    async def join(cls, registry: Registry, url: str, settings: ServerConfig) -> Node:
        """Start following the changes of every node and take a first share of the
        checks (on the running loop)."""
        follower = registry.follower(settings.follow_interval)
        follower.start()
        listener = ChangeListener(url, asyncio.get_running_loop(), follower.wake)
        listener.start()
        node = cls(
            registry,
            settings.node_name or default_node_name(),
            settings.check_lease,
            follower,
            listener,
            create_engine(url),
        )
        await node.renew()
        node._task = asyncio.get_running_loop().create_task(node._run(), name="check-leases")
        log.info(
            "node %s: following the shared registry (poll every %gs, woken by NOTIFY), "
            "%d health checks leased for %gs",
            node.name,
            settings.follow_interval,
            len(node.leases.owned),
            node.lease,
        )
        return node

    def owns(self, key: CheckKey) -> bool:
        """Whether this node runs health check ``key`` now."""
        return self.leases.owns(key, self.clock())

    async def renew(self) -> None:
        """One lease round: renew, release beyond the fair share, claim free checks."""
        started = self.clock()
        catalog = self.registry.holder.current  # an immutable snapshot

        def transaction() -> ownership.Round:
            wanted = ownership.checks_of(catalog)
            for attempt in (1, 2):  # once more after a conflict with another node's round
                try:
                    with store_errors("renew the check leases"), self.engine.begin() as conn:
                        return ownership.lease_round(
                            conn, self.name, wanted, started, self.lease, self._rng
                        )
                except StoreUnavailableError:
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")

        try:
            result = await asyncio.to_thread(transaction)
        except StoreUnavailableError as exc:
            if not self._failing:
                log.warning("node %s: %s; its checks stop when their leases end", self.name, exc)
                self._failing = True
            return
        if self._failing:
            log.info("node %s: check leases renewed again", self.name)
            self._failing = False
        self.leases.update(result, started, self.lease)
        if result.claimed or result.released:
            log.info(
                "node %s: %d health checks (%+d, -%d; %d live nodes, fair share %d)",
                self.name,
                len(result.owned),
                result.claimed,
                result.released,
                result.live_nodes,
                result.share,
            )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            await self.renew()

    async def leave(self) -> None:
        """Stop following and hand this node's checks back at once (a clean shutdown)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.leases = Leases()
        await self.follower.stop()
        await asyncio.to_thread(self.listener.stop)

        def release() -> None:
            with store_errors("release the check leases"), self.engine.begin() as conn:
                ownership.leave(conn, self.name)

        try:
            await asyncio.to_thread(release)
        except StoreUnavailableError as exc:
            log.warning("node %s: %s; its checks move when their leases end", self.name, exc)
        finally:
            self.engine.dispose()
