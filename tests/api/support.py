"""Helpers shared by the API tests."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx

from srvdns.registry.registry import Registry

TOKEN = "test-token-0123456789"
RESERVED = frozenset({"ns"})
START = 1_700_000_000.0

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
"""``make_client(token=..., reserved_names=...)``: an async context giving an httpx client."""


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def stored(registry: Registry) -> set[tuple[str, str]]:
    """Every (service, id) the registry holds."""
    return {(i.service, i.id) for s in registry.services() for i in s.instances}
