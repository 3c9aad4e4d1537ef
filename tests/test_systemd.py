"""srvdns.systemd (sd_notify, watchdog, LISTEN_FDS) and the unit files in systemd/."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from srvdns import systemd

UNITS = Path(__file__).parents[1] / "systemd"


def test_notify_to_a_path_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(path)
        assert systemd.notify("READY=1\nSTATUS=ok", {"NOTIFY_SOCKET": path})
        assert listener.recv(100) == b"READY=1\nSTATUS=ok"


def test_notify_to_an_abstract_socket() -> None:
    name = f"srvdns-unit-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind("\0" + name)
        assert systemd.notify("STOPPING=1", {"NOTIFY_SOCKET": "@" + name})
        assert listener.recv(100) == b"STOPPING=1"


def test_notify_without_a_manager(tmp_path: Path) -> None:
    assert not systemd.notify("READY=1", {})
    assert not systemd.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "nobody")})


@pytest.mark.parametrize(
    ("env", "interval"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], interval: float | None) -> None:
    assert systemd.watchdog_interval(env) == interval


def test_listen_fds_for_another_process_are_ignored_and_removed() -> None:
    env = {"LISTEN_FDS": "2", "LISTEN_PID": "1", "LISTEN_FDNAMES": "dns:api", "PATH": "/bin"}
    assert systemd.listen_fds(env) == {}
    assert env == {"PATH": "/bin"}


def test_listen_fds_without_activation() -> None:
    assert systemd.listen_fds({}) == {}


def _unit(name: str) -> dict[str, list[str]]:
    """``key -> values`` of a unit file (all sections)."""
    entries: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            entries.setdefault(key, []).append(value)
    return entries


def test_service_unit_contract() -> None:
    unit = _unit("srvdns.service")
    for key, value in {
        "Type": "notify",
        "DynamicUser": "yes",
        "StateDirectory": "srvdns",
        "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "ExecReload": "/bin/kill -HUP $MAINPID",
    }.items():
        assert unit[key] == [value], key
    assert "@system-service" in unit["SystemCallFilter"]
    assert _unit("srvdns.socket")["FileDescriptorName"] == ["dns"]
    assert _unit("srvdns.socket")["ListenDatagram"] == ["53"]
    assert _unit("srvdns.socket")["ListenStream"] == ["53"]
    assert _unit("srvdns-api.socket")["FileDescriptorName"] == ["api"]


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """``systemd-analyze verify`` accepts the units without a single warning.

    It runs in a scratch root (``--root``) holding the units, the system's own units
    (sysinit.target, ...), and stand-ins for the programs the units run, so that it needs
    neither a running systemd nor srvdns installed at /usr/local/bin.
    """
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is not installed (Debian package systemd)")
    system = Path("/usr/lib/systemd/system")
    if not system.is_dir():
        system = Path("/lib/systemd/system")
    root = tmp_path / "root"
    shutil.copytree(system, root / "usr/lib/systemd/system", symlinks=True)
    shutil.copytree(UNITS, root / "etc/systemd/system")
    for program in ("usr/local/bin/srvdns", "bin/kill"):
        stand_in = root / program
        stand_in.parent.mkdir(parents=True, exist_ok=True)
        stand_in.write_text("#!/bin/sh\n")
        stand_in.chmod(0o755)
    units = sorted(p.name for p in UNITS.iterdir() if p.suffix in (".service", ".socket"))
    result = subprocess.run(
        [analyze, "verify", "--man=no", f"--root={root}", *units],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
