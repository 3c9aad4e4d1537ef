"""HAProxy (Debian's) balancing over srvdns's SRV answers with examples/haproxy/haproxy.cfg."""

from __future__ import annotations

import collections
import http.server
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e.harness import SrvdnsProcess

EXAMPLE = Path(__file__).parents[2] / "examples" / "haproxy" / "haproxy.cfg"
HOLD_OBSOLETE = 2.0
"""``hold obsolete`` of the example: how long a server that left DNS keeps its slot."""
RESOLVE = 1.0
"""``timeout resolve`` of the example: HAProxy asks again this often."""


class _Named(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.server.name.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def instances() -> Iterator[dict[str, tuple[str, int]]]:
    """Four HTTP servers on 127.0.0.2-5, each answering with its own name."""
    servers = []
    found: dict[str, tuple[str, int]] = {}
    for n in range(2, 6):
        server = http.server.ThreadingHTTPServer((f"127.0.0.{n}", 0), _Named)
        server.name = f"web-{n}"  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        found[f"web-{n}"] = server.server_address[:2]  # type: ignore[assignment]
    yield found
    for server in servers:
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _spread(url: str, requests: int = 30) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    with httpx.Client(timeout=5) as client:
        for _ in range(requests):
            try:
                reply = client.get(url)
            except httpx.TransportError as exc:  # HAProxy is not listening yet
                counts[type(exc).__name__] += 1
                continue
            counts[reply.text if reply.status_code == 200 else str(reply.status_code)] += 1
    return counts


def _wait_spread(url: str, wanted: set[str], timeout: float) -> collections.Counter[str]:
    """Requests until exactly the ``wanted`` instances answer them, each at least a sixth
    of them (round robin gives each a third or a half); the last spread."""
    deadline = time.monotonic() + timeout
    while True:
        counts = _spread(url)
        if set(counts) == wanted and min(counts.values()) >= 5:
            return counts
        if time.monotonic() > deadline:
            raise AssertionError(f"wanted {sorted(wanted)} within {timeout}s, got {counts}")
        time.sleep(0.2)


def test_haproxy_follows_registrations(
    srvdns: SrvdnsProcess, instances: dict[str, tuple[str, int]], tmp_path: Path
) -> None:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        pytest.fail("haproxy is not installed (Debian package haproxy)")
    port = _free_port()
    config = EXAMPLE.read_text()
    assert "nameserver srvdns 127.0.0.1:8053" in config
    assert "bind 127.0.0.1:8080" in config
    config = config.replace("127.0.0.1:8053", f"{srvdns.host}:{srvdns.port}")
    config = config.replace("bind 127.0.0.1:8080", f"bind 127.0.0.1:{port}")
    (tmp_path / "haproxy.cfg").write_text(config)
    check = subprocess.run(
        [haproxy, "-c", "-f", str(tmp_path / "haproxy.cfg")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr

    def register(name: str) -> None:
        address, instance_port = instances[name]
        reply = http.put(
            f"/v1/services/web/instances/{name}", json={"address": address, "port": instance_port}
        )
        assert reply.status_code in (200, 201), reply.text

    with srvdns.http() as http:
        for name in ("web-2", "web-3", "web-4"):
            register(name)
        process = subprocess.Popen(
            [haproxy, "-db", "-f", str(tmp_path / "haproxy.cfg")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            url = f"http://127.0.0.1:{port}/"
            _wait_spread(url, {"web-2", "web-3", "web-4"}, timeout=15)

            assert http.delete("/v1/services/web/instances/web-3").status_code in (200, 204)
            left = time.monotonic()
            _wait_spread(url, {"web-2", "web-4"}, timeout=10)
            assert time.monotonic() - left < RESOLVE + HOLD_OBSOLETE + 2

            register("web-5")
            _wait_spread(url, {"web-2", "web-4", "web-5"}, timeout=10)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
            assert process.stderr is not None
            process.stderr.close()
