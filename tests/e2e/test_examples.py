"""examples/: two greeters and a caller, as examples/README.md runs them, against a real srvdns."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import dns.rcode
import pytest
from e2e.harness import SrvdnsProcess, wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def first_line(process: subprocess.Popen[str], timeout: float = 15.0) -> str:
    """The first line the process prints, waiting at most ``timeout`` seconds."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError("no output in time")
    return process.stdout.readline().strip()


@pytest.fixture
def greeter(srvdns: SrvdnsProcess) -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def _start(instance_id: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "greeter.py"), "--id", instance_id],
            env={**os.environ, "SRVDNS_API": srvdns.api},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        line = first_line(process)
        assert line.startswith(f"{instance_id} serving on http://127.0.0.1:"), line
        return process

    yield _start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


def caller(srvdns: SrvdnsProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "caller.py"),
            "--dns",
            f"{srvdns.host}:{srvdns.port}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def greeters(srvdns: SrvdnsProcess) -> list[str]:
    reply = srvdns.query("greeter.service.local", "SRV")
    if reply.rcode() == dns.rcode.NXDOMAIN:
        return []
    return sorted(rr.target.to_text().split(".")[0] for rrset in reply.answer for rr in rrset)


def stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM the greeter; its last words."""
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    return out.strip()


def test_caller_finds_the_greeters_through_dns(
    srvdns: SrvdnsProcess, greeter: Callable[[str], subprocess.Popen[str]]
) -> None:
    one = greeter("greeter-1")
    greeter("greeter-2")
    wait_for(lambda: greeters(srvdns) == ["greeter-1", "greeter-2"])

    done = caller(srvdns, "--name", "Ada", "--count", "20")
    assert done.returncode == 0, done.stderr
    replies = done.stdout.splitlines()
    assert len(replies) == 20
    assert set(replies) == {"Hello, Ada! (greeter-1)", "Hello, Ada! (greeter-2)"}

    assert stop(one) == "greeter-1 deregistered and stopped"
    assert greeters(srvdns) == ["greeter-2"]
    done = caller(srvdns, "--name", "Bo", "--count", "3", "--asyncio")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["Hello, Bo! (greeter-2)"] * 3


def test_caller_without_greeters(
    srvdns: SrvdnsProcess, greeter: Callable[[str], subprocess.Popen[str]]
) -> None:
    stop(greeter("greeter-1"))
    assert greeters(srvdns) == []
    done = caller(srvdns)
    assert done.returncode == 1
    assert done.stderr == "caller: greeter: no instances in service.local\n"
