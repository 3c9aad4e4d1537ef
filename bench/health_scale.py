"""How many HTTP checks per second the health loop sustains on one core.

For each target rate R it starts a real srvdns pinned to one CPU with R instances whose
HTTP checks run every second against 32 HTTP servers on 127.0.0.1 (bench/health_targets.py,
on another CPU, like this script), lets the first interval spread the checks out, then
for 10 s measures the check results per second (from /metrics), the event loop's largest
lag over those 10 s, and the latency of DNS queries sent meanwhile (one at a time, about
200 per second, to a small service).  With the default jitter of 0.1 a check runs every
0.95 s on average, so R instances should give R / 0.95 results per second; a rate is
sustained when at least 97% of that is achieved (the checks keep their schedule instead
of queueing) with an event loop lag under 100 ms.

    python bench/health_scale.py                     # rates 1000 2000 4000 6000 ... 9000
    python bench/health_scale.py --rates 2000 4000 --measure 5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import httpx
from health_common import (
    Srvdns,
    Targets,
    UdpProbe,
    checks_total,
    cpus,
    percentile,
    pin,
)

TARGET_SERVERS = 32
LAG_LIMIT = 0.100
JITTER = 0.1
"""srvdns's default: a check runs up to 10% of its interval early."""


def config(rate: int, ports: list[int], interval: float) -> str:
    count = int(rate * interval)
    lines = [
        '[[zone]]\nname = "service.local"\nttl = 5\n',
        '[[zone.service]]\nname = "probe"\ninstances = [',
        '  { address = "127.0.0.1", port = 1 }, { address = "127.0.0.2", port = 1 },',
        "]\n",
        '[[zone.service]]\nname = "web"\ninstances = [',
    ]
    for n in range(count):
        port = ports[n % len(ports)]
        lines.append(
            f'  {{ id = "w{n}", address = "10.{n // 62500}.{n // 250 % 250}.{n % 250 + 1}", '
            f'port = 80, checks = [{{ http = "http://127.0.0.1:{port}/health" }}] }},'
        )
    lines.append("]\n")
    lines.append(
        f'[health]\ninterval = "{interval}s"\ntimeout = "1s"\ninitial_status = "passing"\n'
        "concurrency = 500\n"
    )
    return "\n".join(lines)


def step(rate: int, targets: Targets, args: argparse.Namespace, cpu: list[int]) -> dict:
    with tempfile.TemporaryDirectory() as directory:
        began = time.monotonic()
        server = Srvdns(Path(directory), config(rate, targets.ports, args.interval), cpu=cpu)
        try:
            server.wait_ready(timeout=300)
            startup = time.monotonic() - began
            http = httpx.Client(timeout=10)
            time.sleep(args.interval + args.warmup)
            probe = UdpProbe(server.dns, "probe.service.local")
            first = server.metrics(http)
            t0 = time.monotonic()
            latencies: list[float] = []
            lags: list[float] = []
            next_scrape = t0 + 0.25
            while (now := time.monotonic()) < t0 + args.measure:
                latencies.append(probe.once())
                if now >= next_scrape:
                    lags.append(server.metrics(http).get("srvdns_event_loop_lag_seconds", 0.0))
                    next_scrape += 0.25
                time.sleep(max(0.0, 0.005 - (time.monotonic() - now)))
            last = server.metrics(http)
            elapsed = time.monotonic() - t0
            done = checks_total(last) - checks_total(first)
            timeouts = sum(
                v for k, v in last.items() if k.startswith("srvdns_health_check_timeouts_total")
            ) - sum(
                v for k, v in first.items() if k.startswith("srvdns_health_check_timeouts_total")
            )
            return {
                "rate": rate,
                "instances": int(rate * args.interval),
                "startup": startup,
                "achieved": done / elapsed,
                "lag_max": last.get("srvdns_event_loop_lag_max_seconds", float("nan")),
                "lag_p50": percentile(lags, 0.5),
                "dns_p50": percentile(latencies, 0.5),
                "dns_p99": percentile(latencies, 0.99),
                "queries": len(latencies),
                "timeouts": timeouts,
                "queued": last.get("srvdns_health_checks_queued", 0.0),
                "late": last.get("srvdns_health_schedule_lag_seconds", 0.0),
            }
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rates", type=int, nargs="+", default=[1000, 2000, 4000, 6000, 7000, 8000, 9000]
    )
    parser.add_argument("--interval", type=float, default=1.0, help="of every check, seconds")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds after the first interval"
    )
    parser.add_argument("--measure", type=float, default=10.0, help="seconds per rate")
    args = parser.parse_args()

    available = cpus()
    if len(available) >= 2:
        srvdns_cpu, other_cpu = [available[0]], available[1:]
        pin(other_cpu)
        where = f"srvdns on CPU {srvdns_cpu[0]}; targets and this script on CPU(s) {other_cpu}"
    else:
        srvdns_cpu, where = available, "one CPU shared by everything (numbers are pessimistic)"
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    print(f"{where}; event loop: {loop}; check interval {args.interval:g} s")
    print(
        f"{'target/s':>8} {'checks':>7} {'start s':>7} {'done/s':>8} {'lag max':>8} "
        f"{'lag p50':>8} {'dns p50':>8} {'dns p99':>8} {'late':>8} {'timeouts':>8}"
    )
    targets = Targets(TARGET_SERVERS)
    best = 0
    try:
        for rate in args.rates:
            r = step(rate, targets, args, srvdns_cpu)
            expected = rate / (1 - JITTER / 2)
            ok = r["achieved"] >= 0.97 * expected and r["lag_max"] < LAG_LIMIT
            best = max(best, int(r["achieved"])) if ok else best
            print(
                f"{rate:>8} {r['instances']:>7} {r['startup']:>7.1f} {r['achieved']:>8.0f} "
                f"{r['lag_max'] * 1000:>6.1f}ms {r['lag_p50'] * 1000:>6.1f}ms "
                f"{r['dns_p50'] * 1000:>6.2f}ms {r['dns_p99'] * 1000:>6.2f}ms "
                f"{r['late'] * 1000:>6.0f}ms {r['timeouts']:>8.0f}"
                + ("" if ok else "   <- not sustained"),
                flush=True,
            )
    finally:
        targets.stop()
    print(f"sustained on one core with event loop lag under 100 ms: {best} HTTP checks/s")


if __name__ == "__main__":
    main()
