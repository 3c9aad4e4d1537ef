"""How many TCP connections the process's open-file limit (RLIMIT_NOFILE) can hold.

Every TCP client costs a file descriptor.  When ``tcp_max_connections`` is above what
the soft limit leaves (1024 by default under systemd and most shells), ``accept()``
fails with EMFILE before the cap is reached: asyncio then stops accepting for a second
at a time and logs each failure, so that TCP stalls for every client while the
database, the API and health checks cannot open files either.  So, as nginx's
``worker_rlimit_nofile`` and Go's runtime do, the soft limit is raised towards the hard
one, and if that is still too low the connection cap is lowered to fit, with a warning.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass

log = logging.getLogger(__name__)

RESERVED = 256
"""Descriptors kept for everything but DNS over TCP: listeners, the database, API
clients, health checks, forwarding.  A quarter of a smaller limit."""

ACCEPT_BATCH = 100
"""asyncio's default listen backlog, which is also how many connections it accepts per
readiness event, before any of them is counted against the cap (or one closed for it)."""

_BATCHES = 3
"""Accept batches that may land before the connections of the first are counted."""


@dataclass(frozen=True, slots=True)
class TcpBudget:
    """What the open-file limit allows: the connection cap, and how many connections
    asyncio may accept per readiness event (its ``backlog``)."""

    max_connections: int
    accept_batch: int


def tcp_budget(wanted: int) -> TcpBudget:
    """The TCP connection cap and accept batch to use for a configured ``wanted``.

    ``wanted`` and asyncio's default batch when the soft RLIMIT_NOFILE holds them plus
    ``RESERVED`` (after raising the soft limit up to the hard one if needed); else a
    batch of an eighth of what is left and a cap of what fits besides, at least 1.
    """
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):  # pragma: no cover - no such limit on this platform
        return TcpBudget(wanted, ACCEPT_BATCH)
    infinity = resource.RLIM_INFINITY
    needed = wanted + RESERVED + _BATCHES * ACCEPT_BATCH
    if soft != infinity and soft < needed:
        target = needed if hard == infinity else min(needed, hard)
        if target > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (OSError, ValueError) as exc:
                log.debug("cannot raise the open-file limit to %d: %s", target, exc)
    if soft == infinity or soft >= needed:
        return TcpBudget(wanted, ACCEPT_BATCH)
    left = soft - min(RESERVED, soft // 4)
    batch = max(1, min(ACCEPT_BATCH, left // 8))
    budget = max(1, min(wanted, left - _BATCHES * batch))
    if budget < wanted:
        log.warning(
            "tcp_max_connections = %d does not fit the open-file limit (%d, hard %s): "
            "at most %d TCP connections at once; raise the limit (LimitNOFILE= in the "
            "systemd unit, ulimit -n) to allow more",
            wanted,
            soft,
            "unlimited" if hard == infinity else hard,
            budget,
        )
    return TcpBudget(budget, batch)
