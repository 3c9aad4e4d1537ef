"""``srvdns register / deregister / heartbeat / ls`` against a real API server over HTTP."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from api.support import RESERVED, TOKEN, Clock

from srvdns.api import commands
from srvdns.api.app import create_app
from srvdns.api.client import ApiClient, ApiError
from srvdns.cli import main
from srvdns.config import ListenAddress
from srvdns.errors import ApiClientError
from srvdns.registry.registry import Registry


class ApiServer:
    """The API served by uvicorn on 127.0.0.1:<free port>, in a background thread."""

    def __init__(self, registry: Registry) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(registry, token=TOKEN, reserved_names=RESERVED)
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", ws="none", http="h11"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]})

    def __enter__(self) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn stopped"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()


@pytest.fixture
def server(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiServer]:
    monkeypatch.delenv("SRVDNS_API", raising=False)
    monkeypatch.setenv("SRVDNS_TOKEN", TOKEN)
    with ApiServer(registry) as running:
        yield running


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_register_ls_heartbeat_deregister(
    server: ApiServer, capsys: pytest.CaptureFixture[str], clock: Clock
) -> None:
    api = ("--api", server.url)
    status, out, err = run(
        capsys, "register", "Web", "web-1", "--address", "10.0.0.11", "--port", "8080",
        "--tag", "v2", "--tag", "primary", "--meta", "version=1.2", "--meta", "zone=a=b",
        "--weight", "5", "--priority", "1", "--ttl", "30s", *api,
    )  # fmt: skip
    assert status == 0, err
    assert out.startswith("registered web/web-1 at 10.0.0.11:8080, lease until ")

    status, out, err = run(capsys, "register", "web", "web-2", "--address", "::1",
                           "--port", "80", *api)  # fmt: skip
    assert (status, out) == (0, "registered web/web-2 at [::1]:80\n"), err

    status, out, _ = run(capsys, "ls", *api)
    assert status == 0
    assert out.splitlines() == ["NAME  INSTANCES  HEALTHY", "web           2        2"]

    clock.advance(20.2)
    status, out, _ = run(capsys, "ls", "web", *api)
    assert status == 0
    header, first, second = (line.split() for line in out.splitlines())
    assert header == ["ID", "ADDRESS", "PORT", "STATUS", "TAGS", "WEIGHT", "PRIORITY", "LEASE"]
    assert first == ["web-1", "10.0.0.11", "8080", "passing", "v2,primary", "5", "1", "10s"]
    assert second == ["web-2", "::1", "80", "passing", "-", "1", "0", "-"]

    status, out, err = run(capsys, "heartbeat", "web", "web-1", *api)
    assert status == 0, err
    assert out.startswith("renewed web/web-1, lease until ")

    clock.advance(31)
    status, out, _ = run(capsys, "ls", "web", *api)
    assert out.splitlines()[1].split()[3::4] == ["critical", "expired"]
    status, out, _ = run(capsys, "ls", *api)
    assert out.splitlines()[1].split() == ["web", "2", "1"]

    status, out, err = run(capsys, "deregister", "web", "web-1", *api)
    assert (status, out) == (0, "deregistered web/web-1\n"), err
    status, out, err = run(capsys, "deregister", "web", "web-1", *api)
    assert status == 1
    assert out == ""
    assert "HTTP 404 Not Found: " in err
    assert "web-1" in err


def test_json_output(server: ApiServer, capsys: pytest.CaptureFixture[str]) -> None:
    api = ("--api", server.url, "--json")
    status, out, _ = run(capsys, "register", "db", "db-1", "--address", "10.0.0.5",
                         "--port", "5432", "--meta", "role=primary", "--ttl", "1m",
                         *api)  # fmt: skip
    assert status == 0
    made = json.loads(out)
    assert (made["service"], made["id"], made["meta"], made["ttl"]) == (
        "db",
        "db-1",
        {"role": "primary"},
        60.0,
    )

    status, out, _ = run(capsys, "ls", *api)
    assert json.loads(out) == [{"name": "db", "instances": 1, "healthy": 1}]

    status, out, _ = run(capsys, "ls", "db", *api)
    one = json.loads(out)
    assert one["name"] == "db"
    assert [i["id"] for i in one["instances"]] == ["db-1"]

    status, out, _ = run(capsys, "heartbeat", "db", "db-1", *api)
    assert json.loads(out)["lease_remaining"] == 60.0

    status, out, _ = run(capsys, "deregister", "db", "db-1", *api)
    assert json.loads(out) == {"service": "db", "id": "db-1", "deregistered": True}


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        pytest.param(["register", "web", "w", "--address", "10.0.0.1", "--port", "0"], "port",
                     id="port-0"),
        pytest.param(["register", "we_b", "w", "--address", "10.0.0.1", "--port", "80"],
                     "service", id="bad-service"),
        pytest.param(["register", "web", "w", "--address", "nope", "--port", "80"], "address",
                     id="bad-address"),
        pytest.param(["register", "web", "w", "--address", "10.0.0.1", "--port", "80",
                      "--ttl", "soon"], "ttl", id="bad-ttl"),
        pytest.param(["register", "web", "w", "--address", "10.0.0.1", "--port", "80",
                      "--meta", "bad key=v"], "meta", id="bad-meta-key"),
        pytest.param(["heartbeat", "web", "w"], "404", id="heartbeat-unknown"),
        pytest.param(["ls", "nothing"], "404", id="ls-unknown"),
    ],
)  # fmt: skip
def test_api_errors_exit_1_with_the_message(
    server: ApiServer, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    status, out, err = run(capsys, *argv, "--api", server.url)
    assert status == 1
    assert out == ""
    assert err.startswith(f"srvdns {argv[0]}: HTTP ")
    assert needle in err


def test_heartbeat_without_ttl_exits_1(
    server: ApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    api = ("--api", server.url)
    assert (
        run(capsys, "register", "web", "w", "--address", "10.0.0.1", "--port", "80", *api)[0] == 0
    )
    status, _, err = run(capsys, "heartbeat", "web", "w", *api)
    assert status == 1
    assert "HTTP 409" in err


def test_token_from_the_environment(
    server: ApiServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ("register", "web", "w", "--address", "10.0.0.1", "--port", "80", "--api", server.url)
    monkeypatch.delenv("SRVDNS_TOKEN")
    status, _, err = run(capsys, *argv)
    assert (status, "HTTP 401" in err) == (1, True)
    monkeypatch.setenv("SRVDNS_TOKEN", "wrong")
    status, _, err = run(capsys, *argv)
    assert (status, "HTTP 403" in err) == (1, True)
    monkeypatch.setenv("SRVDNS_TOKEN", TOKEN)
    assert run(capsys, *argv)[0] == 0
    monkeypatch.delenv("SRVDNS_TOKEN")
    assert run(capsys, "ls", "--api", server.url)[0] == 0  # reads need no token


def write_config(tmp_path: Path, api_listen: str, token: str | None = TOKEN) -> Path:
    server = f'api_listen = "{api_listen}"\n'
    if token is not None:
        (tmp_path / "token").write_text(token + "\n")
        server += 'api_token_file = "token"\n'
    path = tmp_path / "srvdns.toml"
    path.write_text(f'[server]\n{server}\n[[zone]]\nname = "service.local"\n')
    return path


def test_url_and_token_from_the_config(
    server: ApiServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.delenv("SRVDNS_TOKEN")
    monkeypatch.setenv("SRVDNS_API", "http://127.0.0.1:9")  # the config wins
    config = write_config(tmp_path, f"127.0.0.1:{server.port}")
    status, _, err = run(capsys, "register", "web", "w", "--address", "10.0.0.1",
                         "--port", "80", "-c", str(config))  # fmt: skip
    assert status == 0, err
    assert run(capsys, "ls", "-c", str(config))[1].splitlines()[1].split() == ["web", "1", "1"]


def test_config_with_port_0_needs_the_url_elsewhere(
    server: ApiServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.delenv("SRVDNS_TOKEN")
    config = str(write_config(tmp_path, "127.0.0.1:0"))
    status, _, err = run(capsys, "ls", "-c", config)
    assert status == 2
    assert "port 0" in err
    monkeypatch.setenv("SRVDNS_API", server.url)
    argv = ("register", "web", "w", "--address", "10.0.0.1", "--port", "80", "-c", config)
    assert run(capsys, *argv)[0] == 0  # the token still comes from the config


def test_url_from_the_environment(
    server: ApiServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SRVDNS_API", server.url + "/")
    status, out, err = run(capsys, "ls")
    assert status == 0, err
    assert out == "NAME  INSTANCES  HEALTHY\n"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        pytest.param(["register", "web", "w", "--address", "10.0.0.1", "--port", "80",
                      "--meta", "novalue"], "KEY=VALUE", id="meta-without-equals"),
        pytest.param(["ls", "--api", "127.0.0.1:8054"], "http://", id="url-without-scheme"),
        pytest.param(["ls", "-c", "/nonexistent/srvdns.toml"], "cannot read",
                     id="missing-config"),
    ],
)  # fmt: skip
def test_usage_and_config_errors_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str],
    needle: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("SRVDNS_API", "http://127.0.0.1:9")
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert needle in err


def test_invalid_config_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[server]\napi_listen = "nowhere"\n[[zone]]\nname = "service.local"\n')
    status, _, err = run(capsys, "ls", "-c", str(path))
    assert status == 2
    assert "server.api_listen" in err


def test_unreachable_api_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    status, out, err = run(capsys, "ls", "--api", f"http://127.0.0.1:{port}")
    assert (status, out) == (1, "")
    assert "cannot connect" in err


def test_client_raises_api_error_with_status(server: ApiServer) -> None:
    with ApiClient(server.url, token=None) as client:
        with pytest.raises(ApiError) as caught:
            client.register("web", "w", address="10.0.0.1", port=80)
        assert caught.value.status == 401
        with pytest.raises(ApiClientError) as missing:
            client.get_service("nothing")
        assert isinstance(missing.value, ApiError)
        assert missing.value.status == 404
    with ApiClient(server.url, token=TOKEN) as client, pytest.raises(ApiError) as bad:
        client.register("web", "w", address="10.0.0.1", port=80, weight=70000)
    assert bad.value.status == 422
    assert [e["field"] for e in bad.value.errors] == ["weight"]


def test_client_registers_checks_and_weights(server: ApiServer) -> None:
    with ApiClient(server.url, token=TOKEN) as client:
        made = client.register(
            "web",
            "w",
            address="10.0.0.1",
            port=80,
            checks=[{"tcp": "10.0.0.1:80", "interval": "5s"}],
            weights={"passing": 4, "warning": 1},
        )
    assert [(c["kind"], c["interval"]) for c in made["checks"]] == [("tcp", 5.0)]
    assert made["weights"] == {"passing": 4, "warning": 1}


def test_client_encodes_dot_ids(server: ApiServer) -> None:
    with ApiClient(server.url, token=TOKEN) as client:
        made = client.register("web", "..", address="10.0.0.1", port=80)
        assert made["id"] == ".."
        assert [i["id"] for i in client.get_service("web")["instances"]] == [".."]
        client.deregister("web", "..")
        assert client.list_services() == []


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("", "http://127.0.0.1:8054"),
        ("0.0.0.0", "http://127.0.0.1:8054"),
        ("::", "http://[::1]:8054"),
        ("::1", "http://[::1]:8054"),
        ("10.1.2.3", "http://10.1.2.3:8054"),
    ],
)
def test_listen_url(host: str, url: str) -> None:
    assert commands.listen_url(ListenAddress(host=host, port=8054)) == url


@pytest.mark.parametrize(
    ("remaining", "text"),
    [(None, "-"), (0.0, "expired"), (0.25, "250ms"), (9.2, "10s"), (60, "1m"), (90, "1m30s")],
)
def test_lease_text(remaining: float | None, text: str) -> None:
    assert commands.lease_text({"lease_remaining": remaining}) == text
