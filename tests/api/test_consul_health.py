"""The Consul health and catalog endpoints, X-Consul-Index, and blocking queries."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import httpx
import pytest
from api.consul_support import NODE, REGISTER, consul_client, service

from srvdns.model import Status
from srvdns.registry.registry import Registry
from srvdns.registry.repository import CheckUpdate

P, W, C = Status.PASSING, Status.WARNING, Status.CRITICAL


@pytest.fixture
async def consul(registry: Registry) -> Any:
    async with consul_client(registry, node_address="192.0.2.1") as http:
        yield http


async def register(http: httpx.AsyncClient, **fields: Any) -> None:
    response = await http.put(REGISTER, json=service(**fields))
    assert response.status_code == 200, response.text


def index_of(response: httpx.Response) -> int:
    return int(response.headers["X-Consul-Index"])


async def test_health_service_entry(consul, registry, clock) -> None:
    await register(
        consul,
        tags=["v1"],
        meta={"a": "b"},
        checks=[
            {"ttl": "30s", "name": "beat", "notes": "pass me"},
            {"tcp": "10.0.0.1:8080", "interval": "1m30s", "timeout": "2s"},
        ],
    )
    await consul.put("/v1/agent/check/pass/service:web-1:1", params={"note": "alive"})
    response = await consul.get("/v1/health/service/web")
    assert response.status_code == 200
    index = index_of(response)
    assert index == registry.holder.current.index
    assert response.headers["X-Consul-KnownLeader"] == "true"
    assert response.headers["X-Consul-LastContact"] == "0"
    (entry,) = response.json()
    assert entry["Node"]["Node"] == NODE
    assert entry["Node"]["Address"] == "192.0.2.1"
    assert entry["Node"]["Datacenter"] == "dc1"
    assert entry["Service"] == {
        "ID": "web-1",
        "Service": "web",
        "Tags": ["v1"],
        "Address": "10.0.0.1",
        "Meta": {"a": "b"},
        "Port": 8080,
        "Weights": {"Passing": 1, "Warning": 1},
        "EnableTagOverride": False,
        "CreateIndex": index,
        "ModifyIndex": index,
    }
    serf, ttl, tcp = entry["Checks"]
    assert (serf["CheckID"], serf["Name"], serf["Status"], serf["ServiceID"]) == (
        "serfHealth",
        "Serf Health Status",
        "passing",
        "",
    )
    assert {k: ttl[k] for k in ("CheckID", "Name", "Notes", "Status", "Output", "Type")} == {
        "CheckID": "service:web-1:1",
        "Name": "beat",
        "Notes": "pass me",
        "Status": "passing",
        "Output": "alive",
        "Type": "ttl",
    }
    assert (ttl["ServiceID"], ttl["ServiceName"], ttl["ServiceTags"], ttl["Node"]) == (
        "web-1",
        "web",
        ["v1"],
        NODE,
    )
    assert {k: tcp[k] for k in ("CheckID", "Name", "Status", "Type", "Interval", "Timeout")} == {
        "CheckID": "service:web-1:2",
        "Name": "Service 'web' check",
        "Status": "critical",
        "Type": "tcp",
        "Interval": "1m30s",
        "Timeout": "2s",
    }
    assert tcp["Definition"]["TCP"] == "10.0.0.1:8080"
    # the CheckIDs health shows are the ones the check endpoints take
    for check in (ttl, tcp):
        found = await consul.put(f"/v1/agent/check/warn/{check['CheckID']}")
        assert found.status_code == (200 if check is ttl else 400)


async def test_a_lapsed_ttl_is_critical_at_once(consul, clock) -> None:
    await register(consul, check={"ttl": "10s", "status": "passing"})
    clock.advance(10)
    (entry,) = (await consul.get("/v1/health/service/web")).json()
    assert (entry["Checks"][1]["Status"], entry["Checks"][1]["Output"]) == (
        "critical",
        "TTL expired",
    )


async def test_passing_and_tag_filters(consul) -> None:
    await register(consul, id="a", tags=["v1", "eu"], check={"ttl": "10s", "status": "passing"})
    await register(consul, id="b", tags=["v1"], check={"ttl": "10s", "status": "warning"})
    await register(consul, id="c", tags=["v2"], check={"ttl": "10s"})  # critical
    await register(consul, id="d", tags=["v2", "eu"])  # no checks: passing

    async def ids(**params: Any) -> list[str]:
        response = await consul.get("/v1/health/service/WEB", params=params)
        assert response.status_code == 200
        return [entry["Service"]["ID"] for entry in response.json()]

    assert await ids() == ["a", "b", "c", "d"]
    # Consul: "only nodes with all checks in the passing state": warning is left out too
    assert await ids(passing="1") == ["a", "d"]
    assert await ids(passing="") == ["a", "d"]
    assert await ids(passing="false") == ["a", "b", "c", "d"]
    assert await ids(tag="v1") == ["a", "b"]
    assert await ids(tag=["eu", "v2"]) == ["d"]
    assert await ids(tag="EU", passing="true") == ["a", "d"]
    assert await ids(tag="none") == []


async def test_unknown_services_are_empty(consul) -> None:
    for url in ("/v1/health/service/nope", "/v1/catalog/service/nope", "/v1/health/service/a_b"):
        response = await consul.get(url)
        assert (response.status_code, response.json()) == (200, [])
        assert index_of(response) >= 1


async def test_catalog(consul, clock) -> None:
    await register(consul, id="a", tags=["v1", "eu"], check={"ttl": "10s"})
    await register(consul, id="b", tags=["v2"], weights={"Passing": 3, "Warning": 0})
    await register(consul, name="db", id="db-1", port=5432)
    response = await consul.get("/v1/catalog/services")
    assert response.json() == {"db": [], "web": ["eu", "v1", "v2"]}
    assert index_of(response) >= 1
    response = await consul.get("/v1/catalog/service/web")
    a, b = response.json()  # the critical instance too: the catalog does not filter health
    assert {k: b[k] for k in b if k.startswith("Service")} == {
        "ServiceKind": "",
        "ServiceID": "b",
        "ServiceName": "web",
        "ServiceTags": ["v2"],
        "ServiceAddress": "10.0.0.1",
        "ServiceWeights": {"Passing": 3, "Warning": 0},
        "ServiceMeta": {},
        "ServicePort": 8080,
        "ServiceEnableTagOverride": False,
    }
    assert (a["ServiceID"], a["Node"], a["Address"], a["Datacenter"]) == (
        "a",
        NODE,
        "192.0.2.1",
        "dc1",
    )
    tagged = (await consul.get("/v1/catalog/service/web", params={"tag": "eu"})).json()
    assert [e["ServiceID"] for e in tagged] == ["a"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"index": "x"}, "Invalid index"),
        ({"index": "-1"}, "Invalid index"),
        ({"index": "1", "wait": "soon"}, "Invalid wait time"),
        ({"filter": "Service.Tags contains v1"}, "does not support the 'filter' parameter"),
        ({"near": "_agent"}, "'near'"),
        ({"node-meta": "a:b"}, "'node-meta'"),
        ({"dc": "eu-west"}, "srvdns has one datacenter, 'dc1'"),
    ],
)
@pytest.mark.parametrize(
    "url", ["/v1/health/service/web", "/v1/catalog/services", "/v1/catalog/service/web"]
)
async def test_bad_read_parameters_are_400(consul, url, params, message) -> None:
    response = await consul.get(url, params=params)
    assert response.status_code == 400
    assert message in response.text


async def test_consistency_modes_and_our_datacenter_are_accepted(consul) -> None:
    for params in ({"stale": ""}, {"consistent": ""}, {"dc": "dc1"}, {"cached": ""}):
        assert (await consul.get("/v1/health/service/web", params=params)).status_code == 200


# -- blocking queries ----------------------------------------------------------------------


async def _started(coroutine: Any) -> asyncio.Task[httpx.Response]:
    task = asyncio.ensure_future(coroutine)
    await asyncio.sleep(0.05)
    assert not task.done(), "the blocking query answered before any change"
    return task


@pytest.mark.parametrize(
    "url", ["/v1/health/service/web", "/v1/catalog/services", "/v1/catalog/service/web"]
)
async def test_a_blocking_query_wakes_on_a_registration(consul, url) -> None:
    await register(consul)
    index = index_of(await consul.get(url))
    waiting = await _started(consul.get(url, params={"index": index, "wait": "5s"}))
    started = time.monotonic()
    await register(consul, id="web-2")
    response = await asyncio.wait_for(waiting, 2)
    assert time.monotonic() - started < 1
    assert index_of(response) > index


async def test_a_blocking_query_wakes_on_a_health_change(consul, registry) -> None:
    await register(consul, check={"http": "http://10.0.0.1/", "interval": "10s"})
    response = await consul.get("/v1/health/service/web", params={"passing": "1"})
    assert response.json() == []
    waiting = await _started(
        consul.get(
            "/v1/health/service/web",
            params={"passing": "1", "index": index_of(response), "wait": "5s"},
        )
    )
    (instance,) = registry.find_service("web").instances
    passed = replace(instance.checks[0], status=P, output="HTTP GET ...: 200 OK")
    await registry.apply_health([CheckUpdate("web", "web-1", passed)])  # as the loop writes
    response = await asyncio.wait_for(waiting, 2)
    (entry,) = response.json()
    assert entry["Checks"][1]["Output"] == "HTTP GET ...: 200 OK"


async def test_a_ttl_update_that_changes_the_status_wakes_a_blocking_query(consul) -> None:
    await register(consul, check={"ttl": "10s", "status": "passing"})
    index = index_of(await consul.get("/v1/health/service/web"))
    waiting = await _started(
        consul.get("/v1/health/service/web", params={"index": index, "wait": "5s"})
    )
    await consul.put("/v1/agent/check/pass/service:web-1")  # same status: no change
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await consul.put("/v1/agent/check/fail/service:web-1")
    (entry,) = (await asyncio.wait_for(waiting, 2)).json()
    assert entry["Checks"][1]["Status"] == "critical"


async def test_a_blocking_query_times_out_after_its_wait(consul) -> None:
    index = index_of(await consul.get("/v1/health/service/web"))
    started = time.monotonic()
    response = await consul.get("/v1/health/service/web", params={"index": index, "wait": "200ms"})
    took = time.monotonic() - started
    # the wait, plus up to wait/16 of jitter, as Consul does
    assert 0.2 <= took < 0.2 * 17 / 16 + 0.2
    assert (response.status_code, response.json(), index_of(response)) == (200, [], index)


async def test_index_zero_and_an_old_index_do_not_block(consul) -> None:
    await register(consul)
    index = index_of(await consul.get("/v1/health/service/web"))
    for old in (0, index - 1):
        started = time.monotonic()
        response = await consul.get("/v1/health/service/web", params={"index": old, "wait": "5s"})
        assert time.monotonic() - started < 0.5
        assert index_of(response) == index


async def test_the_native_watch(consul, registry) -> None:
    await register(consul)
    native = await consul.get("/v1/services/web")
    index = native.json()["index"]
    assert index == index_of(native) == registry.holder.current.index
    listing = await consul.get("/v1/services")
    assert listing.json()["index"] == index_of(listing) == index
    waiting = await _started(consul.get("/v1/services/web", params={"index": index, "wait": "5s"}))
    await consul.put("/v1/services/web/instances/web-2", json={"address": "10.0.0.2", "port": 1})
    response = await asyncio.wait_for(waiting, 2)
    assert response.json()["index"] == index + 1
    assert [i["id"] for i in response.json()["instances"]] == ["web-1", "web-2"]
    started = time.monotonic()
    response = await consul.get("/v1/services", params={"index": index + 1, "wait": "100ms"})
    assert 0.1 <= time.monotonic() - started < 0.5
    assert response.json()["index"] == index + 1


@pytest.mark.parametrize(
    ("params", "field"), [({"index": "-1"}, "index"), ({"index": "1", "wait": "x"}, "wait")]
)
async def test_native_watch_parameters_are_validated(consul, params, field) -> None:
    response = await consul.get("/v1/services", params=params)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field
