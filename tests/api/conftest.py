"""Fixtures of the API tests: a real Registry on a SQLite file, an injected clock, the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from api.support import RESERVED, ClientFactory
from starlette.types import ASGIApp

from srvdns.api.app import create_app
from srvdns.api.fastpath import HeartbeatFastPath
from srvdns.api.fastregister import RegistrationFastPath
from srvdns.registry.registry import Registry


@pytest.fixture(params=["app", "fast-paths"])
def make_client(registry: Registry, request: pytest.FixtureRequest) -> ClientFactory:
    """``async with make_client(token=...) as http`` talks to a fresh app over ASGI: the
    application itself, and wrapped in the fast paths as ``srvdns serve`` serves it, so
    that every API test also holds for the fast paths' answers."""

    @asynccontextmanager
    async def _make(
        token: str | None = None, reserved_names: frozenset[str] = RESERVED
    ) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(registry, token=token, reserved_names=reserved_names)
        served: ASGIApp = app
        if request.param == "fast-paths":
            served = RegistrationFastPath(HeartbeatFastPath(app))
        transport = httpx.ASGITransport(served)
        async with httpx.AsyncClient(transport=transport, base_url="http://srvdns") as http:
            yield http

    return _make


@pytest.fixture
async def http(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app without a token (writes open)."""
    async with make_client() as client:
        yield client
