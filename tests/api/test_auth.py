"""Bearer-token authorization: writes need the token, reads stay open."""

from __future__ import annotations

import httpx
import pytest
from api.support import TOKEN, ClientFactory, stored

from srvdns.registry.registry import Registry

BODY = {"address": "10.0.0.1", "port": 8080, "ttl": "30s"}
URL = "/v1/services/web/instances/web-1"
WRITES = [
    pytest.param("PUT", URL, BODY, id="register"),
    pytest.param("DELETE", URL, None, id="deregister"),
    pytest.param("PUT", f"{URL}/heartbeat", None, id="heartbeat"),
]
GOOD = {"Authorization": f"Bearer {TOKEN}"}


async def seed(http: httpx.AsyncClient) -> None:
    response = await http.put(URL, json=BODY, headers=GOOD)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-header"),
        pytest.param({"Authorization": f"Basic {TOKEN}"}, id="basic-scheme"),
        pytest.param({"Authorization": "Bearer"}, id="bearer-without-token"),
        pytest.param({"Authorization": TOKEN}, id="token-without-scheme"),
    ],
)
@pytest.mark.parametrize(("method", "url", "body"), WRITES)
async def test_write_without_bearer_token_is_401(
    make_client: ClientFactory,
    registry: Registry,
    headers: dict[str, str],
    method: str,
    url: str,
    body: dict[str, object] | None,
) -> None:
    async with make_client(token=TOKEN) as http:
        await seed(http)
        before = registry.find_service("web").instances
        response = await http.request(method, url, json=body, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert set(response.json()) == {"error"}
    assert registry.find_service("web").instances == before


@pytest.mark.parametrize(
    "token", [pytest.param("wrong", id="wrong"), pytest.param(TOKEN + "x", id="longer")]
)
@pytest.mark.parametrize(("method", "url", "body"), WRITES)
async def test_write_with_wrong_token_is_403(
    make_client: ClientFactory,
    registry: Registry,
    token: str,
    method: str,
    url: str,
    body: dict[str, object] | None,
) -> None:
    async with make_client(token=TOKEN) as http:
        await seed(http)
        before = registry.find_service("web").instances
        response = await http.request(
            method, url, json=body, headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 403, response.text
    assert set(response.json()) == {"error"}
    assert registry.find_service("web").instances == before


async def test_writes_with_the_token(make_client: ClientFactory, registry: Registry) -> None:
    async with make_client(token=TOKEN) as http:
        await seed(http)
        beat = await http.put(f"{URL}/heartbeat", headers={"Authorization": f"bearer {TOKEN}"})
        assert beat.status_code == 200, beat.text
        gone = await http.delete(URL, headers=GOOD)
        assert gone.status_code == 204, gone.text
    assert stored(registry) == set()


async def test_reads_are_open(make_client: ClientFactory) -> None:
    async with make_client(token=TOKEN) as http:
        await seed(http)
        for url in ("/v1/services", "/v1/services/web", "/healthz", "/openapi.json"):
            response = await http.get(url)
            assert response.status_code == 200, (url, response.text)


async def test_auth_comes_before_validation(make_client: ClientFactory, registry: Registry) -> None:
    async with make_client(token=TOKEN) as http:
        response = await http.put("/v1/services/-bad-/instances/x", json={"port": 0})
    assert response.status_code == 401
    assert stored(registry) == set()


async def test_without_a_token_writes_are_open(make_client: ClientFactory) -> None:
    async with make_client(token=None) as http:
        response = await http.put(URL, json=BODY)
        assert response.status_code == 201
        ignored = await http.delete(URL, headers={"Authorization": "Bearer anything"})
        assert ignored.status_code == 204
