"""srvdns's own CPU per TCP health check.

    python bench/health_check_cost.py [--checks 300] [--duration 5] [--runs 3] [--background 0]

Starts ``srvdns serve`` on loopback (the helpers of bench/dns_throughput.py), optionally
registers ``--background`` x 3 unchecked instances, then ``--checks`` instances whose TCP
check runs every second against a loopback port this script accepts on and closes at once
(from a thread of its own, so its work is not srvdns's).  In ``--runs`` windows of
``--duration`` seconds it reads srvdns's CPU time from /proc (the scheduler's total,
split into user and system time as the tick counts split) and the
number of checks run from ``srvdns_health_checks_total`` on ``/metrics``, and prints the
CPU per check (user, sys, total), raw and with the idle cost (measured first, before any
check exists: the lag monitor, the timers) taken off, and the medians; also the event loop's
wake-ups per check (a wake-up costs more than a check).  The figure is CPU time, not
wall-clock time, yet a loaded machine still inflates it (cold caches after each
wake-up): compare runs made back to back.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
import dns_throughput as dt


def cpu(pid: int) -> tuple[float, float, float]:
    """(user, system, total) CPU seconds of ``pid`` so far.  The total is the scheduler's
    own account (``schedstat``, in nanoseconds, every thread); user and system time are
    counted in clock ticks, by sampling, so over a few seconds only their ratio holds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError):
            continue  # a thread that just ended
    return int(fields[11]) / tick, int(fields[12]) / tick, total / 1e9


def wakeups(pid: int) -> int:
    """How many times the main thread (the event loop) went to sleep and woke up."""
    for line in Path(f"/proc/{pid}/task/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    return 0


def checks_run(client: httpx.Client) -> float:
    """How many check results srvdns has counted so far (every kind and status)."""
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("srvdns_health_checks_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def window(
    pid: int, client: httpx.Client, seconds: float
) -> tuple[float, float, float, float, int]:
    """(user s, sys s, checks run, elapsed s, event loop wake-ups) over about ``seconds``."""
    c0 = checks_run(client)
    u0, s0, t0 = cpu(pid)
    w0 = wakeups(pid)
    start = time.monotonic()
    time.sleep(seconds)
    u1, s1, t1 = cpu(pid)
    w1 = wakeups(pid)
    elapsed = time.monotonic() - start
    c1 = checks_run(client)
    used, ticked = t1 - t0, (u1 - u0) + (s1 - s0)
    user_share = (u1 - u0) / ticked if ticked else 1.0
    return used * user_share, used * (1 - user_share), c1 - c0, elapsed, w1 - w0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checks", type=int, default=300, help="checked instances (1 s each)")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--background", type=int, default=0, help="services of 3 instances")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server, _, api, _ = dt.start_srvdns(Path(tmp), pin=False)
        target = dt.CheckTarget()
        try:
            with httpx.Client(base_url=api, timeout=30) as client:
                if args.background:
                    dt.register(api, args.background, 3)
                time.sleep(1)
                u, s, _, el, w = window(server.pid, client, args.duration)
                idle_u, idle_s = u / el, s / el
                print(
                    f"idle: user {idle_u * 100:.2f}% sys {idle_s * 100:.2f}% of a core, "
                    f"{w / el:.0f} wake-ups/s"
                )
                dt.add_checked(api, args.checks, target.netloc)
                time.sleep(2)
                rows: list[tuple[float, float, float, float]] = []
                for run in range(args.runs):
                    u, s, n, el, w = window(server.pid, client, args.duration)
                    if n <= 0:
                        sys.exit("no check ran")
                    row = (
                        u / n * 1e6,
                        s / n * 1e6,
                        (u - idle_u * el) / n * 1e6,
                        (s - idle_s * el) / n * 1e6,
                    )
                    rows.append(row)
                    print(
                        f"run {run + 1}: {n / el:.0f} checks/s  per check: user {row[0]:.0f} us"
                        f"  sys {row[1]:.0f} us  total {row[0] + row[1]:.0f} us"
                        f"  (less idle: {row[2] + row[3]:.0f} us)  {w / n:.2f} wake-ups",
                        flush=True,
                    )
        finally:
            dt.stop(server)
            target.sock.close()
    med = [statistics.median(r[i] for r in rows) for i in range(4)]
    total = statistics.median(r[0] + r[1] for r in rows)
    less_idle = statistics.median(r[2] + r[3] for r in rows)
    print(
        f"median per check: user {med[0]:.0f} us  sys {med[1]:.0f} us  total {total:.0f} us"
        f"  (less idle: user {med[2]:.0f} sys {med[3]:.0f} total {less_idle:.0f} us)"
    )


if __name__ == "__main__":
    main()
