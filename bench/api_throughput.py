"""Registrations/s and heartbeats/s through the HTTP API of a real srvdns process.

    python bench/api_throughput.py [--instances 2000] [--workers 8] [--services 100]

Starts ``srvdns serve`` pinned to CPU 1 (as bench/dns_throughput.py does), then from
``--workers`` threads, each with its own keep-alive HTTP client: registers ``--instances``
instances with a 60 s heartbeat lease over ``--services`` services, then renews each lease
once.  Prints requests per second and latency percentiles of each phase.  Needs taskset.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from dns_throughput import start_srvdns, stop


def phase(
    name: str,
    api: str,
    jobs: list[tuple[int, int]],
    workers: int,
    request: Callable[[httpx.Client, int, int], httpx.Response],
) -> None:
    def run(chunk: list[tuple[int, int]]) -> list[float]:
        latencies = []
        with httpx.Client(base_url=api, timeout=30) as client:
            for s, i in chunk:
                start = time.perf_counter()
                response = request(client, s, i)
                latencies.append(time.perf_counter() - start)
                response.raise_for_status()
        return latencies

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(run, [jobs[n::workers] for n in range(workers)]))
    elapsed = time.perf_counter() - start
    latencies = sorted(x * 1000 for chunk in results for x in chunk)
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    print(
        f"{name:<14} {len(jobs) / elapsed:8.0f}/s  p50 {p50:.1f} ms  p99 {p99:.1f} ms  "
        f"({len(jobs)} requests, {workers} clients, {elapsed:.1f} s)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    jobs = [(n % args.services, n) for n in range(args.instances)]
    with tempfile.TemporaryDirectory(prefix="srvdns-api-bench-") as tmp:
        process, _, api, _ = start_srvdns(Path(tmp))
        try:
            phase(
                "registrations",
                api,
                jobs,
                args.workers,
                lambda c, s, i: c.put(
                    f"/v1/services/svc-{s}/instances/i-{i}",
                    json={
                        "address": f"10.{i // 62500}.{i // 250 % 250}.{i % 250 + 1}",
                        "port": 8080,
                        "ttl": "60s",
                    },
                ),
            )
            phase(
                "heartbeats",
                api,
                jobs,
                args.workers,
                lambda c, s, i: c.put(f"/v1/services/svc-{s}/instances/i-{i}/heartbeat"),
            )
        finally:
            stop(process)


if __name__ == "__main__":
    main()
