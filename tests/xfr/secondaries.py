"""NSD and Knot configured as secondaries of a running srvdns, on free loopback ports.

Each pulls its zone from srvdns (IXFR, falling back to AXFR), takes NOTIFY from
127.0.0.1 and serves the zone; the helpers wait until it does.
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
from conformance.referees import Referee, find_binary, free_port
from e2e.harness import SrvdnsProcess, wait_for
from nsdconf import nsd_conf


def _soa_serial(host: str, port: int, zone: str) -> int | None:
    with contextlib.suppress(dns.exception.DNSException, OSError):
        reply = dns.query.udp(dns.message.make_query(zone, "SOA"), host, port=port, timeout=0.5)
        if reply.rcode() == dns.rcode.NOERROR and reply.answer:
            return int(reply.answer[0][0].serial)
    return None


def wait_for_serial(secondary: Referee, zone: str, serial: int, timeout: float = 15) -> None:
    """Wait until ``secondary`` serves ``zone`` at ``serial`` or later."""
    deadline = time.monotonic() + timeout
    while True:
        found = _soa_serial(secondary.host, secondary.port, zone)
        if found is not None and found >= serial:
            return
        if secondary.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(
                f"{secondary.name} serves {zone} at serial {found}, not {serial}:\n"
                + secondary.log.read_text()
            )
        time.sleep(0.02)


def _run(name: str, command: list[str], directory: Path, port: int) -> Referee:
    log = directory / "output.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=directory, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    return Referee(name, port, process, log)


Key = tuple[str, str]
"""A TSIG key: name and base64 hmac-sha256 secret."""


def start_nsd_secondary(
    directory: Path, zone: str, primary: tuple[str, int], port: int, key: Key | None = None
) -> Referee:
    """``nsd -d`` on ``port``, secondary for ``zone`` from ``primary``; with ``key``,
    transfers and NOTIFYs must be signed with it."""
    directory.mkdir(parents=True, exist_ok=True)
    host, primary_port = primary
    key_clause = (
        f"key:\n    name: {key[0]}\n    algorithm: hmac-sha256\n    secret: {key[1]}\n"
        if key
        else ""
    )
    key_name = key[0] if key else "NOKEY"
    (directory / "nsd.conf").write_text(
        nsd_conf(
            directory,
            port,
            # NSD waits 1 s by default after a transfer before serving it
            server="    verbosity: 2\n    xfrd-reload-timeout: 0\n",
            rest=key_clause + "zone:\n"
            f"    name: {zone}\n"
            f"    zonefile: {zone}.zone\n"
            f"    allow-notify: 127.0.0.1 {key_name}\n"
            f"    request-xfr: {host}@{primary_port} {key_name}\n",
        )
    )
    command = [str(find_binary("nsd")), "-d", "-c", str(directory / "nsd.conf")]
    return _run("nsd", command, directory, port)


def start_knot_secondary(
    directory: Path, zone: str, primary: tuple[str, int], port: int, key: Key | None = None
) -> Referee:
    """``knotd`` on ``port``, secondary for ``zone`` from ``primary``; with ``key``,
    transfers and NOTIFYs must be signed with it."""
    keyed = f"    key: {key[0]}\n" if key else ""
    directory.mkdir(parents=True, exist_ok=True)
    host, primary_port = primary
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
        + (
            f"key:\n  - id: {key[0]}\n    algorithm: hmac-sha256\n    secret: {key[1]}\n"
            if key
            else ""
        )
        + "remote:\n"
        "  - id: primary\n"
        f"    address: {host}@{primary_port}\n" + keyed + "acl:\n"
        "  - id: notify-from-primary\n"
        f"    address: {host}\n"
        "    action: notify\n" + keyed + "template:\n"
        "  - id: default\n"
        f'    storage: "{directory}"\n'
        "    zonefile-sync: -1\n"
        "    zonefile-load: none\n"
        "    journal-content: changes\n"
        "zone:\n"
        f"  - domain: {zone}\n"
        "    master: primary\n"
        "    acl: notify-from-primary\n"
    )
    command = [str(find_binary("knotd")), "-c", str(directory / "knot.conf")]
    return _run("knot", command, directory, port)


def launch_secondary(
    kind: str,
    directory: Path,
    zone: str,
    primary: tuple[str, int],
    serial: int,
    key: Key | None = None,
    timeout: float = 15,
) -> Referee:
    """Start an NSD or Knot secondary on a free port and wait until it serves ``serial``;
    another port if it could not bind (someone took the port meanwhile)."""
    start = start_nsd_secondary if kind == "nsd" else start_knot_secondary
    for attempt in range(3):
        secondary = start(directory / f"{kind}-{attempt}", zone, primary, free_port(), key)
        try:
            wait_for_serial(secondary, zone, serial, timeout)
        except AssertionError:
            secondary.stop()
            if secondary.process.returncode in (0, None) or attempt == 2:
                raise
            continue
        return secondary
    raise AssertionError("unreachable")


def notify_line(secondaries: list[Referee], key: str | None = None) -> str:
    """The ``notify = [...]`` line of a zone that notifies ``secondaries``."""
    if key is None:
        entries = [f'"127.0.0.1:{s.port}"' for s in secondaries]
    else:
        entries = [f'{{ address = "127.0.0.1:{s.port}", key = "{key}" }}' for s in secondaries]
    return f"notify = [{', '.join(entries)}]"


def enable_notify(primary: SrvdnsProcess, line: str) -> None:
    """Add ``line`` (see ``notify_line``) below the zone's ``transfer_to`` and reload
    srvdns (SIGHUP): from then on it notifies those secondaries.  The reload moves the
    serial; returns once srvdns serves the new one."""
    text = primary.config.read_text()
    changed = re.sub(
        r"^(\s*transfer_to = .*)$", lambda m: f"{m.group(1)}\n{line}", text, count=1, flags=re.M
    )
    assert changed != text
    before = _soa_serial(*primary.dns[0], "service.local")
    primary.config.write_text(changed)
    primary.process.send_signal(signal.SIGHUP)
    wait_for(lambda: _soa_serial(*primary.dns[0], "service.local") != before, timeout=10)
