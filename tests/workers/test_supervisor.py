"""srvdns.workers.supervisor with stand-in workers: start order, ports, restarts, stop."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from pathlib import Path

import pytest

from srvdns.workers import supervisor as supervisor_module
from srvdns.workers.supervisor import Supervisor

WORKER = textwrap.dedent(
    """
    import json, os, signal, sys, time
    mode, journal = sys.argv[1], sys.argv[2]
    role = json.loads(sys.argv[sys.argv.index("--worker-role") + 1])
    number = role["number"]
    if mode == "primary-fails" and number == 1:
        sys.exit(3)
    with open(journal) as f:
        starts = sum(1 for line in f if line.split()[0] == str(number))
    with open(journal, "a") as f:
        f.write(f"{number} {os.getpid()} {role['dns_ports']} {role['api_port']}\\n")
    if mode == "second-cannot-start" and number == 2:
        sys.exit(1)
    report = {"dns_ports": role["dns_ports"] or [5353], "api_port": role["api_port"] or 8054}
    os.write(role["report_fd"], (json.dumps(report) + "\\n").encode())
    os.close(role["report_fd"])
    if mode == "second-dies-once" and number == 2 and starts == 0:
        time.sleep(0.2)
        sys.exit(1)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(1)
    """
)


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    path = tmp_path / "journal"
    path.write_text("")
    return path


def command(tmp_path: Path, mode: str, journal: Path) -> list[str]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    return [sys.executable, str(script), mode, str(journal)]


def starts(journal: Path) -> list[list[str]]:
    return [line.split(maxsplit=2) for line in journal.read_text().splitlines()]


async def wait_until(predicate: object, timeout: float = 20) -> None:
    assert callable(predicate)
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_a_primary_that_cannot_start_ends_the_tree_with_its_status(tmp_path, journal):
    supervisor = Supervisor(command(tmp_path, "primary-fails", journal), 2)
    assert await supervisor.run() == 3
    assert starts(journal) == []  # no other worker was started


async def test_a_worker_that_cannot_start_stops_the_tree(tmp_path, journal):
    supervisor = Supervisor(command(tmp_path, "second-cannot-start", journal), 2)
    assert await supervisor.run() == 1
    (primary, _) = starts(journal)
    with pytest.raises(ProcessLookupError):
        os.kill(int(primary[1]), 0)


async def test_a_worker_that_dies_is_restarted_on_the_chosen_ports(tmp_path, journal, monkeypatch):
    monkeypatch.setattr(supervisor_module, "FIRST_PAUSE", 0.01)
    supervisor = Supervisor(command(tmp_path, "second-dies-once", journal), 2)
    running = asyncio.create_task(supervisor.run())
    try:
        await wait_until(lambda: sum(s[0] == "2" for s in starts(journal)) == 2)
        await wait_until(lambda: supervisor.dns_ports == (5353,))
    finally:
        supervisor.stop()
        assert await running == 0
    first, second, again = starts(journal)
    assert first[0] == "1"
    assert first[2] == "None None"  # the primary picks the ports
    assert (second[0], again[0]) == ("2", "2")
    assert again[2] == "[5353] 8054"  # a restart binds the ports already chosen
    for _, pid, _ in (first, again):
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)  # stopped and reaped


async def test_stop_while_starting_stops_what_started(tmp_path, journal):
    supervisor = Supervisor(command(tmp_path, "normal", journal), 3)
    running = asyncio.create_task(supervisor.run())
    await wait_until(lambda: len(starts(journal)) >= 1)
    supervisor.stop()
    assert await running == 0
    for _, pid, _ in starts(journal):
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)
