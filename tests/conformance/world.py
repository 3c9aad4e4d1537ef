"""One srvdns with a varied registry, its exported zones, and NSD and Knot serving them."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.rcode
from conformance.compare import Zones
from conformance.dataset import CONFIG, LAPSING, OTHER_ZONES, ZONE, registrations
from conformance.referees import Referee, start_knot, start_nsd
from e2e.harness import SrvdnsProcess, srvdns_command, start, wait_for, write_config


@dataclass
class World:
    srvdns: SrvdnsProcess
    referees: dict[str, Referee]
    """``nsd`` and ``knot``, serving ``files``."""
    files: dict[str, Path]
    """zone name -> the master file ``srvdns export-zone`` wrote."""
    zones: Zones
    directory: Path


def export_zone(config: Path, zone: str, out: Path) -> subprocess.CompletedProcess[str]:
    """``srvdns export-zone -c config --zone zone -o out``."""
    return subprocess.run(
        [*srvdns_command(), "export-zone", "-c", str(config), "--zone", zone, "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _register(server: SrvdnsProcess) -> None:
    """Everything of ``dataset``, through the HTTP API; returns once the 1 s leases lapsed."""
    with server.http() as http:
        lapsing_since = time.monotonic()
        for service, ident, body in [*LAPSING, *registrations()]:
            reply = http.put(f"/v1/services/{service}/instances/{ident}", json=body)
            assert reply.status_code in (200, 201), (
                f"registering {service}/{ident}: {reply.text}\n" + "\n".join(server.log[-20:])
            )
    time.sleep(max(0.0, lapsing_since + 1.0 - time.monotonic()))
    wait_for(lambda: server.query(f"gone.{ZONE}", "A").rcode() == dns.rcode.NXDOMAIN, timeout=5)


@contextlib.contextmanager
def running_world(directory: Path) -> Iterator[World]:
    """Start srvdns, register the data set, export every zone, start NSD and Knot on the
    files; stop all of them (only these processes) at the end."""
    server = start(write_config(directory, CONFIG))
    referees: dict[str, Referee] = {}
    try:
        _register(server)
        files = {zone: directory / f"{zone}.zone" for zone in (ZONE, *OTHER_ZONES)}
        exported_at = time.time()
        for zone, file in files.items():
            result = export_zone(server.config, zone, file)
            assert result.returncode == 0, result.stderr
        zones = Zones.load({zone: file.read_text() for zone, file in files.items()}, exported_at)
        referees["nsd"] = start_nsd(directory / "nsd", files)
        referees["knot"] = start_knot(directory / "knot", files)
        yield World(server, referees, files, zones, directory)
    finally:
        for referee in referees.values():
            referee.stop()
        server.stop()
