"""srvdns's own CPU per TCP health check.

    python bench/health_check_cost.py [--checks 300] [--duration 5] [--runs 3] [--background 0]
                                      [--baseline DIR]

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

``--baseline DIR`` compares two trees side by side: a second ``srvdns serve`` imports the
``srvdns`` package of the source tree ``DIR`` (a checkout of another commit, through
PYTHONPATH), gets the same checks (against a target of its own), and is measured over the
same windows, so that both see the same machine; each run prints both, then the medians
and the change.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
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


@dataclass
class Server:
    """One ``srvdns serve`` under measurement: its idle cost, then one row per run
    (user, sys, user less idle, sys less idle; microseconds per check)."""

    label: str
    process: subprocess.Popen[str]
    api: str
    target: dt.CheckTarget
    client: httpx.Client
    idle: tuple[float, float] = (0.0, 0.0)
    rows: list[tuple[float, float, float, float]] = field(default_factory=list)


def start(directory: Path, label: str, tree: str | None) -> Server:
    """A server in ``directory``; from the source tree ``tree`` when given."""
    directory.mkdir()
    env = None if tree is None else {"PYTHONPATH": str(Path(tree).resolve())}
    process, _, api, _ = dt.start_srvdns(directory, pin=False, env=env)
    return Server(label, process, api, dt.CheckTarget(), httpx.Client(base_url=api, timeout=30))


def measure(servers: list[Server], seconds: float) -> list[tuple[float, float, float, float, int]]:
    """``window`` of every server over the same ``seconds``."""
    before = [(checks_run(s.client), cpu(s.process.pid), wakeups(s.process.pid)) for s in servers]
    start_time = time.monotonic()
    time.sleep(seconds)
    after = [(cpu(s.process.pid), wakeups(s.process.pid)) for s in servers]
    elapsed = time.monotonic() - start_time
    out = []
    for server, (c0, (u0, s0, t0), w0), ((u1, s1, t1), w1) in zip(
        servers, before, after, strict=True
    ):
        c1 = checks_run(server.client)
        used, ticked = t1 - t0, (u1 - u0) + (s1 - s0)
        user_share = (u1 - u0) / ticked if ticked else 1.0
        out.append((used * user_share, used * (1 - user_share), c1 - c0, elapsed, w1 - w0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checks", type=int, default=300, help="checked instances (1 s each)")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--background", type=int, default=0, help="services of 3 instances")
    parser.add_argument(
        "--baseline", metavar="DIR", help="also measure the srvdns of this source tree"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        servers = [start(Path(tmp) / "this", "this tree", None)]
        try:
            if args.baseline:
                servers.append(start(Path(tmp) / "baseline", "baseline", args.baseline))
            run_all(servers, args)
        finally:
            for server in servers:
                server.client.close()
                dt.stop(server.process)
                server.target.sock.close()
    medians = []
    for server in servers:
        rows = server.rows
        med = [statistics.median(r[i] for r in rows) for i in range(4)]
        total = statistics.median(r[0] + r[1] for r in rows)
        less_idle = statistics.median(r[2] + r[3] for r in rows)
        medians.append((total, less_idle))
        print(
            f"{server.label}: median per check: user {med[0]:.0f} us  sys {med[1]:.0f} us"
            f"  total {total:.0f} us  (less idle: user {med[2]:.0f} sys {med[3]:.0f}"
            f" total {less_idle:.0f} us)"
        )
    if len(medians) == 2:
        (this, this_less), (base, base_less) = medians
        print(
            f"this tree against the baseline: total {(this / base - 1) * 100:+.1f}%"
            f"  less idle {(this_less / base_less - 1) * 100:+.1f}%"
        )


def run_all(servers: list[Server], args: argparse.Namespace) -> None:
    """The idle window, then the checks and ``args.runs`` measured windows."""
    for server in servers:
        if args.background:
            dt.register(server.api, args.background, 3)
    time.sleep(1)
    for server, (u, s, _, el, w) in zip(servers, measure(servers, args.duration), strict=True):
        server.idle = (u / el, s / el)
        print(
            f"{server.label}: idle: user {u / el * 100:.2f}% sys {s / el * 100:.2f}% of a core,"
            f" {w / el:.0f} wake-ups/s"
        )
    for server in servers:
        dt.add_checked(server.api, args.checks, server.target.netloc)
    time.sleep(2)
    for run in range(args.runs):
        for server, (u, s, n, el, w) in zip(servers, measure(servers, args.duration), strict=True):
            if n <= 0:
                sys.exit(f"{server.label}: no check ran")
            idle_u, idle_s = server.idle
            row = (
                u / n * 1e6,
                s / n * 1e6,
                (u - idle_u * el) / n * 1e6,
                (s - idle_s * el) / n * 1e6,
            )
            server.rows.append(row)
            print(
                f"run {run + 1}: {server.label}: {n / el:.0f} checks/s  per check:"
                f" user {row[0]:.0f} us  sys {row[1]:.0f} us  total {row[0] + row[1]:.0f} us"
                f"  (less idle: {row[2] + row[3]:.0f} us)  {w / n:.2f} wake-ups",
                flush=True,
            )


if __name__ == "__main__":
    main()
