"""What the status page costs the server, and how fast it follows a change.

    python bench/ui_status_page.py [--services 1000] [--instances 10] [--samples 50]

Starts ``srvdns serve`` pinned to CPU 1 (as bench/dns_throughput.py does) with
``--services`` static services of ``--instances`` instances each, plus one registered
service.  Prints the latency and size of the overview's JSON (``/ui/api/services``, which
the page fetches on every change), of one service's, of ``/v1/history`` and of the page
shell, next to ``/healthz`` (the floor: the HTTP round trip alone); then, for
``--samples`` registrations, the time from sending the registration until a blocking
overview query that was waiting on the registry returns with it (what an open page waits
before it can show the change).  Needs taskset.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from dns_throughput import start_srvdns, stop
from scale import static_services


def percentiles(samples: list[float]) -> str:
    ordered = sorted(x * 1000 for x in samples)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"p50 {p50:.1f} ms  p99 {p99:.1f} ms  ({len(ordered)} requests)"


def timed_get(client: httpx.Client, path: str, samples: int) -> tuple[list[float], int]:
    latencies = []
    size = 0
    for _ in range(samples):
        start = time.perf_counter()
        reply = client.get(path)
        latencies.append(time.perf_counter() - start)
        reply.raise_for_status()
        size = len(reply.content)
    return latencies, size


def follow_latency(api: str, samples: int) -> list[float]:
    """Registration sent -> a waiting blocking overview query has returned with it."""
    out = []
    with httpx.Client(base_url=api, timeout=60) as watcher, httpx.Client(base_url=api) as writer:
        for n in range(samples):
            index = watcher.get("/ui/api/services?index=0").json()["index"]
            result: dict[str, float] = {}

            def wait(index: int = index, result: dict[str, float] = result, n: int = n) -> None:
                reply = watcher.get(f"/ui/api/services?index={index}&wait=30s")
                result["returned"] = time.perf_counter()
                assert any(s["name"] == f"live-{n}" for s in reply.json()["services"])

            thread = threading.Thread(target=wait)
            thread.start()
            time.sleep(0.05)  # the query is waiting on the registry
            sent = time.perf_counter()
            body = {"address": "10.9.0.1", "port": 80}
            writer.put(f"/v1/services/live-{n}/instances/i", json=body).raise_for_status()
            thread.join()
            out.append(result["returned"] - sent)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        extra = static_services(args.services, args.instances)
        process, _, api, _ = start_srvdns(Path(tmp), extra=extra)
        try:
            with httpx.Client(base_url=api, timeout=60) as client:
                for i in range(args.instances):
                    body = {"address": f"10.8.0.{i + 1}", "port": 80, "ttl": "10m"}
                    client.put(f"/v1/services/web/instances/web-{i}", json=body)
                total = args.services * args.instances + args.instances
                print(f"{args.services + 1} services, {total} instances")
                for name, path in (
                    ("overview JSON", "/ui/api/services"),
                    ("one service", "/ui/api/services/web"),
                    ("history", "/v1/history"),
                    ("page shell", "/ui/"),
                    ("/healthz (floor)", "/healthz"),
                ):
                    latencies, size = timed_get(client, path, args.samples)
                    print(f"{name:<16} {size / 1024:8.1f} KiB  {percentiles(latencies)}")
            latencies = follow_latency(api, args.samples)
            print(f"{'change -> page':<16} {'':>12}  {percentiles(latencies)}")
        finally:
            stop(process)


if __name__ == "__main__":
    main()
