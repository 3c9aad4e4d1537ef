"""The health loop's Python per check, without wake-ups: a steady figure to compare trees.

    python bench/health_tick_cost.py [--checks 1000] [--seconds 6] [--tcp]

``bench/health_loop_cost.py`` runs the loop on a real event loop, so its figure carries
the event loop's wake-ups and moves by 10-20% from run to run on a shared machine.  Here
a ``HealthLoop`` over a registry on a temporary SQLite file, with ``--checks`` TCP checks
every second, is started on a real event loop, and then its timer callback is called by
hand on a clock moved one scheduler step (``TICK``) at a time, as fast as it goes: what
remains is the Python of a check (start, record, damping, metrics, schedule) and of the
timer callback, shared by the checks due together.  Each simulated second is one run
(the writer gets the event loop for a moment between runs, outside the measurement); it
prints the process CPU time per check result of ``--seconds`` runs and their median.

The checker ends every check at once (``AtOnce`` of ``health_loop_cost``); with
``--tcp`` it is the real TCP checker, connecting to a loopback port another process
accepts on and closes (so the kernel's part of a connect is in the figure too, with a
2 ms pause after each step for the other process to accept; ``--pause`` sets it, and
with about a step's length the figure shows what cold caches add).  Run it with
``PYTHONPATH=DIR`` from a directory outside both trees to measure the tree ``DIR``.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import health_loop_cost

import srvdns
from srvdns.config import HealthConfig
from srvdns.health.checkers import TcpChecker
from srvdns.health.loop import TICK, HealthLoop
from srvdns.model import Check, CheckKind, CheckSpec, Instance, Status
from srvdns.registry.registry import Registry

ACCEPTOR = """
import socket, sys
listener = socket.socket(fileno=int(sys.argv[1]))
while True:
    listener.accept()[0].close()
"""


class _Handle:
    def cancel(self) -> None:
        pass


class ManualClock:
    """What the health loop asks of its event loop, with a clock moved by hand and
    timers that never fire (the benchmark calls the timer callback itself)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.now = loop.time()
        self._loop = loop

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Any, *args: Any) -> _Handle:
        return _Handle()

    def call_soon(self, callback: Any, *args: Any) -> _Handle:
        return _Handle()

    def create_task(self, coro: Any) -> asyncio.Task[Any]:
        return self._loop.create_task(coro)


async def measure(args: argparse.Namespace, directory: Path, target: str) -> list[float]:
    registry = Registry.open(f"sqlite:///{directory / 'registry.db'}")
    try:
        spec = CheckSpec(id="tcp", kind=CheckKind.TCP, interval=1.0, timeout=1.0, target=target)
        for n in range(args.checks):
            await registry.register(
                Instance(
                    service="checked",
                    id=f"c-{n}",
                    address=f"10.253.{n // 250}.{n % 250 + 1}",
                    port=9000,
                    checks=(Check(spec=spec, status=Status.PASSING),),
                )
            )
        checker = TcpChecker() if args.tcp else health_loop_cost.AtOnce()
        loop = HealthLoop(registry, HealthConfig(), checkers={CheckKind.TCP: checker})
        await loop.start()
        real = asyncio.get_running_loop()
        loop._timer.cancel()  # type: ignore[union-attr]
        loop._timer = None
        clock = ManualClock(real)
        loop._aio = clock  # type: ignore[assignment]
        pause = args.pause if args.pause is not None else 0.002 if args.tcp else 0.0
        rows = []
        try:
            for run in range(args.seconds + 1):  # the first second starts every check
                await asyncio.sleep(0.3)  # the writer writes the first results
                counted, cpu = health_loop_cost.results(loop), time.process_time()
                for _ in range(round(1 / TICK)):
                    clock.now += TICK
                    loop._tick()
                    while (due := loop._schedule.next_time()) is not None and due <= clock.now:
                        loop._tick()  # a batch limit left some for the next pass
                    if pause:
                        time.sleep(pause)
                cpu, counted = time.process_time() - cpu, health_loop_cost.results(loop) - counted
                if run:
                    rows.append(cpu / counted * 1e6)
                    print(f"run {run}: {counted:.0f} checks  {rows[-1]:.2f} us")
        finally:
            loop._aio = real
            await loop.stop()
    finally:
        registry.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checks", type=int, default=1000, help="checks, one a second each")
    parser.add_argument("--seconds", type=int, default=6, help="simulated seconds (runs)")
    parser.add_argument("--tcp", action="store_true", help="the real TCP checker")
    parser.add_argument(
        "--pause",
        type=float,
        help="seconds to sleep after each step (default 0.002 with --tcp, else 0): 0.024"
        " leaves the caches as cold as a real step does",
    )
    args = parser.parse_args()
    print(f"srvdns from {Path(srvdns.__file__).parent.parent}")
    acceptor = None
    target = "127.0.0.1:9"
    with socket.create_server(("127.0.0.1", 0), backlog=4096) as listener:
        if args.tcp:
            target = f"127.0.0.1:{listener.getsockname()[1]}"
            fd = listener.fileno()
            acceptor = subprocess.Popen([sys.executable, "-c", ACCEPTOR, str(fd)], pass_fds=[fd])
        try:
            with tempfile.TemporaryDirectory() as tmp:
                rows = asyncio.run(measure(args, Path(tmp), target))
        finally:
            if acceptor is not None:
                acceptor.kill()
                acceptor.wait()
    print(f"median: {statistics.median(rows):.2f} us of CPU per check")


if __name__ == "__main__":
    main()
