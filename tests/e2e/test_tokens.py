"""Per-service write tokens on a live server: native and Consul endpoints, instance-id
writes checked against the instance's service, secrets kept out of logs, SIGHUP rotation."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from e2e.harness import SrvdnsProcess, srvdns_command, wait_for, write_config

WEB = "web-secret-5d1f0c"
OPS = "ops-secret-9a7e44"
LEGACY = "legacy-secret-31bb"
TOKENS = f"""
[[token]]
name = "web-deploy"
token = "{WEB}"
services = ["web", "pay-*"]

[[token]]
name = "ops"
token = "{OPS}"
admin = true
"""
BODY = {"address": "10.0.0.1", "port": 8080, "ttl": "30s"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def server(tmp_path: Path, launch: Callable[..., SrvdnsProcess]) -> SrvdnsProcess:
    (tmp_path / "tokens.toml").write_text(TOKENS)
    (tmp_path / "token").write_text(LEGACY + "\n")
    return launch(server='api_tokens_file = "tokens.toml"\napi_token_file = "token"\n')


def instances(http: httpx.Client, service: str) -> list[str]:
    response = http.get(f"/v1/services/{service}")
    if response.status_code == 404:
        return []
    return [i["id"] for i in response.json()["instances"]]


def test_a_service_token_writes_only_its_services(server: SrvdnsProcess) -> None:
    with server.http() as http:
        for path in ("web/instances/web-1", "pay-eu/instances/pay-1", "WEB/instances/web-2"):
            response = http.put(f"/v1/services/{path}", json=BODY, headers=bearer(WEB))
            assert response.status_code == 201, response.text
        refused = http.put("/v1/services/api/instances/api-1", json=BODY, headers=bearer(WEB))
        assert refused.status_code == 403
        assert refused.json() == {"error": "token 'web-deploy' may not write service 'api'"}
        assert instances(http, "api") == []

        assert http.put(
            "/v1/services/api/instances/api-1", json=BODY, headers=bearer(OPS)
        ).is_success
        for method, path in (
            ("DELETE", "/v1/services/api/instances/api-1"),
            ("PUT", "/v1/services/api/instances/api-1/heartbeat"),
            ("PUT", "/v1/services/api/instances/api-1"),
        ):
            response = http.request(method, path, json=BODY, headers=bearer(WEB))
            assert response.status_code == 403, (method, path)
            assert "may not write service 'api'" in response.json()["error"]
        assert instances(http, "api") == ["api-1"]
        # a bare heartbeat (no body) takes the API's short path: the same grants apply
        bare = http.put("/v1/services/api/instances/api-1/heartbeat", headers=bearer(WEB))
        assert bare.status_code == 403
        assert "may not write service 'api'" in bare.json()["error"]
        assert http.put(
            "/v1/services/api/instances/api-1/heartbeat", headers=bearer(OPS)
        ).is_success

        assert http.put(
            "/v1/services/web/instances/web-1/heartbeat", headers=bearer(WEB)
        ).is_success
        assert (
            http.delete("/v1/services/web/instances/web-2", headers=bearer(WEB)).status_code == 204
        )
        # api_token_file keeps working next to the tokens file, as one admin token.
        assert http.delete("/v1/services/api/instances/api-1", headers=bearer(LEGACY)).is_success
        assert (
            http.put("/v1/services/x/instances/x-1", json=BODY, headers=bearer("nope")).status_code
            == 403
        )
        assert http.put("/v1/services/x/instances/x-1", json=BODY).status_code == 401
        assert instances(http, "web") == ["web-1"]


def consul_register(name: str, service_id: str) -> dict[str, object]:
    return {
        "Name": name,
        "ID": service_id,
        "Address": "10.0.0.2",
        "Port": 80,
        "Check": {"TTL": "30s"},
    }


def test_consul_writes_are_checked_against_the_instance_service(server: SrvdnsProcess) -> None:
    web, ops = {"X-Consul-Token": WEB}, {"X-Consul-Token": OPS}
    with server.http() as http:
        assert http.put(
            "/v1/agent/service/register", json=consul_register("api", "api-1"), headers=ops
        ).is_success
        assert http.put(
            "/v1/agent/service/register", json=consul_register("pay-us", "pay-9"), headers=web
        ).is_success

        assert http.put("/v1/agent/check/pass/service:api-1", headers=ops).is_success
        refused = http.put(
            "/v1/agent/service/register", json=consul_register("api", "api-2"), headers=web
        )
        assert refused.status_code == 403
        assert "lacks permission 'service:write' on 'api'" in refused.text
        # By instance id and by check id: the instance's service decides.
        assert http.put("/v1/agent/service/deregister/api-1", headers=web).status_code == 403
        assert http.put("/v1/agent/check/fail/service:api-1", headers=web).status_code == 403
        assert http.put("/v1/agent/check/pass/service:api-1?token=" + WEB).status_code == 403
        api = http.get("/v1/health/service/api").json()
        assert [e["Service"]["ID"] for e in api] == ["api-1"]
        assert api[0]["Checks"][1]["Status"] == "passing"

        assert http.put("/v1/agent/check/fail/service:pay-9", headers=web).is_success
        assert http.put("/v1/agent/service/deregister/pay-9", headers=web).is_success
        assert http.put("/v1/agent/service/deregister/api-1", headers=ops).is_success
        assert http.get("/v1/health/service/api").json() == []


def test_tokens_never_reach_the_log(server: SrvdnsProcess) -> None:
    with server.http() as http:
        http.put("/v1/services/api/instances/a-1", json=BODY, headers=bearer(WEB))
        http.put("/v1/agent/check/pass/service:a-1?token=" + WEB)
        http.put("/v1/services/web/instances/w-1", json=BODY, headers=bearer(OPS + "x"))
    server.process.send_signal(signal.SIGHUP)
    wait_for(lambda: any("reloaded" in line for line in server.log))
    text = "\n".join(server.log)
    for secret in (WEB, OPS, LEGACY):
        assert secret not in text


def test_sighup_rotates_tokens(tmp_path: Path, server: SrvdnsProcess) -> None:
    new = "web-secret-rotated-77"
    with server.http() as http:
        assert http.put("/v1/services/web/instances/w-1", json=BODY, headers=bearer(WEB)).is_success
        (tmp_path / "tokens.toml").write_text(TOKENS.replace(WEB, new))
        server.process.send_signal(signal.SIGHUP)
        wait_for(lambda: any("reloaded" in line for line in server.log))
        old = http.put("/v1/services/web/instances/w-1/heartbeat", headers=bearer(WEB))
        assert old.status_code == 403
        assert old.json() == {"error": "the bearer token is not valid"}
        assert http.put("/v1/services/web/instances/w-1/heartbeat", headers=bearer(new)).is_success

        # A broken tokens file is refused by the reload: the rotated tokens stay.
        (tmp_path / "tokens.toml").write_text('[[token]]\nname = "x"\ntoken = "y"\n')
        server.process.send_signal(signal.SIGHUP)
        wait_for(lambda: any("reload failed" in line for line in server.log))
        assert any("token[0]: needs services" in line for line in server.log)
        assert http.put("/v1/services/web/instances/w-1/heartbeat", headers=bearer(new)).is_success
        assert server.process.poll() is None


def test_a_bad_tokens_file_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "tokens.toml").write_text(
        '[[token]]\nname = "x"\ntoken = "y"\nservices = ["a_b"]\n'
    )
    config = write_config(tmp_path, server='api_tokens_file = "tokens.toml"\n')
    result = subprocess.run(
        [*srvdns_command(), "serve", "-c", str(config)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "tokens.toml: token[0].services: 'a_b'" in result.stderr


def test_a_tokens_file_alone_guards_bare_heartbeats(
    tmp_path: Path, launch: Callable[..., SrvdnsProcess]
) -> None:
    (tmp_path / "tokens.toml").write_text(TOKENS)
    server = launch(server='api_tokens_file = "tokens.toml"\n')
    path = "/v1/services/web/instances/web-1/heartbeat"
    with server.http() as http:
        assert http.put("/v1/services/web/instances/web-1", json=BODY, headers=bearer(WEB))
        assert http.put(path).status_code == 401
        assert http.put(path, headers=bearer("nope")).status_code == 403
        assert http.put(path, headers=bearer(WEB)).status_code == 200
