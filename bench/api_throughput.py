"""Registrations/s and heartbeats/s through the HTTP API of a real srvdns process.

    python bench/api_throughput.py [--instances 5000] [--services 100] [--connections 32]
                                   [--heartbeat-rounds 4]

Starts ``srvdns serve`` pinned to CPU 1 (as bench/dns_throughput.py does); this process,
the client, pins itself to CPU 0 and drives the API over ``--connections`` keep-alive
connections (bench/http_load.py): registers ``--instances`` instances with a 60 s
heartbeat lease over ``--services`` services, then renews every lease
``--heartbeat-rounds`` times.  Prints requests per second and latency percentiles of
each phase, and the server's CPU time per request (read from ``/proc``): the
requests/s one core would serve, a figure the client's speed and other load on the
machine do not limit.  Then it checks that nothing acknowledged was lost: every registered
instance is listed, and after a SIGTERM and a restart on the same database every
instance is still there with its lease renewed by the last heartbeat.  Needs taskset.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from dns_throughput import CLIENT_CPU, cpu_seconds, start_srvdns, stop
from http_load import request, run_sync


def registrations(host: str, instances: int, services: int) -> list[bytes]:
    out = []
    for i in range(instances):
        body = {
            "address": f"10.{i // 62500}.{i // 250 % 250}.{i % 250 + 1}",
            "port": 8080,
            "ttl": "60s",
        }
        path = f"/v1/services/svc-{i % services}/instances/i-{i}"
        out.append(request("PUT", host, path, json.dumps(body).encode()))
    return out


def heartbeats(host: str, instances: int, services: int) -> list[bytes]:
    return [
        request("PUT", host, f"/v1/services/svc-{i % services}/instances/i-{i}/heartbeat")
        for i in range(instances)
    ]


def stored(api: str) -> dict[tuple[str, str], float]:
    """(service, id) -> lease expiry of every instance the API lists."""
    found = {}
    with httpx.Client(base_url=api, timeout=30) as client:
        for summary in client.get("/v1/services").json()["services"]:
            detail = client.get(f"/v1/services/{summary['name']}").json()
            for instance in detail["instances"]:
                found[summary["name"], instance["id"]] = instance["lease_expires_unix"]
    return found


def capacity(cpu: float, requests: int) -> str:
    """Server CPU per request, and the rate one core would serve at that cost."""
    micros = cpu / max(1, requests) * 1e6
    return f"server CPU {micros:.0f} us/request = {1e6 / micros:.0f}/s per core"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=5000)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--heartbeat-rounds", type=int, default=4)
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(CLIENT_CPU)})
    with tempfile.TemporaryDirectory(prefix="srvdns-api-bench-") as tmp:
        process, _, api, _ = start_srvdns(Path(tmp))
        try:
            url = urlsplit(api)
            host, port = url.hostname or "127.0.0.1", url.port or 80
            regs = registrations(url.netloc, args.instances, args.services)
            cpu = cpu_seconds(process.pid)
            reg = run_sync(host, port, regs, connections=args.connections)
            cpu = cpu_seconds(process.pid) - cpu
            print(f"{reg.line('registrations')}  {capacity(cpu, reg.count)}", flush=True)
            beats = heartbeats(url.netloc, args.instances, args.services)
            cpu = cpu_seconds(process.pid)
            hb = run_sync(host, port, beats * args.heartbeat_rounds, connections=args.connections)
            cpu = cpu_seconds(process.pid) - cpu
            print(f"{hb.line('heartbeats')}  {capacity(cpu, hb.count)}", flush=True)
            before = stored(api)
        finally:
            stop(process)
        process, _, api, _ = start_srvdns(Path(tmp))
        try:
            after = stored(api)
        finally:
            stop(process)
    acknowledged = reg.statuses.get(201, 0) + reg.statuses.get(200, 0)
    lost = [key for key in before if key not in after]
    older = [key for key, beat in before.items() if after.get(key, beat) < beat]
    print(
        f"acknowledged registrations {acknowledged}, listed {len(before)}, "
        f"after restart {len(after)}, lost {len(lost)}, "
        f"leases older after restart {len(older)}"
    )
    if len(before) != acknowledged or lost or older:
        sys.exit("an acknowledged write was lost")


if __name__ == "__main__":
    main()
