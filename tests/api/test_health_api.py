"""Checks and weights in the registration API, GET with live check state, and /metrics."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest
from api.support import START, stored
from prometheus_client import CollectorRegistry, Counter

from srvdns.api.app import create_app
from srvdns.config import HealthConfig
from srvdns.model import Check, Status
from srvdns.registry.registry import Registry

URL = "/v1/services/web/instances/web-1"


async def put(http: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    return await http.put(URL, json={"address": "10.0.0.1", "port": 8080, **fields})


def fields(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {e["field"]: e["message"] for e in response.json()["errors"]}


async def test_register_with_checks(http: httpx.AsyncClient) -> None:
    response = await put(
        http,
        check={"http": "/health", "interval": "2s"},
        checks=[{"tcp": "10.0.0.1:8080", "id": "port"}, {"http": "/ready", "method": "HEAD"}],
        ttl="30s",
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "critical"  # until the first results
    checks = {c["id"]: c for c in body["checks"]}
    assert sorted(checks) == ["http", "http-2", "port", "ttl"]
    assert checks["http"] == {
        "id": "http",
        "kind": "http",
        "status": "critical",
        "output": "",
        "last_change": "2023-11-14T22:13:20.000Z",
        "last_change_unix": START,
        "successes": 0,
        "failures": 0,
        "http": "http://10.0.0.1:8080/health",
        "method": "GET",
        "headers": {},
        "tls_skip_verify": False,
        "tcp": None,
        "ttl": None,
        "interval": 2.0,
        "timeout": 2.0,
        "success_before_passing": 2,
        "failures_before_critical": 1,
        "deregister_critical_after": None,
        "initial_status": "critical",
    }
    assert checks["http-2"]["method"] == "HEAD"
    assert (checks["port"]["kind"], checks["port"]["tcp"]) == ("tcp", "10.0.0.1:8080")
    assert (checks["ttl"]["status"], checks["ttl"]["ttl"]) == ("passing", 30.0)
    assert body["ttl"] == 30.0


async def test_health_defaults_come_from_the_config(registry: Registry) -> None:
    defaults = HealthConfig(interval=5, timeout=1, initial_status=Status.PASSING)
    app = create_app(registry, token=None, health_defaults=defaults)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://srvdns") as http:
        body = (await put(http, check={"tcp": "10.0.0.1:1"})).json()
    (check,) = body["checks"]
    assert (check["interval"], check["timeout"], check["status"]) == (5.0, 1.0, "passing")
    assert body["status"] == "passing"


async def test_weights(http: httpx.AsyncClient, registry: Registry) -> None:
    body = (await put(http, weights={"passing": 7, "warning": 2})).json()
    assert (body["weight"], body["weights"]) == (7, {"passing": 7, "warning": 2})
    body = (await put(http, weight=5, weights={"warning": 0})).json()
    assert body["weights"] == {"passing": 5, "warning": 0}
    (instance,) = registry.find_service("web").instances
    assert (instance.weight, instance.warning_weight) == (5, 0)
    body = (await put(http, weight=5, weights={"passing": 5})).json()
    assert body["weights"] == {"passing": 5, "warning": 1}


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"check": {"http": "/", "interval": "1s", "timeout": "2s"}}, "check", "longer than"),
        ({"check": {"http": "/", "interval": "soon"}}, "check.interval", "not a duration"),
        ({"check": {"tcp": "a:1", "bogus": 1}}, "check.bogus", "unknown field"),
        ({"check": {}}, "check", "exactly one of http, tcp or ttl"),
        ({"checks": [{"http": "/"}, {"http": "ftp://x/"}]}, "checks.1", "http:// or https://"),
        ({"checks": [{"http": "/", "method": 1}]}, "checks.0.method", "valid string"),
        ({"checks": [{"ttl": "5s"}], "ttl": "5s"}, "ttl", "ttl is a ttl check"),
        ({"checks": [{"ttl": "5s"}, {"ttl": "9s"}]}, "checks", "at most one ttl check"),
        ({"checks": [{"id": "a", "http": "/"}, {"id": "a", "tcp": "b:1"}]}, "checks", "two"),
        ({"checks": [{"http": "/"}] * 17}, "checks", "at most 16"),
        ({"checks": {"http": "/"}}, "checks", "valid list"),
        ({"weight": 3, "weights": {"passing": 4}}, "weights.passing", "disagree"),
        ({"weights": {"warning": -1}}, "weights.warning", "greater than or equal to 0"),
        ({"weights": {"degraded": 1}}, "weights.degraded", "unknown field"),
    ],
)
async def test_bad_checks_and_weights(
    http: httpx.AsyncClient, registry: Registry, extra: dict[str, Any], field: str, message: str
) -> None:
    response = await put(http, **extra)
    errors = fields(response)
    assert field in errors, errors
    assert message in errors[field]
    assert stored(registry) == set()


class FakeHealth:
    """What the API reads from a running health loop."""

    def __init__(self) -> None:
        self.live: dict[tuple[str, str], dict[str, Check]] = {}
        self.zones: list[str] = []

    def states(self, service: str, instance_id: str) -> dict[str, Check]:
        return self.live.get((service, instance_id), {})

    def panic_zones(self, service: str) -> list[str]:
        return self.zones


async def test_get_shows_the_live_state_of_checks_and_panic(registry: Registry) -> None:
    health = FakeHealth()
    app = create_app(registry, token=None, health=health)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://srvdns") as http:
        await put(http, check={"http": "/"})
        (instance,) = registry.find_service("web").instances
        (check,) = instance.checks
        health.live["web", "web-1"] = {
            "http": replace(check, status=Status.CRITICAL, output="500", failures=3)
        }
        health.zones = ["service.local"]
        body = (await http.get("/v1/services/web")).json()
    assert (body["panic"], body["panic_zones"]) == (True, ["service.local"])
    (shown,) = body["instances"][0]["checks"]
    assert (shown["output"], shown["failures"], shown["successes"]) == ("500", 3, 0)


async def test_metrics_endpoint(registry: Registry) -> None:
    metrics = CollectorRegistry()
    Counter("srvdns_test_things", "Things.", registry=metrics).inc(3)
    app = create_app(registry, token=None, metrics=metrics)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://srvdns") as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "srvdns_test_things_total 3.0" in response.text
