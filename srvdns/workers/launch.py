"""How ``srvdns serve`` starts under ``--workers``: as the supervisor, or as one worker."""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import signal

from srvdns.config import Config
from srvdns.workers.role import WorkerRole

_PR_SET_PDEATHSIG = 1


def role_of(args: argparse.Namespace) -> WorkerRole | None:
    """The role the supervisor gave this process, or None when it was started by a user."""
    text = getattr(args, "worker_role", None)
    return None if text is None else WorkerRole.from_json(text)


def die_with_parent() -> None:
    """In a worker (before exec): get SIGTERM when the supervisor dies, however it dies,
    so that no worker keeps the DNS ports after it (Linux; elsewhere a no-op)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        return


def supervise(args: argparse.Namespace, count: int) -> int:
    """Run as the supervisor of ``count`` workers (see ``supervisor``)."""
    from srvdns.workers.supervisor import supervise as run

    return run(args, count)


async def serve_dns_worker(config: Config, role: WorkerRole) -> None:
    """Run as a DNS-only worker (see ``dnsworker``)."""
    from srvdns.workers.dnsworker import serve

    await serve(config, role)
