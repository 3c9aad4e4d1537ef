"""The status page's endpoints over ASGI: its JSON, its files, and /v1/history."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from api.support import Clock


async def _put(http: httpx.AsyncClient, path: str, **body: Any) -> None:
    reply = await http.put(path, json={"address": "10.0.0.1", "port": 80, **body})
    assert reply.status_code in (200, 201), reply.text


async def test_overview_counts_tags_and_ttls(http: httpx.AsyncClient, clock: Clock) -> None:
    await _put(http, "/v1/services/web/instances/a", tags=["v2"])
    await _put(http, "/v1/services/web/instances/b", tags=["v2", "canary"], ttl="10s")
    await _put(http, "/v1/services/db/instances/d")
    clock.advance(11)  # b's lease lapses
    reply = await http.get("/ui/api/services")
    assert reply.status_code == 200
    body = reply.json()
    assert reply.headers["x-consul-index"] == str(body["index"])
    assert body["dns"] == "@127.0.0.1 -p 8053"
    assert [z["name"] for z in body["zones"]] == ["service.local", "service.consul"]
    rows = {row["name"]: row for row in body["services"]}
    assert rows["web"]["counts"] == {"passing": 1, "warning": 0, "critical": 1}
    assert rows["web"]["tags"] == {"canary": 1, "v2": 2}
    assert rows["web"]["changes"] == 2
    assert rows["db"]["ttl"] == {"service.local": 30, "service.consul": 5}


async def test_service_page_data(http: httpx.AsyncClient) -> None:
    await _put(http, "/v1/services/web/instances/web-1", tags=["v2"], meta={"version": "2.1"})
    body = (await http.get("/ui/api/services/WEB")).json()
    assert body["name"] == "web"
    [instance] = body["instances"]
    assert instance["meta"] == {"version": "2.1"}
    assert instance["answered_in"] == ["service.local", "service.consul"]
    assert instance["targets"] == [
        "web-1.instance.web.service.local",
        "web-1.instance.web.service.consul",
    ]
    first = body["names"][0]["names"][0]
    assert first["dig"] == "dig @127.0.0.1 -p 8053 web.service.local SRV"
    tagged = [n["name"] for n in body["names"][1]["names"] if n["tag"] == "v2"]
    assert tagged == ["v2.web.service.consul", "_web._v2.service.consul"]


async def test_unknown_service_is_404_with_the_index(http: httpx.AsyncClient) -> None:
    reply = await http.get("/ui/api/services/nope")
    assert reply.status_code == 404
    assert reply.json()["error"] == "no service 'nope'"
    assert "x-consul-index" in reply.headers


async def test_overview_blocks_until_the_registry_changes(http: httpx.AsyncClient) -> None:
    index = (await http.get("/ui/api/services")).json()["index"]
    waiting = asyncio.create_task(http.get(f"/ui/api/services?index={index}&wait=30s"))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await _put(http, "/v1/services/web/instances/a")
    reply = await asyncio.wait_for(waiting, 5)
    assert reply.json()["index"] > index
    assert [row["name"] for row in reply.json()["services"]] == ["web"]


async def test_a_bad_wait_is_a_422_naming_it(http: httpx.AsyncClient) -> None:
    reply = await http.get("/ui/api/services?index=1&wait=soon")
    assert reply.status_code == 422
    assert reply.json()["errors"][0]["field"] == "wait"


async def test_history_records_changes(http: httpx.AsyncClient, clock: Clock) -> None:
    await _put(http, "/v1/services/web/instances/a", ttl="10s")
    clock.advance(1)
    await _put(http, "/v1/services/db/instances/d")
    clock.advance(5)
    assert (await http.delete("/v1/services/web/instances/a")).status_code == 204
    body = (await http.get("/v1/history", params={"service": "web"})).json()
    assert [(e["instance"], e["from"], e["to"]) for e in body["events"]] == [
        ("a", None, "passing"),
        ("a", "passing", None),
    ]
    assert body["events"][0]["checks"] == [
        {"id": "ttl", "from": None, "to": "passing", "output": ""}
    ]
    since = body["events"][0]["time_unix"]
    later = (await http.get("/v1/history", params={"since": since})).json()["events"]
    assert [(e["service"], e["to"]) for e in later] == [("db", "passing"), ("web", None)]


async def test_pages_and_files_are_served_with_a_strict_policy(http: httpx.AsyncClient) -> None:
    for path in ("/ui/", "/ui/services/web"):
        reply = await http.get(path)
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "text/html; charset=utf-8"
        assert "script-src 'self'" in reply.headers["content-security-policy"]
        assert '<script src="/ui/static/ui.js"' in reply.text
    for name, kind in (("ui.js", "text/javascript"), ("metrics.js", "text/javascript")):
        reply = await http.get(f"/ui/static/{name}")
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith(kind)
        assert reply.headers["etag"]
    css = await http.get("/ui/static/ui.css")
    assert css.headers["content-type"].startswith("text/css")
    assert (await http.head("/ui/static/ui.css")).status_code == 200


async def test_only_shipped_files_exist(http: httpx.AsyncClient) -> None:
    for path in ("/ui/static/nope.js", "/ui/static/..%2Fviews.py", "/ui/static/__init__.py"):
        reply = await http.get(path)
        assert reply.status_code == 404, path
        assert "error" in reply.json()


async def test_root_and_ui_lead_to_the_page(http: httpx.AsyncClient) -> None:
    for path in ("/", "/ui"):
        reply = await http.get(path)
        assert reply.status_code == 307
        assert reply.headers["location"] == "/ui/"


async def test_an_unchanged_file_is_not_sent_again(http: httpx.AsyncClient) -> None:
    first = await http.get("/ui/static/ui.js")
    again = await http.get("/ui/static/ui.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    other = await http.get("/ui/static/ui.js", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200
