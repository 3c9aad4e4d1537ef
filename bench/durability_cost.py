"""What ``[server] durability = "power"`` costs: registry commits per second, each setting.

    python bench/durability_cost.py [--writes 500] [--runs 2]

Opens the registry on a fresh SQLite file in the current directory's file system (the
disk srvdns would use; tmpfs would hide the fsyncs) with each setting and registers
``--writes`` instances one after another (one per service, so that each write costs the
same), each its own committed transaction, as the API does; ``--runs`` times, the
settings taking turns.  Prints commits per second and latency percentiles of each run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from srvdns.model import Instance
from srvdns.registry.registry import Registry


async def commits(url: str, durability: str, writes: int) -> list[float]:
    registry = Registry.open(url, durability=durability)
    latencies = []
    try:
        for n in range(writes):
            instance = Instance(service=f"s{n}", id="a", address="10.0.0.1", port=1000 + n)
            started = time.perf_counter()
            await registry.register(instance)
            latencies.append(time.perf_counter() - started)
    finally:
        registry.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    for durability in ("process", "power") * args.runs:
        with tempfile.TemporaryDirectory(prefix="srvdns-durability-", dir=Path.cwd()) as d:
            latencies = asyncio.run(commits(f"sqlite:///{d}/r.db", durability, args.writes))
        cuts = statistics.quantiles(latencies, n=100)
        print(
            f"durability {durability:7}: {len(latencies) / sum(latencies):7.0f} commits/s, "
            f"p50 {cuts[49] * 1000:.2f} ms, p99 {cuts[98] * 1000:.2f} ms"
        )


if __name__ == "__main__":
    main()
