"""``/metrics`` and the per-query log of a real ``srvdns serve``, over real sockets."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import dns.rcode
import pytest
from e2e.harness import SrvdnsProcess, start, wait_for, write_config
from fakeupstream import FakeUpstream
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., SrvdnsProcess]]:
    """Start ``srvdns serve`` with extra command-line arguments; stopped at the end."""
    started: list[SrvdnsProcess] = []

    def _serve(body: str = "", *args: str, server: str = "") -> SrvdnsProcess:
        process = start(write_config(tmp_path, body, server=server), args=args)
        started.append(process)
        return process

    yield _serve
    for process in started:
        process.stop()


def scrape(srvdns: SrvdnsProcess) -> Samples:
    with srvdns.http() as http:
        response = http.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def queries(samples: Samples, transport: str, qtype: str, rcode: str) -> float:
    labels = (("qtype", qtype), ("rcode", rcode), ("transport", transport))
    return samples.get(("srvdns_dns_queries_total", labels), 0.0)


def by_transport(samples: Samples, name: str, transport: str) -> float:
    return samples[(name, (("transport", transport),))]


def register(srvdns: SrvdnsProcess) -> None:
    with srvdns.http() as http:
        body = {"address": "10.0.0.1", "port": 8080}
        assert http.put("/v1/services/web/instances/web-1", json=body).status_code == 201
        assert http.get("/v1/no/such/thing").status_code == 404


def test_metrics_count_exactly_what_was_asked(
    serve: Callable[..., SrvdnsProcess], dig: str
) -> None:
    srvdns = serve()
    register(srvdns)
    for _ in range(3):  # a miss, then two hits
        assert srvdns.query("web.service.local", "A").rcode() == dns.rcode.NOERROR
    for _ in range(2):
        assert srvdns.query("nope.service.local", "A").rcode() == dns.rcode.NXDOMAIN
    assert srvdns.query("example.org", "A").rcode() == dns.rcode.REFUSED
    for _ in range(2):  # dig asks with EDNS: another question, so a miss then a hit
        assert "10.0.0.1" in srvdns.dig("web.service.local", "A", "+nocookie", "+short")
    for _ in range(2):
        reply = srvdns.query("_web._tcp.service.local", "SRV", tcp=True)
        assert reply.rcode() == dns.rcode.NOERROR
    assert srvdns.query("example.org", "A", tcp=True).rcode() == dns.rcode.REFUSED

    samples = scrape(srvdns)
    assert queries(samples, "udp", "A", "NOERROR") == 5
    assert queries(samples, "udp", "A", "NXDOMAIN") == 2
    assert queries(samples, "udp", "A", "REFUSED") == 1
    assert queries(samples, "tcp", "SRV", "NOERROR") == 2
    assert queries(samples, "tcp", "A", "REFUSED") == 1
    assert sum(v for (name, _), v in samples.items() if name == "srvdns_dns_queries_total") == 11
    assert by_transport(samples, "srvdns_dns_cache_hits_total", "udp") == 4
    assert by_transport(samples, "srvdns_dns_cache_misses_total", "udp") == 4
    assert by_transport(samples, "srvdns_dns_cache_hits_total", "tcp") == 1
    assert by_transport(samples, "srvdns_dns_cache_misses_total", "tcp") == 2
    # every TCP query is timed; over UDP the first of each read batch (each query here,
    # unless the server was descheduled between a reply and the next read)
    timed = samples[("srvdns_dns_answer_seconds_count", ())]
    assert 3 < timed <= 11
    assert samples[("srvdns_dns_answer_seconds_bucket", (("le", "+Inf"),))] == timed
    assert 0 < samples[("srvdns_dns_answer_seconds_sum", ())] < timed

    assert samples[("srvdns_snapshot_services", ())] == 1
    assert samples[("srvdns_snapshot_instances", ())] == 1
    assert samples[("srvdns_instances", (("status", "passing"),))] == 1
    assert samples[("srvdns_instances", (("status", "critical"),))] == 0
    assert samples[("srvdns_snapshot_index", ())] >= 2
    write = ("srvdns_registry_write_seconds_count", (("operation", "register"),))
    assert samples[write] == 1

    route = "/v1/services/{service}/instances/{id}"
    put = ("srvdns_api_requests_total", (("code", "201"), ("method", "PUT"), ("route", route)))
    missing = (
        "srvdns_api_requests_total",
        (("code", "404"), ("method", "GET"), ("route", "unmatched")),
    )
    assert samples[put] == 1
    assert samples[missing] == 1
    assert sum(v for (name, _), v in samples.items() if name == "srvdns_api_requests_total") == 2

    assert not [line for line in srvdns.log if "srvdns.query" in line]  # off by default


def test_forwarded_queries_counted_with_the_upstream_rcode(
    serve: Callable[..., SrvdnsProcess],
) -> None:
    with FakeUpstream() as upstream, FakeUpstream(mode="servfail") as broken:
        body = (
            '[[zone]]\nname = "service.local"\n\n[forward]\n'
            f'upstreams = ["127.0.0.1:{broken.port}", "127.0.0.1:{upstream.port}"]\n'
            'timeout = "1s"\n'
        )
        srvdns = serve(body)
        assert srvdns.query("www.example.test", "A").rcode() == dns.rcode.NOERROR
        assert srvdns.query("www.example.test", "A").rcode() == dns.rcode.NOERROR  # cached
        assert srvdns.query("gone.example.test", "A", tcp=True).rcode() == dns.rcode.NXDOMAIN
        samples = scrape(srvdns)
    assert queries(samples, "udp", "A", "NOERROR") == 2
    assert queries(samples, "udp", "A", "REFUSED") == 0
    assert queries(samples, "tcp", "A", "NXDOMAIN") == 1
    assert by_transport(samples, "srvdns_dns_forwarded_queries_total", "udp") == 2
    assert by_transport(samples, "srvdns_dns_forwarded_queries_total", "tcp") == 1
    assert samples[("srvdns_dns_forward_cache_hits_total", ())] == 1
    failed = (("reason", "servfail"), ("upstream", f"127.0.0.1:{broken.port}"))
    assert samples[("srvdns_dns_upstream_failures_total", failed)] == 2
    assert samples[("srvdns_dns_forward_failures_total", ())] == 0


def test_query_log_text(serve: Callable[..., SrvdnsProcess]) -> None:
    srvdns = serve("", "--query-log")
    srvdns.query("nope.service.local", "A")
    srvdns.query("_x._tcp.service.local", "SRV", tcp=True)
    srvdns.stop()
    lines = [line for line in srvdns.log if "srvdns.query" in line]
    assert len(lines) == 2
    host = srvdns.host
    assert f"srvdns.query: {host}:" in lines[0]
    assert " udp nope.service.local. A NXDOMAIN " in lines[0]
    assert " tcp _x._tcp.service.local. SRV NXDOMAIN " in lines[1]
    assert lines[1].endswith("s")


def test_query_log_json_from_the_config(serve: Callable[..., SrvdnsProcess]) -> None:
    srvdns = serve("", "--log-format", "json", server="query_log = true\n")
    register(srvdns)
    srvdns.query("web.service.local", "A")
    srvdns.query("example.org", "TXT", tcp=True)
    srvdns.stop()
    entries = [json.loads(line) for line in srvdns.log]
    logged = [entry for entry in entries if entry["logger"] == "srvdns.query"]
    assert [(e["transport"], e["qname"], e["qtype"], e["rcode"]) for e in logged] == [
        ("udp", "web.service.local.", "A", "NOERROR"),
        ("tcp", "example.org.", "TXT", "REFUSED"),
    ]
    for entry in logged:
        assert entry["client"] == srvdns.host
        assert 0 < entry["client_port"] < 65536
        assert 0 <= entry["duration"] < 5
        assert entry["level"] == "info"


def test_reload_turns_the_query_log_on_and_counters_carry_on(
    serve: Callable[..., SrvdnsProcess],
) -> None:
    srvdns = serve()
    srvdns.query("nope.service.local", "A")
    srvdns.query("nope.service.local", "A")
    srvdns.config.write_text(
        srvdns.config.read_text().replace("[server]\n", "[server]\nquery_log = true\n", 1)
    )
    srvdns.process.send_signal(signal.SIGHUP)
    wait_for(lambda: any("reloaded" in line for line in srvdns.log))
    srvdns.query("nope.service.local", "A")  # a new handler: a miss again
    samples = scrape(srvdns)
    assert queries(samples, "udp", "A", "NXDOMAIN") == 3
    assert by_transport(samples, "srvdns_dns_cache_hits_total", "udp") == 1
    assert by_transport(samples, "srvdns_dns_cache_misses_total", "udp") == 2
    srvdns.stop()
    logged = [line for line in srvdns.log if "srvdns.query" in line]
    assert len(logged) == 1
    assert " udp nope.service.local. A NXDOMAIN " in logged[0]


def test_heartbeats_answered_by_the_fast_path_are_counted(serve: Callable[..., SrvdnsProcess]):
    srvdns = serve()
    route = "/v1/services/{service}/instances/{id}/heartbeat"
    with srvdns.http() as http:
        body = {"address": "10.0.0.1", "port": 80, "ttl": "30s"}
        assert http.put("/v1/services/web/instances/w1", json=body).status_code == 201
        for _ in range(3):
            assert http.put("/v1/services/web/instances/w1/heartbeat").status_code == 200
        assert http.put("/v1/services/web/instances/nope/heartbeat").status_code == 404
    samples = scrape(srvdns)
    ok = (("code", "200"), ("method", "PUT"), ("route", route))
    missing = (("code", "404"), ("method", "PUT"), ("route", route))
    assert samples[("srvdns_api_requests_total", ok)] == 3
    assert samples[("srvdns_api_requests_total", missing)] == 1
    seconds = (("method", "PUT"), ("route", route))
    assert samples[("srvdns_api_request_seconds_count", seconds)] == 4


def test_registrations_answered_by_the_fast_path_are_counted(serve: Callable[..., SrvdnsProcess]):
    srvdns = serve()
    route = "/v1/services/{service}/instances/{id}"
    with srvdns.http() as http:
        body = {"address": "10.0.0.1", "port": 80}
        assert http.put("/v1/services/web/instances/w1", json=body).status_code == 201
        replaced = http.put("/v1/services/WEB/instances/w1", json={**body, "port": 81})
        assert replaced.status_code == 200
        assert replaced.json()["port"] == 81
        invalid = http.put("/v1/services/web/instances/w2", json={"port": 80})
        assert invalid.status_code == 422  # the application's answer, as before
        assert invalid.json()["errors"] == [{"field": "address", "message": "required"}]
    assert srvdns.dig("w1.instance.web.service.local", "A", "+short").split() == ["10.0.0.1"]
    samples = scrape(srvdns)
    for code, count in (("201", 1), ("200", 1), ("422", 1)):
        labels = (("code", code), ("method", "PUT"), ("route", route))
        assert samples[("srvdns_api_requests_total", labels)] == count
    seconds = (("method", "PUT"), ("route", route))
    assert samples[("srvdns_api_request_seconds_count", seconds)] == 3


def gc_collections(samples: Samples, generation: int) -> float:
    return samples[("python_gc_collections_total", (("generation", str(generation)),))]


def test_young_collections_are_rare_while_serving(serve: Callable[..., SrvdnsProcess]) -> None:
    """The garbage collector and the process are in ``/metrics``; and while srvdns serves,
    its youngest generation is collected every 10,000 net allocations, not CPython's 700:
    500 registrations and the answers built after each (tens of thousands of objects kept
    for a while) take a handful of young collections, not dozens."""
    srvdns = serve()
    before = scrape(srvdns)
    assert before[("process_resident_memory_bytes", ())] > 0
    with srvdns.http() as http:
        for n in range(500):
            body = {"address": f"10.1.{n // 250}.{n % 250 + 1}", "port": 8080}
            response = http.put(f"/v1/services/svc-{n % 50}/instances/i-{n}", json=body)
            assert response.status_code == 201
            srvdns.query(f"svc-{n % 50}.service.local", "SRV")
    after = scrape(srvdns)
    young = gc_collections(after, 0) - gc_collections(before, 0)
    assert young < 8, young
