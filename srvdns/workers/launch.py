"""How ``srvdns serve`` starts under ``--workers``: as the supervisor, or as one worker."""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
from collections.abc import Callable

from srvdns.config import Config
from srvdns.workers.role import WorkerRole

_PR_SET_PDEATHSIG = 1


def role_of(args: argparse.Namespace) -> WorkerRole | None:
    """The role the supervisor gave this process, or None when it was started by a user."""
    text = getattr(args, "worker_role", None)
    return None if text is None else WorkerRole.from_json(text)


def _load_prctl() -> Callable[..., int] | None:
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None
    return prctl


_PRCTL = _load_prctl()
"""Looked up once in the supervisor: the child, between fork and exec, only calls it."""

_SIGTERM = int(signal.SIGTERM)


def die_with_parent(parent: int) -> None:
    """In a worker, between fork and exec: get SIGTERM when the supervisor (pid
    ``parent``) dies, however it dies, so that no worker keeps the DNS ports after it
    (Linux; elsewhere a no-op).  Exits at once if the supervisor is already gone."""
    if _PRCTL is None:
        return
    _PRCTL(_PR_SET_PDEATHSIG, _SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def supervise(args: argparse.Namespace, count: int) -> int:
    """Run as the supervisor of ``count`` workers (see ``supervisor``)."""
    from srvdns.workers.supervisor import supervise as run

    return run(args, count)


async def serve_dns_worker(config: Config, role: WorkerRole) -> None:
    """Run as a DNS-only worker (see ``dnsworker``)."""
    from srvdns.workers.dnsworker import serve

    await serve(config, role)
