"""Helpers of the Consul API tests: an app with a fixed node name, and registration bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from api.support import RESERVED

from srvdns.api.app import create_app
from srvdns.config import HealthConfig
from srvdns.registry.registry import Registry

NODE = "srvdns-test"
REGISTER = "/v1/agent/service/register"


@asynccontextmanager
async def consul_client(
    registry: Registry, token: str | None = None, **options: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client of a fresh app over ASGI; the client's address is 127.0.0.1."""
    options.setdefault("health_defaults", HealthConfig())
    app = create_app(registry, token=token, reserved_names=RESERVED, node_name=NODE, **options)
    transport = httpx.ASGITransport(app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://srvdns") as http:
        yield http


def service(**fields: Any) -> dict[str, Any]:
    """A registration body as py-consul sends it (lower-case keys)."""
    body: dict[str, Any] = {"name": "web", "id": "web-1", "address": "10.0.0.1", "port": 8080}
    body.update(fields)
    return body
