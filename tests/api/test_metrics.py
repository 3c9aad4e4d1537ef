"""API request metrics: by route template (never the raw path), method and status."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


async def scrape(http: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = (await http.get("/metrics")).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def requests(method: str, route: str, code: int) -> tuple[str, tuple[tuple[str, str], ...]]:
    labels = (("code", str(code)), ("method", method), ("route", route))
    return ("srvdns_api_requests_total", labels)


async def test_requests_by_route_template(http: httpx.AsyncClient) -> None:
    for name in ("a", "b", "c"):
        body = {"address": "10.0.0.1", "port": 80}
        assert (
            await http.put(f"/v1/services/{name}/instances/{name}-1", json=body)
        ).status_code == 201
    assert (await http.get("/v1/no/such/path")).status_code == 404
    assert (await http.get("/v1/another/missing")).status_code == 404
    assert (await http.request("BREW", "/v1/services")).status_code == 405
    too_big = b"{" + b" " * (70 * 1024) + b"}"
    put = await http.put("/v1/services/a/instances/x", content=too_big)
    assert put.status_code == 413
    samples = await scrape(http)
    route = "/v1/services/{service}/instances/{id}"
    assert samples[requests("PUT", route, 201)] == 3
    assert samples[requests("GET", "unmatched", 404)] == 2
    assert samples[requests("OTHER", "/v1/services", 405)] == 1
    assert samples[requests("PUT", "unmatched", 413)] == 1
    seconds = ("srvdns_api_request_seconds_count", (("method", "PUT"), ("route", route)))
    assert samples[seconds] == 3
    assert not any("/v1/services/a/" in str(key) for key in samples)
