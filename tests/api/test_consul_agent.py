"""The Consul agent endpoints: register, deregister, services, TTL check updates, tokens."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from api.consul_support import REGISTER, consul_client, service
from api.support import TOKEN, Clock

from srvdns.model import CheckKind, Instance, Status
from srvdns.registry.registry import Registry

P, W, C = Status.PASSING, Status.WARNING, Status.CRITICAL


@pytest.fixture
async def consul(registry: Registry) -> Any:
    async with consul_client(registry) as http:
        yield http


def only(registry: Registry, service_name: str = "web") -> Instance:
    (instance,) = registry.find_service(service_name).instances
    return instance


async def register(http: httpx.AsyncClient, body: dict[str, Any], **params: str) -> None:
    response = await http.put(REGISTER, json=body, params=params)
    assert response.status_code == 200, response.text
    assert response.content == b""


# -- register ----------------------------------------------------------------------------


async def test_register_as_py_consul_sends_it(consul, registry) -> None:
    await register(
        consul,
        service(
            tags=["V1", "primary"],
            meta={"Version": "1.2"},
            weights={"Passing": 10, "Warning": 2},
            checks=[
                {"http": "http://10.0.0.1:8080/health", "interval": "10s", "timeout": "1s"},
                {"tcp": "10.0.0.1:8080", "interval": "1m30s"},
                {"ttl": "30s", "DeregisterCriticalServiceAfter": "5m"},
            ],
        ),
    )
    stored = only(registry)
    assert (stored.id, stored.address, stored.port) == ("web-1", "10.0.0.1", 8080)
    assert stored.tags == ("v1", "primary")
    assert stored.meta == (("Version", "1.2"),)
    assert (stored.weight, stored.warning_weight) == (10, 2)
    specs = {check.id: check.spec for check in stored.checks}
    assert sorted(specs) == ["service-1", "service-2", "service-3"]
    http, tcp, ttl = specs["service-1"], specs["service-2"], specs["service-3"]
    assert (http.kind, http.target, http.interval, http.timeout) == (
        CheckKind.HTTP,
        "http://10.0.0.1:8080/health",
        10.0,
        1.0,
    )
    assert (tcp.kind, tcp.target, tcp.interval) == (CheckKind.TCP, "10.0.0.1:8080", 90.0)
    assert (ttl.kind, ttl.ttl, ttl.deregister_critical_after) == (CheckKind.TTL, 30.0, 300.0)
    # Consul: a check starts critical; a TTL check until its first pass
    assert ttl.initial_status is C
    assert stored.effective_status(stored.registered_at) is C


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            {"Name": "web", "ID": "web-1", "Address": "10.0.0.1", "Port": 8080, "Tags": ["a"]},
            id="Consul-case",
        ),
        pytest.param(
            {"name": "web", "id": "web-1", "address": "10.0.0.1", "port": 8080, "tags": ["a"]},
            id="lower-case",
        ),
        pytest.param(
            {"NAME": "web", "Id": "web-1", "ADDRESS": "10.0.0.1", "pOrT": 8080, "TAGS": ["a"]},
            id="any-case",
        ),
    ],
)
async def test_service_keys_in_any_case(consul, registry, body) -> None:
    await register(consul, body)
    stored = only(registry)
    assert (stored.id, stored.address, stored.port, stored.tags) == (
        "web-1",
        "10.0.0.1",
        8080,
        ("a",),
    )


@pytest.mark.parametrize(
    "check",
    [
        {
            "HTTP": "http://10.0.0.1/h",
            "Interval": "5s",
            "TLSSkipVerify": True,
            "DeregisterCriticalServiceAfter": "1m",
            "SuccessBeforePassing": 3,
            "FailuresBeforeCritical": 2,
        },
        {
            "http": "http://10.0.0.1/h",
            "interval": "5s",
            "tls_skip_verify": True,
            "deregister_critical_service_after": "1m",
            "success_before_passing": 3,
            "failures_before_critical": 2,
        },
        {
            "http": "http://10.0.0.1/h",
            "interval": "5s",
            "tlsskipverify": True,
            "deregistercriticalserviceafter": "1m",
            "successbeforepassing": 3,
            "failuresbeforecritical": 2,
        },
    ],
    ids=["Consul-case", "snake_case", "lower-case"],
)
async def test_check_keys_in_any_case_and_with_underscores(consul, registry, check) -> None:
    await register(consul, service(check=check))
    (stored,) = only(registry).checks
    spec = stored.spec
    assert spec.id == "service"
    assert (spec.tls_skip_verify, spec.deregister_critical_after) == (True, 60.0)
    assert (spec.success_before_passing, spec.failures_before_critical) == (3, 2)


async def test_check_details(consul, registry) -> None:
    await register(
        consul,
        service(
            Check={
                "CheckID": "web-health",
                "Name": "web health",
                "Notes": "the /health page",
                "HTTP": "https://10.0.0.1/health",
                "Method": "HEAD",
                "Header": {"X-Probe": ["a", "b"], "Host-Alias": ["web"]},
                "Interval": "500ms",
                "Status": "passing",
                "DisableRedirects": True,
            }
        ),
    )
    (check,) = only(registry).checks
    spec = check.spec
    assert (spec.id, spec.name, spec.notes) == ("web-health", "web health", "the /health page")
    assert spec.method == "HEAD"
    assert dict(spec.headers) == {"X-Probe": "a, b", "Host-Alias": "web"}
    assert (spec.interval, spec.initial_status, check.status) == (0.5, P, P)


async def test_id_defaults_to_the_name_and_address_to_the_client(consul, registry) -> None:
    await register(consul, {"Name": "web", "Port": 80})
    stored = only(registry)
    # Consul: "the address of the agent"; srvdns: the address the registration came from
    assert (stored.id, stored.address) == ("web", "127.0.0.1")


async def test_the_address_of_an_ipv4_client_on_a_dual_stack_socket(registry) -> None:
    async with consul_client(registry) as http:
        http._transport = httpx.ASGITransport(  # type: ignore[attr-defined]
            http._transport.app,  # type: ignore[attr-defined]
            client=("::ffff:192.0.2.7", 1),
        )
        await register(http, {"Name": "web", "Port": 80})
    assert only(registry).address == "192.0.2.7"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"Port": 80}, "Missing service name"),
        (service(name="web_api"), "Name: service name 'web_api' is not a DNS label"),
        (service(name="ns"), "reserved"),
        (service(id="web:1"), "ID: instance id 'web:1' must be"),
        (service(tags=["urlprefix-/x"]), "Tags: tag 'urlprefix-/x' is not a DNS label"),
        (service(address="web.example"), "Address: 'web.example' is not an IPv4 or IPv6"),
        (service(port=0), "Port must be 1-65535"),
        ({"name": "web", "address": "10.0.0.1"}, "Port must be 1-65535"),
        (service(port="80"), "Port must be an integer"),
        (service(meta={"bad key": "x"}), "Meta: meta key 'bad key'"),
        (service(weights={"Passing": -1}), "Weights.Passing must be 0-65535"),
        (service(nonsense=1), "nonsense: unknown field"),
        ({**service(), "Name": "web"}, "Name is given twice"),
        (service(check={"tcp": "10.0.0.1:1"}), "Check.Interval is required"),
        (service(check={"interval": "10s"}), "give exactly one of HTTP, TCP or TTL"),
        (service(check={"ttl": "ten seconds"}), "Check.TTL: 'ten seconds' is not a duration"),
        (service(check={"ttl": "10s", "status": "up"}), "Status must be passing, warning"),
        (
            service(check={"http": "ftp://x", "interval": "1s"}),
            "Check: HTTP 'ftp://x' must be an http:// or https:// URL",
        ),
        (
            service(check={"http": "http://x/", "interval": "1s", "timeout": "2s"}),
            "Check: Timeout 2s is longer than Interval 1s",
        ),
        (
            service(checks=[{"ttl": "5s"}, {"ttl": "6s"}]),
            "at most one ttl check",
        ),
        (
            service(
                checks=[{"ttl": "5s", "CheckID": "x"}, {"tcp": "a:1", "interval": "1s", "id": "x"}]
            ),
            "two checks have the id 'x'",
        ),
        (service(check={"ttl": "5s", "CheckID": "a/b"}), "CheckID 'a/b' must be"),
    ],
)
async def test_invalid_registrations_are_400(consul, registry, body, message) -> None:
    response = await consul.put(REGISTER, json=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert message in response.text
    assert registry.services() == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "connect-proxy"}, "kind: srvdns does not support service kinds"),
        ({"proxy": {"x": 1}}, "proxy: srvdns does not support Connect proxies"),
        ({"connect": {"sidecar_service": {}}}, "connect: srvdns does not support Consul Connect"),
        ({"tagged_addresses": {"lan": "10.0.0.1"}}, "does not support tagged addresses"),
        ({"SocketPath": "/run/web.sock"}, "does not support Unix sockets"),
        ({"enabletagoverride": True}, "EnableTagOverride: srvdns does not support"),
        ({"check": {"args": ["/bin/true"], "interval": "5s"}}, "does not support script checks"),
        ({"check": {"grpc": "10.0.0.1:5", "interval": "5s"}}, "does not support gRPC checks"),
        (
            {"check": {"docker_container_id": "abc", "shell": "sh", "interval": "5s"}},
            "does not support Docker checks",
        ),
        ({"check": {"h2ping": "10.0.0.1:5", "interval": "5s"}}, "does not support H2PING"),
        ({"check": {"AliasService": "db"}}, "does not support alias checks"),
        ({"check": {"UDP": "10.0.0.1:53", "interval": "5s"}}, "does not support UDP checks"),
        (
            {"check": {"http": "http://x/", "interval": "5s", "body": "{}"}},
            "does not support HTTP check bodies",
        ),
        (
            {"check": {"http": "http://x/", "interval": "5s", "DisableRedirects": False}},
            "never follow redirects",
        ),
        (
            {"check": {"ttl": "5s", "FailuresBeforeWarning": 2}},
            "does not support FailuresBeforeWarning",
        ),
    ],
)
async def test_unsupported_fields_are_400_and_say_so(consul, registry, fields, message) -> None:
    response = await consul.put(REGISTER, json=service(**fields))
    assert response.status_code == 400
    assert message in response.text
    assert registry.services() == []


@pytest.mark.parametrize("body", [b"", b"{nope", b"[1, 2]", b"null"])
async def test_a_body_that_is_not_an_object_is_400(consul, body) -> None:
    response = await consul.put(REGISTER, content=body)
    assert response.status_code == 400


async def test_optional_fields_may_be_null(consul, registry) -> None:
    await register(consul, service(tags=None, meta=None, check=None, weights=None))
    assert only(registry).tags == ()


async def test_a_consul_id_is_unique_across_services(consul, registry) -> None:
    await register(consul, service())
    response = await consul.put(REGISTER, json=service(name="api"))
    assert response.status_code == 409
    assert "service 'web' already has an instance with the id 'web-1'" in response.text
    response = await consul.put(
        REGISTER, json=service(name="api", id="api-1", check={"ttl": "5s", "id": "web-ttl"})
    )
    assert response.status_code == 200
    response = await consul.put(
        REGISTER, json=service(id="web-2", check={"ttl": "5s", "id": "web-ttl"})
    )
    assert response.status_code == 409
    assert "CheckID 'web-ttl' is taken by service ID 'api-1'" in response.text


async def test_reregistering_keeps_other_checks_unless_replace_existing_checks(
    consul, registry
) -> None:
    await register(consul, service(check={"tcp": "10.0.0.1:1", "interval": "10s"}))
    await register(
        consul, service(check={"http": "http://10.0.0.1/", "interval": "10s", "id": "page"})
    )
    # Consul keeps the checks a re-registration does not name ...
    assert sorted(c.id for c in only(registry).checks) == ["page", "service"]
    await register(
        consul,
        service(check={"http": "http://10.0.0.1/", "interval": "10s", "id": "page"}),
        **{"replace-existing-checks": "true"},
    )
    # ... unless asked to drop them
    assert [c.id for c in only(registry).checks] == ["page"]


async def test_a_kept_ttl_check_and_a_new_one_are_400(consul, registry) -> None:
    await register(consul, service(check={"ttl": "10s", "id": "beat"}))
    response = await consul.put(REGISTER, json=service(check={"ttl": "10s"}))
    assert response.status_code == 400
    assert "replace-existing-checks" in response.text


async def test_a_static_instance_cannot_be_replaced(tmp_path, clock) -> None:
    from srvdns.config import StaticInstanceConfig, StaticServiceConfig

    opened = Registry.open(f"sqlite:///{tmp_path}/s.db", clock=clock)
    try:
        instances = (StaticInstanceConfig(id="db-1", address="10.0.0.5", port=5432),)
        opened.sync_static([StaticServiceConfig(name="db", instances=instances)])
        async with consul_client(opened) as http:
            response = await http.put(
                REGISTER, json={"name": "db", "id": "db-1", "address": "10.0.0.6", "port": 1}
            )
            assert response.status_code == 409
            assert "config file" in response.text
            response = await http.put("/v1/agent/service/deregister/db-1")
            assert response.status_code == 409
    finally:
        opened.close()


# -- deregister and reads ----------------------------------------------------------------


async def test_deregister(consul, registry) -> None:
    await register(consul, service())
    await register(consul, service(name="api", id="api-1"))
    response = await consul.put("/v1/agent/service/deregister/web-1")
    assert (response.status_code, response.content) == (200, b"")
    assert [s.name for s in registry.services()] == ["api"]
    response = await consul.put("/v1/agent/service/deregister/web-1")
    assert response.status_code == 404
    assert 'Unknown service ID "web-1"' in response.text


async def test_agent_services_and_service(consul) -> None:
    await register(consul, service(tags=["v1"], meta={"a": "b"}, weights={"passing": 5}))
    await register(consul, service(name="api", id="api-1", port=9000))
    response = await consul.get("/v1/agent/services")
    assert response.status_code == 200
    assert int(response.headers["X-Consul-Index"]) >= 1
    web = {
        "ID": "web-1",
        "Service": "web",
        "Tags": ["v1"],
        "Meta": {"a": "b"},
        "Port": 8080,
        "Address": "10.0.0.1",
        "Weights": {"Passing": 5, "Warning": 1},
        "EnableTagOverride": False,
        "Datacenter": "dc1",
    }
    assert response.json()["web-1"] == web
    assert sorted(response.json()) == ["api-1", "web-1"]
    one = await consul.get("/v1/agent/service/web-1")
    assert one.status_code == 200
    body = one.json()
    assert body.pop("ContentHash") == one.headers["X-Consul-ContentHash"]
    assert body == web
    missing = await consul.get("/v1/agent/service/nope")
    assert missing.status_code == 404
    assert "unknown service ID: nope" in missing.text


async def test_ids_made_ambiguous_by_the_native_api(consul, registry) -> None:
    await register(consul, service())
    await registry.register(Instance(service="api", id="web-1", address="10.0.0.9", port=1))
    listed = (await consul.get("/v1/agent/services")).json()
    assert sorted(listed) == ["api:web-1", "web:web-1"]
    for response in (
        await consul.get("/v1/agent/service/web-1"),
        await consul.put("/v1/agent/service/deregister/web-1"),
    ):
        assert response.status_code == 409
        assert "ambiguous" in response.text


# -- TTL checks ----------------------------------------------------------------------------


async def test_pass_warn_fail_and_update(consul, registry, clock: Clock) -> None:
    await register(consul, service(check={"ttl": "10s"}))
    assert only(registry).effective_status(clock.now) is C  # critical until the first pass
    response = await consul.put("/v1/agent/check/pass/service:web-1", params={"note": "ok"})
    assert (response.status_code, response.content) == (200, b"")
    stored = only(registry)
    assert (stored.status, stored.checks[0].output, stored.last_heartbeat) == (P, "ok", clock.now)
    clock.advance(5)
    await consul.put("/v1/agent/check/warn/service:web-1", params={"note": "slow"})
    stored = only(registry)
    assert (stored.status, stored.checks[0].output) == (W, "slow")
    assert stored.lease_expires == clock.now + 10  # warn renews the TTL too
    await consul.put("/v1/agent/check/fail/service:web-1")
    assert only(registry).status is C
    for body, status in (
        ({"Status": "passing", "Output": "fine"}, P),
        ({"status": "warning"}, W),
        ({"STATUS": "critical", "output": "x" * 5000}, C),
    ):
        response = await consul.put("/v1/agent/check/update/service:web-1", json=body)
        assert response.status_code == 200, response.text
        assert only(registry).status is status
    assert len(only(registry).checks[0].output) == 4096  # output is capped at 4 KiB


async def test_check_ids_of_several_checks_are_numbered(consul, registry) -> None:
    await register(
        consul,
        service(checks=[{"tcp": "10.0.0.1:1", "interval": "10s"}, {"ttl": "10s"}]),
    )
    assert (await consul.put("/v1/agent/check/pass/service:web-1:2")).status_code == 200
    response = await consul.put("/v1/agent/check/pass/service:web-1:1")
    assert response.status_code == 400
    assert 'CheckID "service:web-1:1" does not have associated TTL' in response.text
    assert (await consul.put("/v1/agent/check/pass/service:web-1")).status_code == 404


async def test_explicit_check_ids(consul, registry) -> None:
    await register(consul, service(check={"ttl": "10s", "CheckID": "web-beat"}))
    assert (await consul.put("/v1/agent/check/pass/web-beat")).status_code == 200
    assert only(registry).status is P
    # an explicit id in Consul's own form is the same check
    await register(
        consul,
        service(check={"ttl": "10s", "CheckID": "service:web-1"}),
        **{"replace-existing-checks": ""},
    )
    assert [c.id for c in only(registry).checks] == ["service"]


@pytest.mark.parametrize(
    ("url", "body", "status", "message"),
    [
        ("/v1/agent/check/pass/nope", None, 404, 'Unknown check ID "nope"'),
        ("/v1/agent/check/update/service:web-1", {"Status": "up"}, 400, "Invalid check status"),
        ("/v1/agent/check/update/service:web-1", {}, 400, "Invalid check status: ''"),
        ("/v1/agent/check/update/service:web-1", {"Status": "passing", "x": 1}, 400, "x: unknown"),
    ],
)
async def test_bad_check_updates(consul, url, body, status, message) -> None:
    await register(consul, service(check={"ttl": "10s"}))
    response = await consul.put(url, json=body)
    assert response.status_code == status
    assert message in response.text


async def test_ambiguous_check_ids(consul, registry) -> None:
    await registry.register(Instance(service="web", id="a", address="10.0.0.1", port=1, ttl=5))
    await registry.register(Instance(service="api", id="b", address="10.0.0.1", port=1, ttl=5))
    response = await consul.put("/v1/agent/check/pass/ttl")
    assert response.status_code == 409
    assert "api/b, web/a" in response.text


# -- tokens --------------------------------------------------------------------------------


WRITES = [
    ("PUT", REGISTER, service()),
    ("PUT", "/v1/agent/service/deregister/web-1", None),
    ("PUT", "/v1/agent/check/pass/service:web-1", None),
    ("PUT", "/v1/agent/check/update/service:web-1", {"Status": "passing"}),
]


@pytest.mark.parametrize(("method", "url", "body"), WRITES)
async def test_writes_need_the_token(registry, method, url, body) -> None:
    async with consul_client(registry, token=TOKEN) as http:
        missing = await http.request(method, url, json=body)
        assert missing.status_code == 403
        assert missing.text.startswith("Permission denied")
        wrong = await http.request(method, url, json=body, headers={"X-Consul-Token": "nope"})
        assert (wrong.status_code, wrong.text) == (403, "ACL not found")


@pytest.mark.parametrize(
    "how",
    [
        {"headers": {"X-Consul-Token": TOKEN}},
        {"headers": {"Authorization": f"Bearer {TOKEN}"}},
        {"params": {"token": TOKEN}},
    ],
    ids=["X-Consul-Token", "bearer", "query"],
)
async def test_the_token_in_each_place_consul_reads_it(registry, how) -> None:
    async with consul_client(registry, token=TOKEN) as http:
        response = await http.put(REGISTER, json=service(check={"ttl": "5s"}), **how)
        assert response.status_code == 200, response.text
        assert (await http.put("/v1/agent/check/pass/service:web-1", **how)).status_code == 200
        # reads stay open
        assert (await http.get("/v1/agent/services")).status_code == 200
        assert (await http.get("/v1/health/service/web")).status_code == 200
