"""Starts a real ``srvdns serve`` process on free loopback ports and talks to it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import httpx
import pytest

_DNS_LINE = re.compile(r"dns listening on \[?([0-9a-f.:]+?)\]?:(\d+) ")
_API_LINE = re.compile(r"api listening on (https?://[^\s\"]+)")


def srvdns_command() -> list[str]:
    """The installed console script, as a user would run it."""
    script = Path(sys.executable).with_name("srvdns")
    if script.exists():
        return [str(script)]
    found = shutil.which("srvdns")
    return [found] if found else [sys.executable, "-m", "srvdns"]


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A loopback port nothing is bound to right now."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def socket_activate() -> str:
    """The path of systemd-socket-activate (the test fails without it)."""
    path = shutil.which("systemd-socket-activate")
    if path is None:
        pytest.fail("systemd-socket-activate is not installed (Debian package systemd)")
    return path


def socket_activated(dns_port: int, api_port: int, serve: list[str]) -> list[str]:
    """``srvdns`` + ``serve`` run as srvdns.socket and srvdns-api.socket hand over UDP and
    TCP DNS on ``dns_port`` and the API on ``api_port``.  One systemd-socket-activate
    listens on stream or (--datagram) on datagram sockets only, but it passes on the
    sockets it was handed itself: an outer one with the UDP socket runs an inner one with
    the TCP sockets, which runs srvdns."""
    activate = socket_activate()
    return [
        activate,
        "--datagram",
        f"--listen=127.0.0.1:{dns_port}",
        "--fdname=dns",
        activate,
        f"--listen=127.0.0.1:{dns_port}",
        f"--listen=127.0.0.1:{api_port}",
        "--fdname=dns:dns:api",  # the inherited UDP socket first
        *srvdns_command(),
        *serve,
    ]


def write_config(
    directory: Path, body: str = "", *, server: str = "", dns_listen: str = '["127.0.0.1:0"]'
) -> Path:
    """A config file with free ports (port 0) and a SQLite file in ``directory``.

    ``server`` holds extra ``[server]`` keys; ``body`` the zones (default: service.local).
    """
    path = directory / "srvdns.toml"
    path.write_text(
        "[server]\n"
        f"dns_listen = {dns_listen}\n"
        'api_listen = "127.0.0.1:0"\n'
        'database = "sqlite:///registry.db"\n'
        + textwrap.dedent(server)
        + "\n"
        + textwrap.dedent(
            body
            or """\
            [[zone]]
            name = "service.local"
            ttl = 5
            """
        )
    )
    return path


@dataclass
class SrvdnsProcess:
    """One running srvdns and its addresses."""

    config: Path
    process: subprocess.Popen[str]
    dns: list[tuple[str, int]] = field(default_factory=list)
    api: str = ""
    log: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self.dns[0][0]

    @property
    def port(self) -> int:
        return self.dns[0][1]

    def query(
        self,
        qname: str,
        rdtype: str,
        *,
        tcp: bool = False,
        where: tuple[str, int] | None = None,
        **make_query: object,
    ) -> dns.message.Message:
        """Ask srvdns over UDP (default) or TCP with dnspython."""
        host, port = where or self.dns[0]
        query = dns.message.make_query(qname, dns.rdatatype.from_text(rdtype), **make_query)  # type: ignore[arg-type]
        if tcp:
            return dns.query.tcp(query, host, port=port, timeout=3)
        return dns.query.udp(query, host, port=port, timeout=3)

    def http(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.api, headers=headers, timeout=5)

    def dig(self, *args: str) -> str:
        """Run ``dig`` against this server and return its output."""
        result = subprocess.run(
            ["dig", f"@{self.host}", "-p", str(self.port), "+tries=1", "+time=3", *args],
            capture_output=True,
            text=True,
            timeout=15,
            check=True,
        )
        return result.stdout

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run an ``srvdns`` client command against this server's API."""
        return subprocess.run(
            [*srvdns_command(), *args],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, **(env or {})},
            check=False,
        )

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the process (SIGTERM: clean shutdown; SIGKILL: crash) and return its status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            status = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            status = self.process.wait(timeout=5)
        if self.reader is not None:
            self.reader.join(timeout=5)
        if self.process.stderr is not None:
            self.process.stderr.close()
        return status


def start(
    config: Path,
    *,
    timeout: float = 20.0,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    prefix: tuple[str, ...] = (),
) -> SrvdnsProcess:
    """Start ``srvdns serve -c config [args]`` and wait until DNS and the API listen;
    ``prefix`` is a command that runs it (``("prlimit", "--nofile=200")``)."""
    process = subprocess.Popen(
        [*prefix, *srvdns_command(), "serve", "-c", str(config), *args],
        env=None if env is None else {**os.environ, **env},
        cwd=config.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = SrvdnsProcess(config=config, process=process)
    ready = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            server.log.append(line.rstrip("\n"))
            if m := _DNS_LINE.search(line):
                server.dns.append((m.group(1), int(m.group(2))))
            elif m := _API_LINE.search(line):
                server.api = m.group(1)
                ready.set()
        ready.set()

    server.reader = threading.Thread(target=read, daemon=True)
    server.reader.start()
    deadline = time.monotonic() + timeout
    while not ready.wait(0.05):
        if time.monotonic() > deadline:
            server.stop(signal.SIGKILL)
            raise AssertionError("srvdns did not start:\n" + "\n".join(server.log))
    if not server.api or not server.dns:
        server.stop(signal.SIGKILL)
        raise AssertionError("srvdns exited at start-up:\n" + "\n".join(server.log))
    return server


def wait_for(predicate: object, *, timeout: float = 5.0, interval: float = 0.02) -> None:
    """Poll ``predicate()`` until it is true; fail after ``timeout`` seconds."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
