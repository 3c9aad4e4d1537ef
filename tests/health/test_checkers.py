"""srvdns.health.checkers: one class per kind, against real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from health.targets import TargetPool

from srvdns.health.checkers import HttpChecker, TcpChecker, TtlChecker, http_status
from srvdns.health.definitions import MAX_OUTPUT
from srvdns.model import Check, CheckKind, CheckSpec, Instance, Status

INSTANCE = Instance(service="web", id="web-1", address="127.0.0.1", port=1)


def http(url: str, **kw) -> CheckSpec:
    return CheckSpec(id="http", kind=CheckKind.HTTP, interval=1, timeout=1, target=url, **kw)


def tcp(target: str) -> CheckSpec:
    return CheckSpec(id="tcp", kind=CheckKind.TCP, interval=1, timeout=1, target=target)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (200, Status.PASSING),
        (204, Status.PASSING),
        (299, Status.PASSING),
        (429, Status.WARNING),
        (199, Status.CRITICAL),
        (301, Status.CRITICAL),
        (404, Status.CRITICAL),
        (500, Status.CRITICAL),
        (503, Status.CRITICAL),
    ],
)
def test_http_status(code: int, status: Status) -> None:
    assert http_status(code) is status


@pytest.mark.parametrize(
    ("mode", "status", "line"),
    [
        ("ok", Status.PASSING, "200 OK"),
        ("warn", Status.WARNING, "429 Too Many Requests"),
        ("error", Status.CRITICAL, "500 Internal Server Error"),
    ],
)
async def test_http_modes(targets: TargetPool, mode: str, status: Status, line: str) -> None:
    target = targets.http(mode, body=b"all good")
    result = await HttpChecker().check(http(target.url + "/health?x=1"), INSTANCE)
    assert result.status is status
    assert result.output == f"HTTP GET {target.url}/health?x=1: {line} Output: all good"
    request = target.requests[-1].decode()
    assert request.startswith("GET /health?x=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{target.port}\r\n" in request
    assert "Connection: close\r\n" in request


async def test_http_method_and_headers(targets: TargetPool) -> None:
    target = targets.http()
    spec = http(target.url, method="HEAD", headers=(("X-Token", "s3cret"), ("User-Agent", "me")))
    result = await HttpChecker().check(spec, INSTANCE)
    assert result.status is Status.PASSING
    request = target.requests[-1].decode()
    assert request.startswith("HEAD / HTTP/1.1\r\n")
    assert "X-Token: s3cret\r\n" in request
    assert "User-Agent: me\r\n" in request  # a header of the check replaces the default
    assert request.count("User-Agent") == 1
    post = await HttpChecker().check(http(target.url, method="POST"), INSTANCE)
    assert post.status is Status.PASSING
    assert "Content-Length: 0\r\n" in target.requests[-1].decode()


async def test_http_output_is_capped_at_4_kib(targets: TargetPool) -> None:
    target = targets.http(body=b"x" * 100_000)
    result = await HttpChecker().check(http(target.url), INSTANCE)
    assert result.status is Status.PASSING
    assert result.output.endswith("Output: " + "x" * MAX_OUTPUT)


async def test_http_chunked_and_close_delimited_bodies(targets: TargetPool) -> None:
    target = targets.http()
    target.raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n"
    )
    result = await HttpChecker().check(http(target.url), INSTANCE)
    assert result.output.endswith(": 200 OK Output: hello world")
    target.raw = b"HTTP/1.0 503 Service Unavailable\r\n\r\ndown for maintenance"
    result = await HttpChecker().check(http(target.url), INSTANCE)
    assert result.status is Status.CRITICAL
    assert result.output.endswith(": 503 Service Unavailable Output: down for maintenance")
    target.raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
    result = await HttpChecker().check(http(target.url), INSTANCE)
    assert (result.status, result.output) == (
        Status.PASSING,
        f"HTTP GET {target.url}: 204 No Content",
    )


@pytest.mark.parametrize(
    "raw",
    [b"SSH-2.0-OpenSSH_9.6\r\n\r\n", b"HTTP/1.1 abc\r\n\r\n", b"", b"HTTP/1.1 200 OK\r\nContent"],
)
async def test_http_not_http_is_critical(targets: TargetPool, raw: bytes) -> None:
    target = targets.http()
    target.raw = raw
    result = await HttpChecker().check(http(target.url), INSTANCE)
    assert result.status is Status.CRITICAL
    assert result.output.startswith(f"HTTP GET {target.url}: ")


async def test_http_refused_is_critical(targets: TargetPool) -> None:
    target = targets.http("dead")
    result = await HttpChecker().check(http(target.url), INSTANCE)
    assert result.status is Status.CRITICAL
    assert "refused" in result.output.lower()


async def test_http_slow_server_is_cancelled_by_the_caller(targets: TargetPool) -> None:
    target = targets.http("slow")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await HttpChecker().check(http(target.url), INSTANCE)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_https_verification(certificate: tuple[Path, Path]) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        url = f"https://127.0.0.1:{port}/"
        checker = HttpChecker()
        untrusted = await checker.check(http(url), INSTANCE)
        assert untrusted.status is Status.CRITICAL
        assert "certificate" in untrusted.output.lower()
        skipped = await checker.check(http(url, tls_skip_verify=True), INSTANCE)
        assert (skipped.status, skipped.output) == (
            Status.PASSING,
            f"HTTP GET {url}: 200 OK Output: secure",
        )
    finally:
        server.close()
        await server.wait_closed()


async def test_tcp(targets: TargetPool) -> None:
    target = targets.http()
    result = await TcpChecker().check(tcp(f"127.0.0.1:{target.port}"), INSTANCE)
    assert (result.status, result.output) == (
        Status.PASSING,
        f"TCP connect 127.0.0.1:{target.port}: success",
    )
    target.set("dead")
    result = await TcpChecker().check(tcp(f"127.0.0.1:{target.port}"), INSTANCE)
    assert result.status is Status.CRITICAL
    assert "refused" in result.output.lower()


async def test_ttl() -> None:
    now = [1000.0]
    checker = TtlChecker(lambda: now[0])
    leased = Instance(
        service="web", id="w", address="10.0.0.1", port=1, ttl=10, last_heartbeat=995.0
    )
    spec = CheckSpec(id="ttl", kind=CheckKind.TTL, interval=10, timeout=0, ttl=10)
    assert (await checker.check(spec, leased)).status is Status.PASSING
    now[0] = 1005.0  # the lease ends exactly now
    lapsed = await checker.check(spec, leased)
    assert lapsed.status is Status.CRITICAL
    now[0] = 1007.5
    assert (await checker.check(spec, leased)).output == (
        "TTL expired: no heartbeat for 2500ms past the lease"
    )


async def test_ttl_keeps_the_status_of_the_last_heartbeat_while_the_lease_runs() -> None:
    """A Consul ``warn`` or ``fail`` renews the lease with that status: it holds until the
    next heartbeat or the lapse, the checker does not turn it passing."""
    now = [1000.0]
    checker = TtlChecker(lambda: now[0])
    spec = CheckSpec(id="ttl", kind=CheckKind.TTL, interval=10, timeout=0, ttl=10)
    warned = Check(spec=spec, status=Status.WARNING, output="disk 91% full")
    leased = Instance(
        service="web",
        id="w",
        address="10.0.0.1",
        port=1,
        ttl=10,
        last_heartbeat=995.0,
        checks=(warned,),
    )
    result = await checker.check(spec, leased)
    assert (result.status, result.output) == (Status.WARNING, "disk 91% full")
    now[0] = 1005.0
    assert (await checker.check(spec, leased)).status is Status.CRITICAL
