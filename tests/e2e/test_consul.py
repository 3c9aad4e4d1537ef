"""py-consul against a real srvdns: register with HTTP, TCP and TTL checks, pass TTL checks,
read health and the catalog, block on an index, deregister; the same services over DNS,
under the zones service.local and service.consul."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import consul
import dns.rcode
import dns.rdatatype
import pytest
from consul.exceptions import ACLPermissionDenied, BadRequest
from e2e.harness import SrvdnsProcess, wait_for
from health.targets import TargetPool, target_pool

ZONES = """\
[[zone]]
name = "service.local"
ttl = 5

[[zone]]
name = "service.consul"
ttl = 5

[health]
interval = "200ms"
timeout = "100ms"
success_before_passing = 1
"""


@pytest.fixture
def targets() -> Iterator[TargetPool]:
    with target_pool() as pool:
        yield pool


@pytest.fixture
def server(launch: Callable[..., SrvdnsProcess]) -> SrvdnsProcess:
    return launch(ZONES)


def client(server: SrvdnsProcess, **options: Any) -> consul.Consul:
    api = urlsplit(server.api)
    return consul.Consul(host=api.hostname, port=api.port, **options)


def answers(server: SrvdnsProcess, qname: str, rdtype: str) -> list[str] | None:
    """The answer's records as text, sorted; None for NXDOMAIN."""
    reply = server.query(qname, rdtype, tcp=True)
    if reply.rcode() == dns.rcode.NXDOMAIN:
        return None
    assert reply.rcode() == dns.rcode.NOERROR
    return sorted(
        rr.to_text()
        for rrset in reply.answer
        if rrset.rdtype == dns.rdatatype.from_text(rdtype)
        for rr in rrset
    )


def passing(c: consul.Consul, name: str) -> list[str]:
    _, entries = c.health.service(name, passing=True)
    return [entry["Service"]["ID"] for entry in entries]


def test_register_check_read_and_resolve(server: SrvdnsProcess, targets: TargetPool) -> None:
    c = client(server)
    web, cache = targets.http(), targets.http()
    c.agent.service.register(
        "web",
        service_id="web-1",
        address="127.0.0.1",
        port=web.port,
        tags=["v1"],
        meta={"version": "1.0"},
        check=consul.Check.http(f"{web.url}/health", "200ms", timeout="100ms"),
    )
    c.agent.service.register(
        "cache",
        service_id="cache-1",
        address="127.0.0.1",
        port=cache.port,
        check=consul.Check.tcp("127.0.0.1", cache.port, "200ms", timeout="100ms"),
    )
    c.agent.service.register(
        "worker",
        service_id="worker-1",
        address="127.0.0.2",
        port=7000,
        check=consul.Check.ttl("30s"),
    )
    # HTTP and TCP checks pass on their first result; a TTL check waits for its first pass
    wait_for(lambda: passing(c, "web") == ["web-1"] and passing(c, "cache") == ["cache-1"])
    assert passing(c, "worker") == []
    assert c.agent.check.ttl_pass("service:worker-1", "ready") is True
    assert passing(c, "worker") == ["worker-1"]

    _, (entry,) = c.health.service("worker")
    serf, ttl = entry["Checks"]
    assert serf["CheckID"] == "serfHealth"
    assert (ttl["CheckID"], ttl["Status"], ttl["Output"], ttl["Type"]) == (
        "service:worker-1",
        "passing",
        "ready",
        "ttl",
    )
    _, (entry,) = c.health.service("web", tag="v1")
    assert entry["Service"]["Meta"] == {"version": "1.0"}
    assert entry["Checks"][1]["Output"].startswith(f"HTTP GET {web.url}/health: 200 OK")
    assert c.health.service("web", tag="v2")[1] == []

    index, services = c.catalog.services()
    assert int(index) >= 1
    assert services == {"cache": [], "web": ["v1"], "worker": []}
    _, (node,) = c.catalog.service("web")
    assert (node["ServiceID"], node["ServicePort"], node["ServiceTags"]) == (
        "web-1",
        web.port,
        ["v1"],
    )
    assert sorted(c.agent.services()) == ["cache-1", "web-1", "worker-1"]
    assert c.agent.service_definition("worker-1")["Address"] == "127.0.0.2"

    # the same services over DNS, in both zones
    for zone in ("service.local", "service.consul"):
        (srv,) = answers(server, f"web.{zone}", "SRV") or []
        assert srv.startswith(f"0 1 {web.port} web-1.instance.web.{zone}.")
        assert answers(server, f"web.{zone}", "A") == ["127.0.0.1"]
        assert answers(server, f"v1.web.{zone}", "A") == ["127.0.0.1"]
        assert answers(server, f"cache.{zone}", "A") == ["127.0.0.1"]
        assert answers(server, f"worker.{zone}", "A") == ["127.0.0.2"]

    # a failed TTL check leaves DNS; a warning one stays (weights.warning)
    c.agent.check.ttl_fail("service:worker-1", "broken")
    assert answers(server, "worker.service.consul", "A") is None
    c.agent.check.ttl_warn("service:worker-1")
    assert answers(server, "worker.service.consul", "A") == ["127.0.0.2"]
    assert passing(c, "worker") == []

    # a dead HTTP target turns critical: out of health?passing and out of DNS
    web.set("dead")
    wait_for(lambda: passing(c, "web") == [])
    assert answers(server, "web.service.consul", "SRV") is None

    assert c.agent.service.deregister("cache-1") is True
    assert c.health.service("cache")[1] == []
    assert answers(server, "cache.service.consul", "A") is None
    assert c.agent.service.deregister("cache-1") is False  # Consul's 404


def test_a_blocking_query_wakes_on_a_registration(server: SrvdnsProcess) -> None:
    c = client(server)
    index, entries = c.health.service("api")
    assert entries == []
    result: dict[str, Any] = {}

    def watch() -> None:
        started = time.monotonic()
        result["answer"] = c.health.service("api", index=index, wait="5s")
        result["took"] = time.monotonic() - started

    watcher = threading.Thread(target=watch)
    watcher.start()
    time.sleep(0.3)
    assert watcher.is_alive()
    client(server).agent.service.register("api", service_id="api-1", address="127.0.0.3", port=80)
    watcher.join(timeout=5)
    assert result["took"] < 2  # well before the 5 s wait
    new_index, (entry,) = result["answer"]
    assert int(new_index) > int(index)
    assert entry["Service"]["ID"] == "api-1"
    assert answers(server, "api.service.consul", "A") == ["127.0.0.3"]
    # without a change, the query waits its wait (plus at most 1/16)
    started = time.monotonic()
    same, _ = c.health.service("api", index=new_index, wait="300ms")
    assert 0.3 <= time.monotonic() - started < 1.5
    assert same == new_index


def test_a_lapsed_ttl_moves_the_index(server: SrvdnsProcess) -> None:
    """The health loop writes critical for a lapsed TTL check, so the index moves and a
    blocking query on health wakes (DNS dropped the instance at the lapse already)."""
    c = client(server)
    c.agent.service.register(
        "beat", service_id="beat-1", address="127.0.0.4", port=80, check=consul.Check.ttl("1s")
    )
    c.agent.check.ttl_pass("service:beat-1")
    index, (entry,) = c.health.service("beat", passing=True)
    started = time.monotonic()
    woken, entries = c.health.service("beat", index=index, wait="10s")
    assert time.monotonic() - started < 3
    assert int(woken) > int(index)
    (entry,) = entries
    assert entry["Checks"][1]["Status"] == "critical"
    assert entry["Checks"][1]["Output"].startswith("TTL expired")
    assert answers(server, "beat.service.consul", "A") is None


def test_tokens_and_refusals(tmp_path: Path, launch: Callable[..., SrvdnsProcess]) -> None:
    (tmp_path / "token").write_text("s3cret\n")
    server = launch(ZONES, server='api_token_file = "token"\n')
    with pytest.raises(ACLPermissionDenied, match="Permission denied"):
        client(server).agent.service.register("web", address="127.0.0.1", port=80)
    with pytest.raises(ACLPermissionDenied, match="ACL not found"):
        client(server, token="nope").agent.service.register("web", address="127.0.0.1", port=80)
    c = client(server, token="s3cret")
    assert c.agent.service.register("web", address="127.0.0.1", port=80) is True
    assert client(server).agent.services()["web"]["Port"] == 80  # reads are open
    with pytest.raises(BadRequest, match="does not support gRPC checks"):
        c.agent.service.register(
            "grpc", address="127.0.0.1", port=81, check=consul.Check.grpc("127.0.0.1:81", "5s")
        )
    with pytest.raises(BadRequest, match="is not a DNS label"):
        c.agent.service.register("web_api", address="127.0.0.1", port=82)


def test_shutdown_answers_pending_blocking_queries(server: SrvdnsProcess) -> None:
    c = client(server)
    index, _ = c.health.service("web")
    result: dict[str, Any] = {}

    def watch() -> None:
        result["answer"] = c.health.service("web", index=index, wait="5m")

    watcher = threading.Thread(target=watch)
    watcher.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - started < 4
    watcher.join(timeout=5)
    assert result["answer"] == (index, [])
