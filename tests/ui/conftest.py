"""Fixtures of the status page tests: the API app over a real Registry, with zones."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from srvdns.api.app import create_app
from srvdns.config import parse
from srvdns.registry.registry import Registry


@pytest.fixture
def app(registry: Registry) -> FastAPI:
    app = create_app(registry, token=None)
    app.state.zones = parse(
        {"zone": [{"name": "service.local", "service_ttl": {"db": 30}}, {"name": "service.consul"}]}
    ).zone
    app.state.dns_addresses = [("127.0.0.1", 8053)]
    return app


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client
