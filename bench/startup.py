"""Start-up of srvdns with a large static set: first start and restart, nothing else.

    python bench/startup.py [--services 10000] [--instances 10] [--runs 3]

The quick companion of bench/scale.py: the same config (``--services`` x ``--instances``
static instances in ``[[zone.service]]`` blocks, written by ``scale.static_services``),
the same launcher and pinning.  Each run starts ``srvdns serve`` on a fresh database
(first start: config parsed and validated, static set written, catalog built, DNS and
API listening), stops it, and starts it again on the same database and config
(restart).  Prints per run the wall time to the API listening and to the first DNS
answer for the last static service, the server's CPU time by then (what other load on
the machine does not inflate) and its RSS; then the medians.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from dns_throughput import ZONE, cpu_seconds, start_srvdns, stop
from scale import a_query, rss_mib, static_services


def first_answer(port: int, name: str, timeout: float = 60) -> None:
    """Wait for a NOERROR answer with records to an A query for ``name``."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.05)
        while time.monotonic() < deadline:
            sock.sendto(a_query(name, 7), ("127.0.0.1", port))
            try:
                reply = sock.recv(4096)
            except TimeoutError:
                continue
            if reply[3] & 0x0F == 0 and reply[6:8] != b"\x00\x00":
                return
            sys.exit(f"{name}: no records in the first answer")
    sys.exit(f"{name}: no answer within {timeout:g} s")


def start(directory: Path, extra: str, expect: str) -> tuple[float, float, float, float]:
    """Start srvdns, wait for its first answer, stop it; returns (wall s to the API
    listening, wall s to the first answer, CPU s then, RSS MiB)."""
    began = time.perf_counter()
    process, port, _, _ = start_srvdns(directory, extra=extra)
    wall = time.perf_counter() - began
    try:
        first_answer(port, expect)
        answered = time.perf_counter() - began
        cpu = cpu_seconds(process.pid)
        rss = rss_mib(process.pid)
    finally:
        stop(process)
    return wall, answered, cpu, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    extra = static_services(args.services, args.instances)
    expect = f"svc-{args.services - 1}.{ZONE}"
    print(f"{args.services * args.instances} static instances over {args.services} services")
    firsts, restarts = [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="srvdns-startup-") as tmp:
            first = start(Path(tmp), extra, expect)
            again = start(Path(tmp), extra, expect)
        firsts.append(first)
        restarts.append(again)
        for label, row in (("first start", first), ("restart", again)):
            print(f"run {run + 1}, {label}: {_figures(row)}")
    for label, rows in (("first start", firsts), ("restart", restarts)):
        median = tuple(statistics.median(r[n] for r in rows) for n in range(4))
        print(f"median {label}: {_figures(median)}")


def _figures(row: tuple[float, ...]) -> str:
    api, answered, cpu, rss = row
    return (
        f"API listening {api:.2f} s, first answer {answered:.2f} s wall, "
        f"{cpu:.2f} s CPU, {rss:.0f} MiB RSS"
    )


if __name__ == "__main__":
    main()
