"""How fast DNS follows health: dead instances out, new instances in.

Starts N real HTTP servers on 127.0.0.1 (bench/health_targets.py) and a real srvdns, and
registers one instance per server with an HTTP check (interval 1 s, timeout 500 ms).
Then it kills some servers (connection refused) and hangs others (they accept and never
answer: the check times out), and polls DNS every 10 ms until each of them is gone.
Times are reported in seconds and in multiples of interval + timeout, the bound srvdns
promises.  Last, it registers new instances one at a time and measures how long each
takes to be answered.

    python bench/health_convergence.py                # 200 instances, 30 killed, 30 hung
    python bench/health_convergence.py --instances 50 --kill 10 --hang 10 --new 10
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from health_common import Srvdns, Targets, answers, percentile, srv_targets

QNAME = "web.service.local"


def register(api: str, index: int, port: int, interval: float, timeout: float) -> None:
    body = {
        "address": f"10.1.{index // 250}.{index % 250 + 1}",
        "port": port,
        "check": {
            "http": f"http://127.0.0.1:{port}/health",
            "interval": f"{interval}s",
            "timeout": f"{timeout}s",
        },
    }
    response = httpx.put(f"{api}/v1/services/web/instances/i{index}", json=body, timeout=30)
    response.raise_for_status()


def convergence(
    server: Srvdns, targets: Targets, verb: str, victims: list[int], deadline: float
) -> list[float]:
    """Seconds from the command until DNS stopped answering each victim."""
    waiting = {f"i{n}" for n in victims}
    done_at = targets.command(verb, victims)
    gone: list[float] = []
    while waiting and time.monotonic() < done_at + deadline:
        present = srv_targets(server.dns, QNAME)
        now = time.monotonic()
        for label in list(waiting):
            if label not in present:
                waiting.discard(label)
                gone.append(now - done_at)
        time.sleep(0.01)
    if waiting:
        raise SystemExit(f"{len(waiting)} instances still answered after {deadline}s")
    return gone


def report(name: str, times: list[float], unit: float) -> None:
    p50, p99, worst = percentile(times, 0.5), percentile(times, 0.99), max(times)
    print(
        f"{name:<34} n={len(times):<4} min {min(times) * 1000:5.0f} ms   "
        f"p50 {p50 * 1000:5.0f} ms ({p50 / unit:.2f}x)   "
        f"p99 {p99 * 1000:5.0f} ms ({p99 / unit:.2f}x)   "
        f"max {worst * 1000:5.0f} ms ({worst / unit:.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--kill", type=int, default=30, help="servers closed (refused)")
    parser.add_argument("--hang", type=int, default=30, help="servers that stop answering")
    parser.add_argument("--new", type=int, default=30, help="instances registered one by one")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.kill + args.hang >= args.instances:
        parser.error("--kill + --hang must leave some instances alive")
    unit = args.interval + args.timeout
    rng = random.Random(args.seed)

    targets = Targets(args.instances + args.new)
    with tempfile.TemporaryDirectory() as directory:
        server = Srvdns(
            Path(directory),
            '[[zone]]\nname = "service.local"\nttl = 5\n'
            f'[health]\ninterval = "{args.interval}s"\ntimeout = "{args.timeout}s"\n',
        )
        try:
            server.wait_ready()
            started = time.monotonic()
            with ThreadPoolExecutor(16) as pool:
                list(
                    pool.map(
                        lambda n: register(
                            server.api, n, targets.ports[n], args.interval, args.timeout
                        ),
                        range(args.instances),
                    )
                )
            while len(srv_targets(server.dns, QNAME)) < args.instances:
                if time.monotonic() - started > 60:
                    raise SystemExit("the instances did not all become healthy")
                time.sleep(0.05)
            print(
                f"{args.instances} instances registered and answered in "
                f"{time.monotonic() - started:.2f} s; interval {args.interval:g} s, "
                f"timeout {args.timeout:g} s (unit = interval + timeout = {unit:g} s)"
            )
            time.sleep(args.interval)  # let every check settle into its own phase
            victims = rng.sample(range(args.instances), args.kill + args.hang)
            killed, hung = victims[: args.kill], victims[args.kill :]
            deadline = 5 * unit
            if killed:
                report(
                    "dead (connection refused)",
                    convergence(server, targets, "kill", killed, deadline),
                    unit,
                )
            if hung:
                report(
                    "hung (no answer: timeout)",
                    convergence(server, targets, "hang", hung, deadline),
                    unit,
                )

            appear = []
            for n in range(args.instances, args.instances + args.new):
                began = time.monotonic()
                register(server.api, n, targets.ports[n], args.interval, args.timeout)
                label = f"i{n}.instance.web.{QNAME.split('.', 1)[1]}"
                while not answers(server.dns, label):
                    if time.monotonic() - began > deadline:
                        raise SystemExit(f"instance i{n} never appeared")
                    time.sleep(0.002)
                appear.append(time.monotonic() - began)
            if appear:
                report("new instance: PUT to first answer", appear, unit)
            with httpx.Client(timeout=10) as http:
                lag = server.metrics(http).get("srvdns_event_loop_lag_max_seconds", 0.0)
            print(f"srvdns event loop lag, largest of the last 10 s: {lag * 1000:.1f} ms")
        finally:
            server.stop()
            targets.stop()


if __name__ == "__main__":
    main()
