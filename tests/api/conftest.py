"""Fixtures of the API tests: a real Registry on a SQLite file, an injected clock, the app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from api.support import RESERVED, ClientFactory, Clock

from srvdns.api.app import create_app
from srvdns.registry.registry import Registry


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(tmp_path: Path, clock: Clock) -> Iterator[Registry]:
    opened = Registry.open(f"sqlite:///{tmp_path}/r.db", clock=clock)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def make_client(registry: Registry) -> ClientFactory:
    """``async with make_client(token=...) as http`` talks to a fresh app over ASGI."""

    @asynccontextmanager
    async def _make(
        token: str | None = None, reserved_names: frozenset[str] = RESERVED
    ) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(registry, token=token, reserved_names=reserved_names)
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://srvdns") as http:
            yield http

    return _make


@pytest.fixture
async def http(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app without a token (writes open)."""
    async with make_client() as client:
        yield client
