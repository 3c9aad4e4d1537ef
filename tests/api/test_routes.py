"""The endpoints against a real registry: writes, reads, leases, and the 404/409/503 answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from api.support import START, Clock, stored

from srvdns.api.app import create_app
from srvdns.config import StaticInstanceConfig, StaticServiceConfig
from srvdns.errors import StoreUnavailableError
from srvdns.registry.registry import Registry

URL = "/v1/services/web/instances/web-1"


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


async def put(http: httpx.AsyncClient, url: str = URL, **fields: Any) -> httpx.Response:
    return await http.put(url, json={"address": "10.0.0.1", "port": 8080, **fields})


async def test_register_creates_then_replaces(http: httpx.AsyncClient, registry: Registry) -> None:
    created = await put(http, tags=["v1"])
    assert created.status_code == 201, created.text
    replaced = await put(http, port=9090)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["port"] == 9090
    assert replaced.json()["tags"] == []  # replaced wholesale
    (instance,) = registry.find_service("web").instances
    assert (instance.port, instance.tags) == (9090, ())


async def test_register_returns_the_stored_instance(http: httpx.AsyncClient) -> None:
    response = await put(http)
    assert response.json() == {
        "service": "web",
        "id": "web-1",
        "address": "10.0.0.1",
        "port": 8080,
        "tags": [],
        "meta": {},
        "weight": 1,
        "weights": {"passing": 1, "warning": 1},
        "priority": 0,
        "ttl": None,
        "status": "passing",
        "lease_expires": None,
        "lease_expires_unix": None,
        "lease_remaining": None,
        "registered_at": rfc3339(START),
        "registered_at_unix": START,
        "source": "api",
        "checks": [],
    }


async def test_register_normalizes(http: httpx.AsyncClient, registry: Registry) -> None:
    response = await http.put(
        "/v1/services/WeB/instances/Web_1.a",
        json={
            "address": "2001:DB8:0:0::0001",
            "port": 443,
            "tags": ["V2", "v2", "Primary"],
            "meta": {"Version": "1.2"},
            "weight": 10,
            "priority": 3,
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["service"] == "web"
    assert body["id"] == "Web_1.a"  # an id keeps its case
    assert body["address"] == "2001:db8::1"
    assert body["tags"] == ["v2", "primary"]
    assert body["meta"] == {"Version": "1.2"}
    assert (body["weight"], body["priority"]) == (10, 3)
    (instance,) = registry.find_service("web").instances
    assert instance.address == "2001:db8::1"
    assert instance.tags == ("v2", "primary")
    assert instance.meta == (("Version", "1.2"),)


async def test_lease_fields(http: httpx.AsyncClient) -> None:
    body = (await put(http, ttl="30s")).json()
    assert body["ttl"] == 30.0
    assert body["lease_expires_unix"] == START + 30
    assert body["lease_expires"] == rfc3339(START + 30)
    assert body["lease_expires"].endswith("Z")
    assert body["lease_remaining"] == 30.0


async def test_list_services(http: httpx.AsyncClient, clock: Clock) -> None:
    assert (await http.get("/v1/services")).json() == {"index": 1, "services": []}
    await put(http, "/v1/services/web/instances/a")
    await put(http, "/v1/services/web/instances/b", ttl="10s")
    await put(http, "/v1/services/db/instances/d", ttl="1m")
    clock.advance(11)  # web/b's lease lapses
    listed = (await http.get("/v1/services")).json()
    assert listed == {
        "index": 4,
        "services": [
            {"name": "db", "instances": 1, "healthy": 1},
            {"name": "web", "instances": 2, "healthy": 1},
        ],
    }


async def test_get_service_sorted_by_id(http: httpx.AsyncClient) -> None:
    for ident in ("c", "a", "b"):
        await put(http, f"/v1/services/web/instances/{ident}")
    response = await http.get("/v1/services/WEB")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "web"
    assert [i["id"] for i in body["instances"]] == ["a", "b", "c"]


async def test_lease_lapses_to_critical_and_heartbeat_renews(
    http: httpx.AsyncClient, clock: Clock
) -> None:
    await put(http, ttl="10s")
    clock.advance(9.5)
    (instance,) = (await http.get("/v1/services/web")).json()["instances"]
    assert instance["status"] == "passing"
    assert instance["lease_remaining"] == pytest.approx(0.5)

    clock.advance(0.5)  # at the expiry instant the lease has lapsed
    (instance,) = (await http.get("/v1/services/web")).json()["instances"]
    assert instance["status"] == "critical"
    assert instance["lease_remaining"] == 0.0
    assert (await http.get("/v1/services")).json()["services"][0]["healthy"] == 0

    beat = await http.put(f"{URL}/heartbeat")
    assert beat.status_code == 200, beat.text
    assert beat.json()["status"] == "passing"
    assert beat.json()["lease_expires_unix"] == START + 20
    assert beat.json()["lease_expires"] == rfc3339(START + 20)
    (instance,) = (await http.get("/v1/services/web")).json()["instances"]
    assert instance["status"] == "passing"


async def test_heartbeat_without_ttl_is_409(http: httpx.AsyncClient) -> None:
    await put(http)
    response = await http.put(f"{URL}/heartbeat")
    assert response.status_code == 409
    assert set(response.json()) == {"error"}


async def test_deregister(http: httpx.AsyncClient, registry: Registry) -> None:
    await put(http)
    await put(http, "/v1/services/web/instances/web-2")
    response = await http.delete(URL)
    assert response.status_code == 204
    assert response.content == b""
    assert stored(registry) == {("web", "web-2")}
    assert (await http.delete("/v1/services/web/instances/web-2")).status_code == 204
    assert (await http.get("/v1/services")).json() == {"index": 5, "services": []}
    assert (await http.get("/v1/services/web")).status_code == 404


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/v1/services/nothing"),
        ("DELETE", "/v1/services/nothing/instances/x"),
        ("DELETE", "/v1/services/web/instances/nobody"),
        ("PUT", "/v1/services/nothing/instances/x/heartbeat"),
        ("PUT", "/v1/services/web/instances/nobody/heartbeat"),
        ("GET", "/v1/nothing"),
        ("GET", "/v1/services/web/instances"),
    ],
)
async def test_unknown_is_404(http: httpx.AsyncClient, method: str, url: str) -> None:
    await put(http)
    response = await http.request(method, url)
    assert response.status_code == 404, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]


async def test_wrong_method_is_405_in_the_error_shape(http: httpx.AsyncClient) -> None:
    response = await http.post("/v1/services")
    assert response.status_code == 405
    assert response.json() == {"error": "method not allowed"}


async def test_static_instance_cannot_be_replaced_or_removed(
    http: httpx.AsyncClient, registry: Registry
) -> None:
    registry.sync_static(
        [
            StaticServiceConfig(
                name="pg",
                instances=(StaticInstanceConfig(id="pg-1", address="10.0.0.5", port=5432),),
            )
        ]
    )
    url = "/v1/services/pg/instances/pg-1"
    replaced = await put(http, url)
    assert replaced.status_code == 409, replaced.text
    assert set(replaced.json()) == {"error"}
    assert (await http.delete(url)).status_code == 409
    (instance,) = (await http.get("/v1/services/pg")).json()["instances"]
    assert (instance["address"], instance["source"]) == ("10.0.0.5", "static")


async def test_store_unavailable_is_503(
    http: httpx.AsyncClient, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(self: Registry, *args: object) -> None:
        raise StoreUnavailableError("the database is locked")

    for name in ("register", "deregister", "heartbeat"):
        monkeypatch.setattr(Registry, name, down)
    for response in (
        await put(http),
        await http.delete(URL),
        await http.put(f"{URL}/heartbeat"),
    ):
        assert response.status_code == 503
        assert response.json() == {"error": "the database is locked"}


async def test_healthz(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz(http: httpx.AsyncClient) -> None:
    response = await http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"listeners": "ok", "snapshot": "ok", "database": "ok"},
    }


async def test_readyz_names_what_is_wrong(
    http: httpx.AsyncClient, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(self: Registry, fn: object) -> None:
        raise StoreUnavailableError("the registry is closed")

    monkeypatch.setattr(Registry, "_submit", unreachable)
    response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "not ready",
        "checks": {"listeners": "ok", "snapshot": "ok", "database": "the registry is closed"},
    }


async def test_readyz_times_out_on_a_hung_database(registry: Registry) -> None:
    import asyncio
    import threading

    release = threading.Event()
    registry._submit(release.wait)  # the worker thread is stuck
    try:
        with pytest.raises(StoreUnavailableError, match=r"did not answer within 0\.1s"):
            await registry.ping(timeout=0.1)
    finally:
        release.set()
    await asyncio.wait_for(registry.ping(), 5)


async def test_openapi_describes_the_api(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    assert set(spec["paths"]) == {
        "/v1/services",
        "/v1/services/{service}",
        "/v1/services/{service}/instances/{id}",
        "/v1/services/{service}/instances/{id}/heartbeat",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/history",
        # the Consul-compatible subset (srvdns.api.consul)
        "/v1/agent/service/register",
        "/v1/agent/service/deregister/{service_id}",
        "/v1/agent/services",
        "/v1/agent/service/{service_id}",
        "/v1/agent/check/pass/{check_id}",
        "/v1/agent/check/warn/{check_id}",
        "/v1/agent/check/fail/{check_id}",
        "/v1/agent/check/update/{check_id}",
        "/v1/health/service/{service}",
        "/v1/catalog/services",
        "/v1/catalog/service/{service}",
    }
    put_op = spec["paths"]["/v1/services/{service}/instances/{id}"]["put"]
    assert put_op["security"] == [{"HTTPBearer": []}]
    assert spec["components"]["schemas"]["RegisterRequest"]["additionalProperties"] is False


async def test_a_bug_is_a_500_in_the_error_shape(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Registry) -> list[object]:
        raise RuntimeError("boom")

    monkeypatch.setattr(Registry, "services", broken)
    app = create_app(registry, token=None)
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://srvdns") as http:
        response = await http.get("/v1/services")
    assert response.status_code == 500
    assert response.json() == {"error": "internal server error"}
