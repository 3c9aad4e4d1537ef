"""The API over TLS on a live server, with a self-signed certificate made by ``openssl``:
httpx, the ``srvdns`` commands and the client library trust it through a CA file."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from e2e.harness import SrvdnsProcess, srvdns_command, wait_for, write_config

from srvdns.client import Registration

TOKEN = "tls-admin-token-4e2a"
TLS = 'api_tls_cert = "cert.pem"\napi_tls_key = "key.pem"\napi_token_file = "token"\n'


def make_cert(directory: Path, name: str = "cert.pem", key: str = "key.pem") -> Path:
    """A self-signed certificate for 127.0.0.1 (an EC P-256 key), valid for a day."""
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", str(directory / key), "-out", str(directory / name),
            "-days", "1", "-subj", "/CN=srvdns-test", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return directory / name


@pytest.fixture
def server(tmp_path: Path, launch: Callable[..., SrvdnsProcess]) -> SrvdnsProcess:
    make_cert(tmp_path)
    (tmp_path / "token").write_text(TOKEN)
    return launch(server=TLS)


def served_certificate(server: SrvdnsProcess) -> str:
    url = urlsplit(server.api)
    assert url.hostname is not None
    assert url.port is not None
    return ssl.get_server_certificate((url.hostname, url.port))


def test_api_speaks_tls_and_is_verified_with_the_ca_file(
    tmp_path: Path, server: SrvdnsProcess
) -> None:
    assert server.api.startswith("https://127.0.0.1:")
    trusted = ssl.create_default_context(cafile=tmp_path / "cert.pem")
    with httpx.Client(base_url=server.api, verify=trusted, timeout=5) as http:
        assert http.get("/v1/services").status_code == 200
        body = {"address": "10.0.0.1", "port": 80}
        put = http.put(
            "/v1/services/web/instances/web-1",
            json=body,
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert put.status_code == 201
    # Untrusted by the system's CAs; plain HTTP gets no answer.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(server.api + "/v1/services", timeout=5)
    with pytest.raises(httpx.HTTPError):
        httpx.get(server.api.replace("https://", "http://") + "/v1/services", timeout=5)
    assert server.process.poll() is None


def test_commands_take_ca_from_option_or_environment(tmp_path: Path, server: SrvdnsProcess) -> None:
    ca = str(tmp_path / "cert.pem")
    env = {"SRVDNS_TOKEN": TOKEN, "SRVDNS_CA": ""}
    registered = server.cli(
        "register", "web", "web-1", "--address", "10.0.0.1", "--port", "80",
        "--api", server.api, "--ca", ca, env=env,
    )  # fmt: skip
    assert registered.returncode == 0, registered.stderr
    listed = server.cli("ls", "--api", server.api, "--json", env={"SRVDNS_CA": ca})
    assert listed.returncode == 0, listed.stderr
    assert '"web"' in listed.stdout
    untrusted = server.cli("ls", "--api", server.api, env={"SRVDNS_CA": ""})
    assert untrusted.returncode == 1
    assert "certificate" in untrusted.stderr.lower()
    missing = server.cli("ls", "--api", server.api, "--ca", str(tmp_path / "absent.pem"))
    assert missing.returncode == 2
    assert "absent.pem: cannot use as a CA file" in missing.stderr


def test_client_library_registers_over_tls(tmp_path: Path, server: SrvdnsProcess) -> None:
    trusted = ssl.create_default_context(cafile=tmp_path / "cert.pem")
    with Registration(
        "pay", "pay-1", address="10.0.0.9", port=443, ttl="30s", api=server.api, token=TOKEN,
        ca=str(tmp_path / "cert.pem"),
    ) as registration:  # fmt: skip
        assert registration.registered
        with httpx.Client(base_url=server.api, verify=trusted, timeout=5) as http:
            assert http.get("/v1/services/pay").status_code == 200
    with httpx.Client(base_url=server.api, verify=trusted, timeout=5) as http:
        assert http.get("/v1/services/pay").status_code == 404


def test_sighup_loads_a_renewed_certificate(tmp_path: Path, server: SrvdnsProcess) -> None:
    first = served_certificate(server)
    assert ssl.PEM_cert_to_DER_cert(first) == ssl.PEM_cert_to_DER_cert(
        (tmp_path / "cert.pem").read_text()
    )
    make_cert(tmp_path)
    server.process.send_signal(signal.SIGHUP)
    wait_for(lambda: any("reloaded" in line for line in server.log))
    renewed = served_certificate(server)
    assert ssl.PEM_cert_to_DER_cert(renewed) == ssl.PEM_cert_to_DER_cert(
        (tmp_path / "cert.pem").read_text()
    )
    assert renewed != first


def test_a_key_that_does_not_match_stops_start_up(tmp_path: Path) -> None:
    make_cert(tmp_path)
    make_cert(tmp_path, "other.pem", "other-key.pem")
    (tmp_path / "token").write_text(TOKEN)
    config = write_config(tmp_path, server=TLS.replace("key.pem", "other-key.pem"))
    result = subprocess.run(
        [*srvdns_command(), "serve", "-c", str(config)], capture_output=True, text=True,
        timeout=30, env={**os.environ},
    )  # fmt: skip
    assert result.returncode == 2
    assert "server.api_tls_cert/api_tls_key: cannot use" in result.stderr
    only_cert = write_config(tmp_path, server='api_tls_cert = "cert.pem"\n')
    check = subprocess.run(
        [*srvdns_command(), "check-config", "-c", str(only_cert)], capture_output=True,
        text=True, timeout=30,
    )  # fmt: skip
    assert check.returncode == 2
    assert "api_tls_cert and api_tls_key are set together" in check.stderr
