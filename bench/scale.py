"""srvdns at scale: 100,000 instances over 10,000 services.

    python bench/scale.py [--services 10000] [--instances 10] [--duration 5] [--samples 100]

The instances come from ``[[zone.service]]`` blocks of the config file (the fastest way in:
one transaction at start-up), so the figures are: start-up time (process start to the API
listening, which follows DNS; wall time and the server's CPU time, which other load on
the machine does not inflate), RSS, UDP throughput with dnsperf over every service (SRV/A,
both pinned as in bench/dns_throughput.py), and how long a registration through the API
takes to be visible in DNS (PUT sent to the first UDP answer holding it; p50/p99 over
``--samples`` new services).  Then it stops srvdns (SIGTERM) and starts it again on the
same database and config: the restart time, when the stored static set is the config's
and the static sync is skipped.  Needs dnsperf and taskset.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from dns_throughput import ZONE, cpu_seconds, dnsperf, need, start_srvdns, stop, warm_up


def static_services(services: int, instances: int) -> str:
    blocks = []
    for s in range(services):
        blocks.append(f'[[zone.service]]\nname = "svc-{s}"\n')
        for i in range(instances):
            blocks.append(
                "[[zone.service.instances]]\n"
                f'id = "svc-{s}-{i}"\naddress = "10.{s // 250 % 250}.{s % 250}.{i + 1}"\n'
                f"port = {8000 + i}\n"
            )
    return "".join(blocks)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def a_query(name: str, msg_id: int) -> bytes:
    labels = b"".join(bytes([len(x)]) + x.encode() for x in name.split("."))
    return struct.pack("!6H", msg_id, 0x0100, 1, 0, 0, 0) + labels + b"\x00\x00\x01\x00\x01"


def visible_latency(api: str, port: int, samples: int) -> list[float]:
    """Seconds from sending a registration to the first NOERROR answer holding it."""
    out = []
    with (
        httpx.Client(base_url=api, timeout=10) as client,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
    ):
        sock.settimeout(1)
        for n in range(samples):
            name = f"new-{n}"
            start = time.perf_counter()
            client.put(
                f"/v1/services/{name}/instances/{name}-0",
                json={"address": "10.255.0.1", "port": 80},
            )
            while True:
                sock.sendto(a_query(f"{name}.{ZONE}", n), ("127.0.0.1", port))
                reply = sock.recv(512)
                if reply[3] & 0x0F == 0 and reply[6:8] != b"\x00\x00":
                    break
            out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()
    need("dnsperf")
    with tempfile.TemporaryDirectory(prefix="srvdns-scale-") as tmp:
        directory = Path(tmp)
        queries = directory / "queries.txt"
        queries.write_text(
            "".join(f"svc-{s}.{ZONE} SRV\nsvc-{s}.{ZONE} A\n" for s in range(args.services))
        )
        extra = static_services(args.services, args.instances)
        start = time.perf_counter()
        process, port, api, _ = start_srvdns(directory, extra=extra)
        started = time.perf_counter() - start
        started_cpu = cpu_seconds(process.pid)
        try:
            total = args.services * args.instances
            print(f"{total} instances over {args.services} services")
            print(
                f"start-up (process start to API listening): {started:.1f} s, "
                f"{started_cpu:.1f} s of CPU"
            )
            print(f"RSS after start-up: {rss_mib(process.pid):.0f} MiB")
            cold = warm_up(port, queries)
            print(f"UDP, first pass over every question (cold cache): {cold:.0f} qps")
            result, _ = dnsperf(port, queries, args.duration)
            print(f"UDP: {result.qps:.0f} qps, lost {result.lost}/{result.sent}")
            print(f"RSS after the queries: {rss_mib(process.pid):.0f} MiB")
            lat = sorted(x * 1000 for x in visible_latency(api, port, args.samples))
            p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
            print(
                f"registration visible in DNS: p50 {lat[len(lat) // 2]:.1f} ms, "
                f"p99 {p99:.1f} ms ({len(lat)} samples)"
            )
        finally:
            stop(process)
        start = time.perf_counter()
        process, port, api, _ = start_srvdns(directory, extra=extra)
        restarted = time.perf_counter() - start
        restarted_cpu = cpu_seconds(process.pid)
        try:
            print(
                f"restart, same config (process start to API listening): {restarted:.1f} s, "
                f"{restarted_cpu:.1f} s of CPU"
            )
            print(f"RSS after the restart: {rss_mib(process.pid):.0f} MiB")
        finally:
            stop(process)


if __name__ == "__main__":
    main()
