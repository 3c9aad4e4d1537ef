"""Every validation rule of PUT /v1/services/{service}/instances/{id}: a 4xx naming the
field, the one error shape, and nothing stored."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from api.support import stored

from srvdns.registry.registry import Registry

GOOD: dict[str, Any] = {"address": "10.0.0.1", "port": 8080}


def body(**changes: Any) -> dict[str, Any]:
    return {**GOOD, **changes}


def field_errors(response: httpx.Response) -> dict[str, str]:
    payload = response.json()
    assert payload["error"] == "invalid request"
    assert set(payload) == {"error", "errors"}
    for entry in payload["errors"]:
        assert set(entry) == {"field", "message"}
        assert entry["message"]
    return {e["field"]: e["message"] for e in payload["errors"]}


BAD_BODIES = [
    pytest.param(body(address="10.0.0"), "address", id="address-short-ipv4"),
    pytest.param(body(address="web.example.com"), "address", id="address-hostname"),
    pytest.param(body(address=""), "address", id="address-empty"),
    pytest.param(body(address="fe80::1%eth0"), "address", id="address-scope-id"),
    pytest.param(body(address=167772161), "address", id="address-number"),
    pytest.param(body(port=0), "port", id="port-0"),
    pytest.param(body(port=65536), "port", id="port-65536"),
    pytest.param(body(port=-1), "port", id="port-negative"),
    pytest.param(body(port="8080"), "port", id="port-string"),
    pytest.param(body(port=80.5), "port", id="port-fraction"),
    pytest.param(body(port=True), "port", id="port-bool"),
    pytest.param(body(weight=-1), "weight", id="weight-negative"),
    pytest.param(body(weight=65536), "weight", id="weight-65536"),
    pytest.param(body(priority=-1), "priority", id="priority-negative"),
    pytest.param(body(priority=65536), "priority", id="priority-65536"),
    pytest.param(body(tags=["v_2"]), "tags.0", id="tag-underscore"),
    pytest.param(body(tags=["ok", "-edge"]), "tags.1", id="tag-leading-dash"),
    pytest.param(body(tags=["edge-"]), "tags.0", id="tag-trailing-dash"),
    pytest.param(body(tags=[""]), "tags.0", id="tag-empty"),
    pytest.param(body(tags=["a" * 64]), "tags.0", id="tag-64-chars"),
    pytest.param(body(tags=["a.b"]), "tags.0", id="tag-dot"),
    pytest.param(body(tags=[7]), "tags.0", id="tag-number"),
    pytest.param(body(tags="v2"), "tags", id="tags-not-a-list"),
    pytest.param(body(tags=[f"t{n}" for n in range(65)]), "tags", id="tags-65"),
    pytest.param(body(ttl="0s"), "ttl", id="ttl-zero"),
    pytest.param(body(ttl=0), "ttl", id="ttl-zero-number"),
    pytest.param(body(ttl=-5), "ttl", id="ttl-negative"),
    pytest.param(body(ttl="-5s"), "ttl", id="ttl-negative-string"),
    pytest.param(body(ttl="soon"), "ttl", id="ttl-word"),
    pytest.param(body(ttl="5x"), "ttl", id="ttl-bad-unit"),
    pytest.param(body(ttl="2d"), "ttl", id="ttl-over-a-day"),
    pytest.param(body(ttl=True), "ttl", id="ttl-bool"),
    pytest.param(body(meta={f"k{n}": "v" for n in range(65)}), "meta", id="meta-65-entries"),
    pytest.param(body(meta={"a b": "v"}), "meta.a b", id="meta-key-space"),
    pytest.param(body(meta={"": "v"}), "meta.", id="meta-key-empty"),
    pytest.param(body(meta={"k" * 129: "v"}), "meta." + "k" * 129, id="meta-key-129"),
    pytest.param(body(meta={"k": "v" * 513}), "meta.k", id="meta-value-513"),
    pytest.param(body(meta={"k": "line\nbreak"}), "meta.k", id="meta-value-control"),
    pytest.param(body(meta={"k": 5}), "meta.k", id="meta-value-number"),
    pytest.param(body(meta=["k=v"]), "meta", id="meta-not-an-object"),
    pytest.param(body(health="passing"), "health", id="unknown-field"),
    pytest.param(body(service="web"), "service", id="service-in-body"),
    pytest.param({"port": 8080}, "address", id="missing-address"),
    pytest.param({"address": "10.0.0.1"}, "port", id="missing-port"),
    pytest.param(["10.0.0.1", 8080], "body", id="body-a-list"),
    pytest.param("10.0.0.1:8080", "body", id="body-a-string"),
]


@pytest.mark.parametrize(("payload", "field"), BAD_BODIES)
async def test_bad_body_is_422_naming_the_field(
    http: httpx.AsyncClient, registry: Registry, payload: Any, field: str
) -> None:
    response = await http.put("/v1/services/web/instances/web-1", json=payload)
    assert response.status_code == 422, response.text
    assert field in field_errors(response)
    assert stored(registry) == set()


BAD_PATHS = [
    pytest.param("-web", "web-1", "service", id="service-leading-dash"),
    pytest.param("web-", "web-1", "service", id="service-trailing-dash"),
    pytest.param("we_b", "web-1", "service", id="service-underscore"),
    pytest.param("w" * 64, "web-1", "service", id="service-64-chars"),
    pytest.param("wéb", "web-1", "service", id="service-non-ascii"),
    pytest.param("we b", "web-1", "service", id="service-space"),
    pytest.param("ns", "web-1", "service", id="service-reserved"),
    pytest.param("NS", "web-1", "service", id="service-reserved-upper"),
    pytest.param("web", "web 1", "id", id="id-space"),
    pytest.param("web", "web@1", "id", id="id-at"),
    pytest.param("web", "i" * 65, "id", id="id-65-chars"),
    pytest.param("web", "wéb-1", "id", id="id-non-ascii"),
    pytest.param("web", "web:1", "id", id="id-colon"),
]


@pytest.mark.parametrize(("service", "ident", "field"), BAD_PATHS)
async def test_bad_service_or_id_is_422(
    http: httpx.AsyncClient, registry: Registry, service: str, ident: str, field: str
) -> None:
    response = await http.put(f"/v1/services/{service}/instances/{ident}", json=GOOD)
    assert response.status_code == 422, response.text
    assert field in field_errors(response)
    assert stored(registry) == set()


async def test_every_bad_field_is_named_at_once(http: httpx.AsyncClient) -> None:
    response = await http.put(
        "/v1/services/-web/instances/web 1",
        json={"address": "nope", "port": 0, "weight": -1, "tags": ["_"], "extra": 1},
    )
    assert response.status_code == 422
    assert set(field_errors(response)) == {
        "service",
        "id",
        "address",
        "port",
        "weight",
        "tags.0",
        "extra",
    }


@pytest.mark.parametrize("raw", [b"{", b"{'address': '10.0.0.1'}", b"port=80", b"\xff\xfe"])
async def test_unparseable_json_is_400(
    http: httpx.AsyncClient, registry: Registry, raw: bytes
) -> None:
    response = await http.put(
        "/v1/services/web/instances/web-1",
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    payload = response.json()
    assert payload["error"] == "the body is not valid JSON"
    assert [e["field"] for e in payload["errors"]] == ["body"]
    assert stored(registry) == set()


async def test_missing_body_is_422(http: httpx.AsyncClient, registry: Registry) -> None:
    response = await http.put("/v1/services/web/instances/web-1")
    assert response.status_code == 422
    assert "body" in field_errors(response)
    assert stored(registry) == set()


async def test_body_that_is_not_json_is_415(http: httpx.AsyncClient, registry: Registry) -> None:
    response = await http.put(
        "/v1/services/web/instances/web-1",
        content=b"address=10.0.0.1&port=80",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]
    assert stored(registry) == set()


async def test_body_over_64_kib_is_413(http: httpx.AsyncClient, registry: Registry) -> None:
    payload = json.dumps(body(meta={"k": "v" * 70_000})).encode()
    response = await http.put(
        "/v1/services/web/instances/web-1",
        content=payload,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert "64 KiB" in response.json()["error"]
    assert stored(registry) == set()


async def test_chunked_body_over_64_kib_is_413(http: httpx.AsyncClient, registry: Registry) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"address": "10.0.0.1", "port": 80, "meta": {"k": "'
        for _ in range(10):
            yield b"v" * 8192
        yield b'"}}'

    response = await http.put(
        "/v1/services/web/instances/web-1",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert stored(registry) == set()


async def test_bad_replacement_keeps_the_stored_instance(
    http: httpx.AsyncClient, registry: Registry
) -> None:
    first = await http.put("/v1/services/web/instances/web-1", json=body(tags=["v1"]))
    assert first.status_code == 201
    bad = await http.put("/v1/services/web/instances/web-1", json=body(port=0, tags=["v2"]))
    assert bad.status_code == 422
    (instance,) = registry.find_service("web").instances
    assert (instance.port, instance.tags) == (8080, ("v1",))


@pytest.mark.parametrize(
    ("ttl", "seconds"),
    [("30s", 30.0), ("500ms", 0.5), ("5m", 300.0), ("1h", 3600.0), (45, 45.0), (1.5, 1.5)],
)
async def test_ttl_spellings(http: httpx.AsyncClient, ttl: object, seconds: float) -> None:
    response = await http.put("/v1/services/web/instances/web-1", json=body(ttl=ttl))
    assert response.status_code == 201, response.text
    assert response.json()["ttl"] == seconds


async def test_limits_themselves_are_accepted(http: httpx.AsyncClient) -> None:
    payload = body(
        port=65535,
        weight=65535,
        priority=65535,
        tags=[f"t{n}" for n in range(64)],
        meta={f"k{n}": "v" * 512 for n in range(63)} | {"k" * 128: ""},
        ttl="1d",
    )
    response = await http.put(f"/v1/services/{'s' * 63}/instances/{'I' * 64}", json=payload)
    assert response.status_code == 201, response.text
    assert len(response.json()["tags"]) == 64
