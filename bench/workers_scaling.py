"""UDP throughput of ``srvdns serve --workers N`` and how soon a follower answers a write.

    python bench/workers_scaling.py [--workers 1 2] [--duration 5] [--runs 3]

Needs ``dnsperf`` (Debian: ``apt-get install dnsperf``) and srvdns installed
(``pip install -e .[fast]`` for uvloop).  Installs nothing; everything on loopback.

For each worker count: starts ``srvdns serve --workers N`` (not pinned: the workers may
use every CPU, and so does dnsperf, which shares them), registers ``--services`` x
``--instances`` instances over the HTTP API, warms every worker's answer cache, then
runs dnsperf flat out (``--clients`` sockets, so that SO_REUSEPORT spreads them over
the workers) ``--runs`` times and prints the median, and the CPU the whole process tree
spent per answered query (a figure the shared CPUs disturb less than qps).  With more
than one worker it then measures the registration-to-answer delay: a PUT of a new
service, then A queries from a source port that the kernel sends to a DNS-only worker
(found with CH TXT id.server) until one answers with the instance; p50/p99 over
``--samples`` services, and the same through the primary for comparison.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from dns_throughput import (
    ZONE,
    Result,
    cpu_seconds,
    median,
    need,
    percentile,
    register,
    start_srvdns,
    stop,
)

IDENTITY = "bench"


def start(
    directory: Path, workers: int, timeout: float = 120
) -> tuple[subprocess.Popen[str], int, str]:
    """``srvdns serve --workers N``, not pinned; returns once every worker listens."""
    process, port, api, _ = start_srvdns(
        directory,
        server=f'identity = "{IDENTITY}"\n',
        args=("--workers", str(workers)),
        pin=False,
        ready_line="supervising" if workers > 1 else None,
        timeout=timeout,
    )
    return process, port, api


def query(qname: str, qtype: int, ident: int, qclass: int = 1) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in qname.split("."))
    return (
        struct.pack("!HHHHHH", ident & 0xFFFF, 0x0100, 1, 0, 0, 0)
        + labels
        + struct.pack("!BHH", 0, qtype, qclass)
    )


def worker_of(sock: socket.socket, port: int) -> str:
    """Which worker answers this socket's queries: the text of CH TXT id.server."""
    sock.sendto(query("id.server", 16, 1, qclass=3), ("127.0.0.1", port))
    reply = sock.recv(512)
    return reply.rsplit(b"\x00", 1)[-1].split(IDENTITY.encode(), 1)[-1].decode().strip()


def socket_for(port: int, wanted: str) -> socket.socket:
    """A UDP socket whose source port the kernel hands to worker ``wanted``."""
    for _ in range(500):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(1)
        sock.bind(("127.0.0.1", 0))
        if worker_of(sock, port) == wanted:
            return sock
        sock.close()
    sys.exit(f"no source port reaches {wanted}")


def visible_delay(api: str, sock: socket.socket, port: int, samples: int, tag: str) -> list[float]:
    """Seconds from sending a registration to the first answer with it, through ``sock``."""
    out = []
    with httpx.Client(base_url=api, timeout=10) as client:
        for n in range(samples):
            name = f"new-{tag}-{n}"
            start_at = time.perf_counter()
            client.put(
                f"/v1/services/{name}/instances/{name}-0",
                json={"address": "10.255.0.1", "port": 80},
            )
            while True:
                sock.sendto(query(f"{name}.{ZONE}", 1, n), ("127.0.0.1", port))
                reply = sock.recv(512)
                if reply[3] & 0x0F == 0 and reply[6:8] != b"\x00\x00":
                    break
            out.append(time.perf_counter() - start_at)
            time.sleep(0.01)
    return out


def dnsperf(
    port: int, queries: Path, duration: float, clients: int, passes: int | None = None
) -> Result:
    args = [need("dnsperf"), "-s", "127.0.0.1", "-p", str(port), "-d", str(queries)]
    args += ["-l", str(duration), "-t", "2", "-q", "400", "-c", str(clients)]
    if passes is not None:
        args += ["-n", str(passes)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=duration + 120).stdout

    def number(label: str) -> float:
        m = re.search(label + r":\s+([0-9.]+)", out)
        return float(m.group(1)) if m else 0.0

    return Result(
        qps=number("Queries per second"),
        sent=int(number("Queries sent")),
        lost=int(number("Queries lost")),
        avg_ms=number(r"Average Latency \(s\)") * 1000,
    )


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (the workers of a supervisor)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def idle_cpu(pid: int, seconds: float) -> float:
    """Percent of one CPU that ``pid`` (and its children) used over ``seconds`` of quiet."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds * 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--clients", type=int, default=32, help="dnsperf sockets")
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    need("dnsperf")
    print(f"{os.cpu_count()} CPUs shared by the workers and dnsperf", flush=True)
    table: dict[int, Result] = {}
    costs: dict[int, float] = {}
    idle: dict[int, float] = {}
    delays: dict[str, list[float]] = {}
    for workers in args.workers:
        with tempfile.TemporaryDirectory(prefix="srvdns-workers-") as tmp:
            directory = Path(tmp)
            queries = directory / "queries.txt"
            queries.write_text(
                "".join(f"svc-{s}.{ZONE} SRV\nsvc-{s}.{ZONE} A\n" for s in range(args.services))
            )
            process, port, api = start(directory, workers)
            try:
                rate = register(api, args.services, args.instances)
                print(f"{workers} workers: registered at {rate:.0f}/s", flush=True)
                time.sleep(1)  # every follower has caught up
                dnsperf(port, queries, 600, args.clients, passes=8)  # fill every cache
                before = cpu_seconds(process.pid)
                runs = [
                    dnsperf(port, queries, args.duration, args.clients) for _ in range(args.runs)
                ]
                answered = sum(r.sent - r.lost for r in runs)
                costs[workers] = (cpu_seconds(process.pid) - before) / max(1, answered) * 1e6
                table[workers] = median(runs)
                print(
                    f"  {workers} workers: {table[workers].qps:.0f} qps "
                    f"(runs: {', '.join(f'{r.qps:.0f}' for r in runs)})",
                    flush=True,
                )
                if workers > 1:
                    follower = children(process.pid)[-1]
                    idle[workers] = idle_cpu(follower, 10)
                    for label, wanted in (("follower", "worker 2"), ("primary", "worker 1")):
                        with socket_for(port, wanted) as sock:
                            delays[label] = visible_delay(api, sock, port, args.samples, label)
            finally:
                stop(process)
    print("\n| workers | UDP qps (median) | lost/sent | avg latency | server CPU per query |")
    print("|---:|---:|---:|---:|---:|")
    for workers, r in table.items():
        print(
            f"| {workers} | {r.qps:.0f} | {r.lost}/{r.sent} | {r.avg_ms:.3f} ms "
            f"| {costs[workers]:.1f} us |"
        )
    for workers, percent in idle.items():
        print(f"\nan idle DNS-only worker ({workers} workers), following: {percent:.2f}% of a CPU")
    if delays:
        print("\n| answered by | registration to answer p50 | p99 | max | samples |")
        print("|---|---:|---:|---:|---:|")
        for label, values in delays.items():
            ms = [v * 1000 for v in values]
            print(
                f"| {label} | {percentile(ms, 0.5):.1f} ms | {percentile(ms, 0.99):.1f} ms "
                f"| {max(ms):.1f} ms | {len(ms)} |"
            )


if __name__ == "__main__":
    main()
