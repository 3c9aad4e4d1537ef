"""The health loop's own CPU per check, without the kernel's TCP work.

    python bench/health_loop_cost.py [--checks 1000] [--duration 3] [--runs 5]

Runs a ``HealthLoop`` in this process over a registry on a temporary SQLite file, with
``--checks`` TCP checks every second whose checker ends at once (it connects nowhere;
it has both ``check`` and ``check_now``, so a tree whose loop knows only ``check``
measures too: run it with ``PYTHONPATH=DIR`` for the tree ``DIR``).  Prints the process
CPU time per check result (scheduler, tasks or not, timeouts, damping, metrics,
rescheduling, and the event loop's wake-ups, shared by the checks due together) over
``--runs`` windows of ``--duration`` seconds, and the median.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import srvdns
from srvdns.config import HealthConfig
from srvdns.health.checkers import Result
from srvdns.health.loop import HealthLoop
from srvdns.model import Check, CheckKind, CheckSpec, Instance, Status
from srvdns.registry.registry import Registry


class AtOnce:
    """A TCP checker whose checks pass at once, with the output the real one gives."""

    kind = CheckKind.TCP

    def __init__(self) -> None:
        self._results: dict[str, Result] = {}

    def check_now(self, spec: CheckSpec, instance: Instance) -> Result:
        result = self._results.get(spec.target)
        if result is None:
            result = Result(Status.PASSING, f"TCP connect {spec.target}: success")
            self._results[spec.target] = result
        return result

    async def check(self, spec: CheckSpec, instance: Instance) -> Result:
        return self.check_now(spec, instance)


def results(loop: HealthLoop) -> float:
    """Check results counted so far (the value of every ``srvdns_health_checks`` child)."""
    return sum(
        sample.value
        for metric in loop.metrics.checks_run.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


async def measure(args: argparse.Namespace, directory: Path) -> list[float]:
    registry = Registry.open(f"sqlite:///{directory / 'registry.db'}")
    try:
        for n in range(args.checks):
            spec = CheckSpec(
                id="tcp", kind=CheckKind.TCP, interval=1.0, timeout=1.0, target="127.0.0.1:9"
            )
            await registry.register(
                Instance(
                    service="checked",
                    id=f"c-{n}",
                    address=f"10.253.{n // 250}.{n % 250 + 1}",
                    port=9000,
                    checks=(Check(spec=spec, status=Status.PASSING),),
                )
            )
        loop = HealthLoop(registry, HealthConfig(), checkers={CheckKind.TCP: AtOnce()})
        await loop.start()
        try:
            await asyncio.sleep(2)  # every check has run once: spread, then steady
            rows = []
            for run in range(args.runs):
                counted, cpu = results(loop), time.process_time()
                await asyncio.sleep(args.duration)
                cpu, counted = time.process_time() - cpu, results(loop) - counted
                rows.append(cpu / counted * 1e6)
                print(f"run {run + 1}: {counted / args.duration:.0f} checks/s  {rows[-1]:.1f} us")
        finally:
            await loop.stop()
    finally:
        registry.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checks", type=int, default=1000, help="checks, one a second each")
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"srvdns from {Path(srvdns.__file__).parent.parent}")
    with tempfile.TemporaryDirectory() as tmp:
        rows = asyncio.run(measure(args, Path(tmp)))
    print(f"median: {statistics.median(rows):.1f} us of CPU per check")


if __name__ == "__main__":
    main()
