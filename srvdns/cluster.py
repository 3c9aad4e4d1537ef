"""What a node does when it shares its registry database with other srvdns nodes.

On SQLite a node is alone and its own writes keep its catalog current; nothing here runs.
On PostgreSQL several nodes may serve one registry, so each one follows the changes the
others commit: a ``ChangeFollower`` polls the change counter every ``follow_interval``,
and a ``notify.ChangeListener`` wakes it at once on each committed write.  Health checks
are spread over the live nodes by ``registry.ownership`` (each check runs on one node).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from srvdns.registry.follower import ChangeFollower
from srvdns.registry.notify import ChangeListener, is_postgres
from srvdns.registry.registry import Registry

log = logging.getLogger(__name__)


def is_shared(url: str) -> bool:
    """Whether a registry at ``url`` may be shared by several nodes (PostgreSQL)."""
    return is_postgres(url)


def heartbeat_flush(url: str, configured: float) -> float:
    """How long a node may hold lease renewals in memory: on a shared database never
    (0), so that a node judging a lease sees every renewal made through any node."""
    return 0.0 if is_shared(url) else configured


@dataclass
class Node:
    """The follower and the change listener of one node of a shared registry."""

    follower: ChangeFollower
    listener: ChangeListener

    @classmethod
    def join(cls, registry: Registry, url: str, follow_interval: float) -> Node:
        """Start following the changes of every node (on the running loop)."""
        follower = registry.follower(follow_interval)
        follower.start()
        listener = ChangeListener(url, asyncio.get_running_loop(), follower.wake)
        listener.start()
        log.info("following the shared registry (poll every %gs, woken by NOTIFY)", follow_interval)
        return cls(follower, listener)

    async def leave(self) -> None:
        """Stop following."""
        await self.follower.stop()
        await asyncio.to_thread(self.listener.stop)
