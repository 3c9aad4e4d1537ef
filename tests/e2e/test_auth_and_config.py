"""Write tokens, start-up refusals and the config commands, through the real ``srvdns`` command."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dns.rcode
from e2e.harness import SrvdnsProcess, srvdns_command, write_config

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*srvdns_command(), *args], capture_output=True, text=True, timeout=30, cwd=cwd, check=False
    )


def test_token_protects_writes_not_reads(tmp_path: Path, launch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "token").write_text("s3cret\n")
    server: SrvdnsProcess = launch(server='api_token_file = "token"\n')
    body = {"address": "10.0.0.1", "port": 80}
    url = "/v1/services/web/instances/w1"
    with server.http() as http:
        missing = http.put(url, json=body)
        assert missing.status_code == 401
        assert "error" in missing.json()
        assert http.put(url, json=body, headers={"Authorization": "Bearer nope"}).status_code == 403
        assert http.get("/v1/services").status_code == 200
    assert server.query("web.service.local", "A").rcode() == dns.rcode.NXDOMAIN
    with server.http(token="s3cret") as http:
        assert http.put(url, json=body).status_code in (200, 201)
    assert server.query("web.service.local", "A").rcode() == dns.rcode.NOERROR

    api = ["--api", server.api]
    refused = server.cli("deregister", "web", "w1", *api)
    assert refused.returncode == 1
    assert "401" in refused.stderr or "token" in refused.stderr.lower()
    ok = server.cli("deregister", "web", "w1", *api, env={"SRVDNS_TOKEN": "s3cret"})
    assert ok.returncode == 0, ok.stderr
    # The config names the token file; its api_listen is port 0, so the address comes from
    # $SRVDNS_API.
    by_config = server.cli("ls", "-c", str(server.config), env={"SRVDNS_API": server.api})
    assert by_config.returncode == 0, by_config.stderr


def test_public_api_without_token_refuses_to_start(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace('"127.0.0.1:0"\n', '"0.0.0.0:0"\n', 1))
    assert 'api_listen = "0.0.0.0:0"' in config.read_text()
    result = run("serve", "-c", str(config))
    assert result.returncode == 2
    assert "api_listen" in result.stderr
    assert "api_token_file" in result.stderr


def test_broken_config_names_file_and_key(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[[zone]]\nname = "service.local"\ntll = 5\n')
    for command in (["check-config", "-c", str(config)], ["serve", "-c", str(config)]):
        result = run(*command)
        assert result.returncode == 2
        assert f"{config}: zone[0].tll: unknown key" in result.stderr
    assert not (tmp_path / "registry.db").exists()  # nothing started, nothing created


def test_bad_values_and_bad_toml(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[[zone]]\nname = "service.local"\nttl = "500ms"\n')
    result = run("check-config", "-c", str(config))
    assert result.returncode == 2
    assert "zone[0].ttl" in result.stderr
    config.write_text("[server\n")
    result = run("check-config", "-c", str(config))
    assert result.returncode == 2
    assert "not valid TOML" in result.stderr
    result = run("check-config", "-c", str(tmp_path / "missing.toml"))
    assert result.returncode == 2
    assert "missing.toml" in result.stderr


def test_example_config_checks_ok() -> None:
    result = run("check-config", "-c", str(REPO / "zones.example.toml"))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_db_upgrade_from_outside_the_repo(tmp_path: Path) -> None:
    database = tmp_path / "fresh.db"
    result = run("db", "upgrade", "--database", f"sqlite:///{database}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert database.exists()
    again = run("db", "upgrade", "--database", f"sqlite:///{database}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
