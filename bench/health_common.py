"""What the health benches share: a real srvdns process, the target process, DNS and metrics."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import httpx

HERE = Path(__file__).resolve().parent
_DNS = re.compile(r"dns listening on \[?([0-9a-f.:]+?)\]?:(\d+) ")
_API = re.compile(r"api listening on (http://\S+)")
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([-+0-9.eE]+|NaN|\+Inf)$")


def cpus() -> list[int]:
    """The CPUs this process may use."""
    return sorted(os.sched_getaffinity(0))


def pin(cpu_set: Sequence[int]) -> None:
    """Run this process (and its children from now on) on ``cpu_set``."""
    os.sched_setaffinity(0, set(cpu_set))


class Srvdns:
    """``srvdns serve`` on free loopback ports, optionally pinned to some CPUs."""

    def __init__(self, directory: Path, body: str, *, cpu: Sequence[int] | None = None) -> None:
        self.config = directory / "srvdns.toml"
        self.config.write_text(
            "[server]\n"
            'dns_listen = ["127.0.0.1:0"]\n'
            'api_listen = "127.0.0.1:0"\n'
            'database = "sqlite:///registry.db"\n' + body
        )
        script = shutil.which("srvdns") or str(Path(sys.executable).with_name("srvdns"))
        self.log: list[str] = []
        self.dns: tuple[str, int] = ("", 0)
        self.api = ""
        affinity = set(cpu) if cpu else None
        self.process = subprocess.Popen(
            [script, "serve", "-c", str(self.config)],
            cwd=directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, affinity)) if affinity else None,
        )
        ready = threading.Event()

        def read() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.log.append(line.rstrip())
                if m := _DNS.search(line):
                    self.dns = (m.group(1), int(m.group(2)))
                elif m := _API.search(line):
                    self.api = m.group(1)
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until the start-up log names the DNS and API addresses."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit("srvdns exited:\n" + "\n".join(self.log[-20:]))
            if self.api and self.dns[1]:
                return
            time.sleep(0.05)
        raise SystemExit("srvdns did not start:\n" + "\n".join(self.log[-20:]))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def metrics(self, client: httpx.Client) -> dict[str, float]:
        """The /metrics samples, ``name{labels}`` -> value."""
        out: dict[str, float] = {}
        for line in client.get(f"{self.api}/metrics").text.splitlines():
            m = _SAMPLE.match(line)
            if m:
                out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
        return out


def checks_total(samples: dict[str, float]) -> float:
    """All check results so far."""
    return sum(v for k, v in samples.items() if k.startswith("srvdns_health_checks_total{"))


class Targets:
    """The ``health_targets.py`` child: N HTTP servers on 127.0.0.1."""

    def __init__(self, count: int, *, cpu: Sequence[int] | None = None) -> None:
        affinity = set(cpu) if cpu else None
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "health_targets.py"), str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, affinity)) if affinity else None,
        )
        assert self.process.stdout is not None
        self.ports: list[int] = json.loads(self.process.stdout.readline())["ports"]

    def command(self, verb: str, indexes: Sequence[int]) -> float:
        """Send a command; returns the monotonic time it was done."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(f"{verb} {' '.join(map(str, indexes))}\n")
        self.process.stdin.flush()
        return float(self.process.stdout.readline().split()[1])

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write("quit\n")
            self.process.stdin.flush()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()


def srv_targets(server: tuple[str, int], qname: str) -> set[str]:
    """The instance labels an SRV answer over TCP names (empty for NXDOMAIN)."""
    query = dns.message.make_query(qname, dns.rdatatype.SRV)
    reply = dns.query.tcp(query, server[0], port=server[1], timeout=5)
    if reply.rcode() != dns.rcode.NOERROR:
        return set()
    return {
        rr.target.labels[0].decode()
        for rrset in reply.answer
        if rrset.rdtype == dns.rdatatype.SRV
        for rr in rrset
    }


def answers(server: tuple[str, int], qname: str) -> bool:
    """Whether an A query for ``qname`` gets NOERROR with records (over UDP)."""
    query = dns.message.make_query(qname, dns.rdatatype.A)
    reply = dns.query.udp(query, server[0], port=server[1], timeout=2)
    return reply.rcode() == dns.rcode.NOERROR and bool(reply.answer)


class UdpProbe:
    """Times single A queries over UDP (one outstanding at a time)."""

    def __init__(self, server: tuple[str, int], qname: str) -> None:
        self.server = server
        self.wire = bytearray(dns.message.make_query(qname, dns.rdatatype.A).to_wire())
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(2.0)
        self.id = 0

    def once(self) -> float:
        """The round trip of one query, in seconds (2.0 when it was lost)."""
        self.id = (self.id + 1) & 0xFFFF
        self.wire[0:2] = self.id.to_bytes(2, "big")
        started = time.perf_counter()
        self.sock.sendto(self.wire, self.server)
        while True:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                return 2.0
            if data[:2] == self.wire[:2]:
                return time.perf_counter() - started


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]
