"""NSD and Knot, the reference servers: each started on a free loopback port with the exported
zone files, in the foreground, with its own config in a private directory."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
from nsdconf import nsd_conf

BINARIES = {
    "nsd": ("nsd", "nsd-checkzone"),
    "knot": ("knotd", "knotc"),
}
PACKAGES = {"nsd": "nsd", "knot": "knot"}


def find_binary(name: str) -> str | None:
    """A binary on PATH or in the sbin directories Debian installs daemons to."""
    found = shutil.which(name)
    if found:
        return found
    for directory in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    return None


def missing_binaries() -> list[str]:
    """The reference-server programs that are not installed, with their Debian package."""
    return [
        f"{binary} (Debian package {PACKAGES[server]})"
        for server, binaries in BINARIES.items()
        for binary in binaries
        if find_binary(binary) is None
    ]


def free_port() -> int:
    """A port that is free on 127.0.0.1 for both UDP and TCP right now."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise AssertionError("no free loopback port for both UDP and TCP")


@dataclass
class Referee:
    """One running reference server."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    host: str = "127.0.0.1"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _serving(referee: Referee, zones: Mapping[str, Path], timeout: float = 15) -> bool:
    """Wait until ``referee`` answers the SOA of every zone; False if it exited first."""
    deadline = time.monotonic() + timeout
    pending = set(zones)
    while pending:
        zone = next(iter(pending))
        with contextlib.suppress(dns.exception.DNSException, OSError):
            query = dns.message.make_query(zone, "SOA")
            reply = dns.query.udp(query, referee.host, port=referee.port, timeout=0.5)
            if reply.rcode() == dns.rcode.NOERROR and reply.answer:
                pending.discard(zone)
                continue
        if referee.process.poll() is not None:
            return False
        if time.monotonic() > deadline:
            referee.stop()
            raise AssertionError(
                f"{referee.name} did not serve {sorted(pending)}:\n{referee.log.read_text()}"
            )
        time.sleep(0.05)
    return True


def _launch(
    name: str,
    directory: Path,
    zones: Mapping[str, Path],
    configure: Callable[[int], list[str]],
) -> Referee:
    """Run the command ``configure(port)`` writes the config for and returns, on a free
    port; another port if the server exits at start (someone took the port meanwhile)."""
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "output.log"
    for _ in range(3):
        port = free_port()
        with log.open("wb") as out:
            process = subprocess.Popen(
                configure(port), cwd=directory, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        referee = Referee(name, port, process, log)
        if _serving(referee, zones):
            return referee
    raise AssertionError(f"{name} exited at start:\n{log.read_text()}")


def start_nsd(directory: Path, zones: Mapping[str, Path]) -> Referee:
    """``nsd -d`` with default answering options, no chroot, no user switch, no rate limit."""
    zone_blocks = "".join(
        f"zone:\n    name: {zone}\n    zonefile: {file}\n" for zone, file in zones.items()
    )

    def configure(port: int) -> list[str]:
        (directory / "nsd.conf").write_text(nsd_conf(directory, port, rest=zone_blocks))
        return [str(find_binary("nsd")), "-d", "-c", str(directory / "nsd.conf")]

    return _launch("nsd", directory, zones, configure)


def start_knot(directory: Path, zones: Mapping[str, Path]) -> Referee:
    """``knotd`` in the foreground with default answering options and no journal."""
    zone_blocks = "".join(f"  - domain: {zone}\n    file: {file}\n" for zone, file in zones.items())

    def configure(port: int) -> list[str]:
        (directory / "knot.conf").write_text(
            "server:\n"
            f'    rundir: "{directory}"\n'
            f"    listen: 127.0.0.1@{port}\n"
            f'    pidfile: "{directory}/knot.pid"\n'
            "log:\n"
            "  - target: stderr\n"
            "    any: info\n"
            "database:\n"
            f'    storage: "{directory}"\n'
            "template:\n"
            "  - id: default\n"
            f'    storage: "{directory}"\n'
            "    zonefile-sync: -1\n"
            "    zonefile-load: whole\n"
            "    journal-content: none\n"
            "zone:\n" + zone_blocks
        )
        return [str(find_binary("knotd")), "-c", str(directory / "knot.conf")]

    return _launch("knot", directory, zones, configure)


def check_zone(
    server: str, zone: str, file: Path, directory: Path
) -> subprocess.CompletedProcess[str]:
    """Run the server's own zone checker on ``file``: ``nsd-checkzone`` or ``knotc zone-check``."""
    directory.mkdir(parents=True, exist_ok=True)
    if server == "nsd":
        command = [str(find_binary("nsd-checkzone")), zone, str(file)]
    else:
        conf = directory / "knot-check.conf"
        conf.write_text(
            "server:\n"
            f'    rundir: "{directory}"\n'
            "database:\n"
            f'    storage: "{directory}"\n'
            "zone:\n"
            f"  - domain: {zone}\n"
            f"    file: {file}\n"
        )
        command = [str(find_binary("knotc")), "-c", str(conf), "zone-check", zone]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
