"""A legacy app's view: a network namespace whose resolv.conf names only srvdns.

srvdns runs inside the namespace on port 53 with ``[forward]`` pointing at an upstream
that also runs there; glibc (``getent``, ``getaddrinfo``) and curl resolve registered
services by full name and through the search domain, and other names through the
upstream.  Skipped where network namespaces cannot be made (not root, no ``ip``).
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.harness import srvdns_command, wait_for

NETNS_ETC = Path("/etc/netns")
FAKE_UPSTREAM = Path(__file__).resolve().parent.parent / "fakeupstream.py"
HTTP_PORT = 8080


def _zone() -> str:
    """service.local, unless nss-mdns would keep glibc from asking DNS for .local names."""
    try:
        hosts = [
            line
            for line in Path("/etc/nsswitch.conf").read_text().splitlines()
            if line.startswith("hosts:")
        ]
    except OSError:
        hosts = []
    return "service.internal" if any("mdns" in line for line in hosts) else "service.local"


class Netns:
    def __init__(self, name: str, created_etc: bool) -> None:
        self.name = name
        self.created_etc = created_etc
        self.processes: list[subprocess.Popen[str]] = []

    def run(self, *command: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *command: str, ready: str, cwd: Path | None = None) -> list[str]:
        """Start ``command`` in the namespace; wait for ``ready`` in its output."""
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.name, *command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=cwd,
        )
        self.processes.append(process)
        lines: list[str] = []
        seen = threading.Event()

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line.rstrip("\n"))
                if ready in line:
                    seen.set()
            seen.set()

        threading.Thread(target=read, daemon=True).start()
        if not seen.wait(20) or not any(ready in line for line in lines):
            raise AssertionError(f"{command[0]} did not start:\n" + "\n".join(lines))
        return lines

    def close(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
            if process.stdout is not None:
                process.stdout.close()
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True, check=False)
        shutil.rmtree(NETNS_ETC / self.name, ignore_errors=True)
        if self.created_etc:
            with contextlib.suppress(OSError):
                NETNS_ETC.rmdir()


@pytest.fixture
def netns() -> Iterator[Netns]:
    if shutil.which("ip") is None:
        pytest.skip("network namespaces: the ip command (iproute2) is not installed")
    if shutil.which("curl") is None or shutil.which("getent") is None:
        pytest.skip("curl and getent are needed inside the namespace")
    name = f"srvdns-test-{secrets.token_hex(4)}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"network namespaces are not permitted here: {made.stderr.strip()}")
    created_etc = not NETNS_ETC.exists()
    space = Netns(name, created_etc)
    try:
        space.run("ip", "link", "set", "lo", "up").check_returncode()
        yield space
    finally:
        space.close()


def test_legacy_app_resolves_through_srvdns(netns: Netns, tmp_path: Path) -> None:
    zone = _zone()
    (NETNS_ETC / netns.name).mkdir(parents=True)
    (NETNS_ETC / netns.name / "resolv.conf").write_text(
        f"nameserver 127.0.0.1\nsearch {zone}\noptions timeout:2 attempts:2\n"
    )
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("hello from web-1\n")
    config = tmp_path / "srvdns.toml"
    config.write_text(
        "[server]\n"
        'dns_listen = ["127.0.0.1:53"]\n'
        'api_listen = "127.0.0.1:8054"\n'
        'database = "sqlite:///registry.db"\n\n'
        f'[[zone]]\nname = "{zone}"\nttl = 5\n\n'
        '[forward]\nupstreams = ["127.0.0.1:5353"]\ntimeout = "1s"\n'
    )
    netns.start(sys.executable, str(FAKE_UPSTREAM), "127.0.0.1", "5353", ready="ready")
    _start_http(netns, tmp_path)
    netns.start(*srvdns_command(), "serve", "-c", str(config), ready="api listening", cwd=tmp_path)
    registered = netns.run(
        *srvdns_command(),
        "register",
        "web",
        "web-1",
        "--address",
        "127.0.0.1",
        "--port",
        str(HTTP_PORT),
        "--api",
        "http://127.0.0.1:8054",
    )
    assert registered.returncode == 0, registered.stderr

    def resolves(name: str, address: str) -> bool:
        result = netns.run("getent", "hosts", name)
        return result.returncode == 0 and result.stdout.split()[0] == address

    wait_for(lambda: resolves(f"web.{zone}", "127.0.0.1"), timeout=10)
    assert resolves("web", "127.0.0.1")  # through the search domain
    assert resolves("www.example.test", "192.0.2.1")  # forwarded to the upstream
    assert netns.run("getent", "hosts", "nothing.example.test").returncode != 0

    lookup = netns.run(
        sys.executable,
        "-c",
        "import socket, sys; print(sorted({a[4][0] for a in socket.getaddrinfo("
        "sys.argv[1], 80, proto=socket.IPPROTO_TCP)}))",
        f"web.{zone}",
    )
    assert lookup.stdout.strip() == "['127.0.0.1']", lookup.stderr

    for url in (f"http://web.{zone}:{HTTP_PORT}/", f"http://web:{HTTP_PORT}/"):
        fetched = netns.run("curl", "-sS", "--max-time", "10", url)
        assert fetched.stdout == "hello from web-1\n", fetched.stderr


def _start_http(netns: Netns, tmp_path: Path) -> None:
    """An HTTP server in the namespace, the instance registered as web-1."""
    netns.start(
        sys.executable,
        "-u",
        "-m",
        "http.server",
        str(HTTP_PORT),
        "--bind",
        "127.0.0.1",
        "--directory",
        str(tmp_path / "www"),
        ready="Serving HTTP",
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if (
            netns.run("curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{HTTP_PORT}/").returncode
            == 0
        ):
            return
        time.sleep(0.05)
