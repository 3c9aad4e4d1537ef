"""Soak: a real srvdns under steady mixed load for a bounded time, on loopback.

    python bench/soak.py [--duration 600] [--instances 10000] [--qps 200]

Starts ``srvdns serve``, registers ``--instances`` instances (over ``--services``
services, each with a heartbeat lease of 3 x ``--heartbeat-every``), then for
``--duration`` seconds (10 minutes by default) keeps up:

- DNS: ``--qps`` UDP queries per second (A and SRV for random services), from a process
  of its own so that its timings do not wait on this one's threads;
- API: heartbeats for every instance once per ``--heartbeat-every`` seconds, plus
  ``--churn`` registrations per second of short-lived instances, each deregistered a
  little later;
- flapping: ``--flappers`` instances with 1 s HTTP checks against local targets that
  toggle between 200 and 503 every ``--flap-period`` seconds; their SRV answer is read
  twice a second and compared with what the targets did (a target that has been down,
  or up, for longer than the checks need to notice is a mismatch if DNS disagrees).

Every ``--report-every`` seconds it prints DNS p50/p99 latency, API p99, the server's
RSS and the errors of that window; then a summary, including instances whose lease
lapsed although heartbeats were sent (there should be none).  Only loopback traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import multiprocessing.queues
import random
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import httpx

sys.path.insert(0, str(Path(__file__).parent))
from health_common import Srvdns, percentile

CHECK_INTERVAL = 1.0
CHECK_TIMEOUT = 0.5
SETTLE = 3 * CHECK_INTERVAL + CHECK_TIMEOUT + 0.5
"""Seconds after a target toggles by which DNS must agree: two passing results to come
back (success_before_passing = 2), one failure to leave, plus jitter and a timeout."""

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
DOWN = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndown"


def target_up(index: int, count: int, start: float, period: float, now: float) -> bool:
    """Whether flap target ``index`` answers 200 at ``now``: each toggles every
    ``period`` seconds, the targets spread evenly over one period."""
    return int((now - start) / period + index / count) % 2 == 0


def since_toggle(index: int, count: int, start: float, period: float, now: float) -> float:
    return ((now - start) / period + index / count) % 1.0 * period


# -- flapping targets: a process of their own ----------------------------------------


def run_targets(count: int, start: float, period: float, ports: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    async def main() -> None:
        async def serve(index: int) -> int:
            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                with contextlib.suppress(Exception):
                    await reader.readuntil(b"\r\n\r\n")
                    up = target_up(index, count, start, period, time.time())
                    writer.write(OK if up else DOWN)
                    await writer.drain()
                writer.close()

            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            return int(server.sockets[0].getsockname()[1])

        ports.put([await serve(i) for i in range(count)])
        await asyncio.Event().wait()

    asyncio.run(main())


# -- DNS load: a process of its own ----------------------------------------------------


def run_dns(
    server: tuple[str, int],
    services: int,
    qps: float,
    stop_at: float,
    window: float,
    results: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    """Send ``qps`` queries per second until ``stop_at``; put one summary per window."""
    rng = random.Random(1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2.0)
    latencies: list[float] = []
    errors = 0
    window_end = time.time() + window
    next_send = time.monotonic()
    ident = 0
    while time.time() < stop_at:
        now = time.monotonic()
        if now < next_send:
            time.sleep(next_send - now)
        next_send = max(next_send + 1.0 / qps, time.monotonic() - 0.1)
        ident = (ident + 1) & 0xFFFF
        rdtype = dns.rdatatype.SRV if ident % 2 else dns.rdatatype.A
        query = dns.message.make_query(f"svc{rng.randrange(services)}.service.local", rdtype)
        query.id = ident
        wire = query.to_wire()
        started = time.perf_counter()
        sock.sendto(wire, server)
        try:
            while True:
                reply = sock.recv(65535)
                if reply[:2] == wire[:2]:
                    break
            latencies.append(time.perf_counter() - started)
            if dns.message.from_wire(reply).rcode() != dns.rcode.NOERROR:
                errors += 1
        except TimeoutError:
            errors += 1
        if time.time() >= window_end:
            results.put((len(latencies), _ms(latencies, 0.5), _ms(latencies, 0.99), errors))
            latencies, errors = [], 0
            window_end += window
    results.put((len(latencies), _ms(latencies, 0.5), _ms(latencies, 0.99), errors))
    results.put(None)


def _ms(values: list[float], fraction: float) -> float:
    return percentile(values, fraction) * 1000 if values else float("nan")


# -- API load: threads of this process -------------------------------------------------


@dataclass
class ApiStats:
    """Latencies and errors of the current window (list appends are atomic)."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    total: int = 0
    error_samples: list[str] = field(default_factory=list)

    def take(self) -> tuple[list[float], int]:
        latencies, errors = self.latencies, self.errors
        self.latencies, self.errors = [], 0
        return latencies, errors

    def call(self, client: httpx.Client, method: str, url: str, **options: object) -> bool:
        started = time.perf_counter()
        try:
            response = client.request(method, url, **options)  # type: ignore[arg-type]
            ok = response.is_success
            problem = f"{method} {url}: {response.status_code} {response.text[:120]}"
        except httpx.HTTPError as exc:
            ok, problem = False, f"{method} {url}: {exc!r}"
        self.latencies.append(time.perf_counter() - started)
        self.total += 1
        if not ok:
            self.errors += 1
            if len(self.error_samples) < 5:
                self.error_samples.append(problem)
        return ok


def instance_path(n: int, services: int) -> str:
    return f"/v1/services/svc{n % services}/instances/i{n}"


def register_all(
    api: str, count: int, services: int, workers: int, lease: float, stats: ApiStats
) -> float:
    """Register every instance with a ``lease`` (seconds); returns registrations per second."""
    body = {"address": "10.9.0.1", "port": 8080, "ttl": f"{lease:.0f}s"}

    def run(part: range) -> None:
        with httpx.Client(base_url=api, timeout=30) as client:
            for n in part:
                body_n = {**body, "address": f"10.9.{n // 250 % 250}.{n % 250 + 1}"}
                stats.call(client, "PUT", instance_path(n, services), json=body_n)

    started = time.perf_counter()
    threads = [
        threading.Thread(target=run, args=(range(w, count, workers),)) for w in range(workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return count / (time.perf_counter() - started)


def heartbeats(
    api: str, part: range, services: int, every: float, stop: threading.Event, stats: ApiStats
) -> None:
    """Renew each instance of ``part`` once per ``every`` seconds, paced evenly."""
    gap = every / max(1, len(part))
    with httpx.Client(base_url=api, timeout=30) as client:
        next_at = time.monotonic()
        while not stop.is_set():
            for n in part:
                if stop.is_set():
                    return
                delay = next_at - time.monotonic()
                if delay > 0:
                    stop.wait(delay)
                next_at += gap
                stats.call(client, "PUT", instance_path(n, services) + "/heartbeat")


def churn(api: str, rate: float, stop: threading.Event, stats: ApiStats) -> None:
    """Register ``rate`` short-lived instances per second; each is deregistered 20 later."""
    live: list[str] = []
    n = 0
    with httpx.Client(base_url=api, timeout=30) as client:
        while not stop.wait(1.0 / rate):
            n += 1
            path = f"/v1/services/churn{n % 10}/instances/c{n}"
            body = {"address": "10.8.0.1", "port": 9000 + n % 1000, "ttl": "30s"}
            if stats.call(client, "PUT", path, json=body):
                live.append(path)
            if len(live) > 20:
                stats.call(client, "DELETE", live.pop(0))


# -- flap observer ---------------------------------------------------------------------


@dataclass
class FlapStats:
    observations: int = 0
    mismatches: int = 0
    changes: int = 0
    window_mismatches: int = 0
    samples: list[str] = field(default_factory=list)


def observe_flaps(
    server: tuple[str, int],
    ports: list[int],
    start: float,
    period: float,
    stop: threading.Event,
    stats: FlapStats,
) -> None:
    """Compare the SRV answer of ``flap`` with the targets' schedule, twice a second."""
    query = dns.message.make_query("flap.service.local", dns.rdatatype.SRV)
    previous: set[int] | None = None
    stop.wait(SETTLE)  # the flap instances were just registered: their first checks
    while not stop.wait(0.5):
        try:
            reply = dns.query.tcp(query, server[0], port=server[1], timeout=2)
        except (OSError, dns.exception.DNSException):
            stats.mismatches += 1
            stats.window_mismatches += 1
            continue
        now = time.time()
        answered = {
            rr.port for rrset in reply.answer if rrset.rdtype == dns.rdatatype.SRV for rr in rrset
        }
        if previous is not None and answered != previous:
            stats.changes += 1
        previous = answered
        stats.observations += 1
        for index, port in enumerate(ports):
            if since_toggle(index, len(ports), start, period, now) < SETTLE:
                continue
            up = target_up(index, len(ports), start, period, now)
            if up != (port in answered):
                stats.mismatches += 1
                stats.window_mismatches += 1
                if len(stats.samples) < 5:
                    state = "up" if up else "down"
                    stats.samples.append(f"target {index} {state} but DNS says otherwise")


# -- the run ---------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds (default 600)")
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--qps", type=float, default=200, help="DNS queries per second")
    parser.add_argument(
        "--heartbeat-every",
        type=float,
        default=300,
        help="seconds between two heartbeats of one instance (default 300: 33/s for 10,000 "
        "instances); its lease is 3 times that",
    )
    parser.add_argument("--churn", type=float, default=5, help="registrations per second")
    parser.add_argument("--flappers", type=int, default=20)
    parser.add_argument("--flap-period", type=float, default=10, help="seconds up, then down")
    parser.add_argument("--report-every", type=float, default=30, help="seconds")
    parser.add_argument("--workers", type=int, default=4, help="API client threads")
    args = parser.parse_args()
    if not 0 < args.duration <= 3600:
        parser.error("--duration must be 0-3600 s: the soak is bounded")

    with tempfile.TemporaryDirectory() as tmp:
        server = Srvdns(
            Path(tmp),
            '[[zone]]\nname = "service.local"\nttl = 5\n'
            "[health]\nconcurrency = 100\nfailures_before_critical = 1\n",
        )
        server.wait_ready()
        pid = server.process.pid
        flap_start = time.time()
        port_queue: multiprocessing.Queue[list[int]] = multiprocessing.Queue()
        targets = multiprocessing.Process(
            target=run_targets,
            args=(args.flappers, flap_start, args.flap_period, port_queue),
            daemon=True,
        )
        targets.start()
        stop = threading.Event()
        threads: list[threading.Thread] = []
        dns_proc: multiprocessing.Process | None = None
        try:
            ports = port_queue.get(timeout=30)
            stats = ApiStats()
            print(f"srvdns pid {pid}, RSS {rss_mb(pid):.0f} MB before registering", flush=True)
            lease = 3 * args.heartbeat_every
            rate = register_all(
                server.api, args.instances, args.services, args.workers * 2, lease, stats
            )
            reg_latencies, reg_errors = stats.take()
            print(
                f"registered {args.instances} instances: {rate:.0f}/s, "
                f"p99 {percentile(reg_latencies, 0.99) * 1000:.1f} ms, {reg_errors} errors",
                flush=True,
            )
            with httpx.Client(base_url=server.api, timeout=30) as client:
                for index, port in enumerate(ports):
                    body = {
                        "address": "127.0.0.1",
                        "port": port,
                        "checks": [
                            {
                                "http": "/",
                                "interval": f"{CHECK_INTERVAL}s",
                                "timeout": f"{CHECK_TIMEOUT * 1000:.0f}ms",
                            }
                        ],
                    }
                    stats.call(client, "PUT", f"/v1/services/flap/instances/f{index}", json=body)
            rss_start = rss_mb(pid)
            print(f"RSS at start of the soak: {rss_start:.1f} MB", flush=True)

            stop_at = time.time() + args.duration
            results: multiprocessing.Queue[tuple[int, float, float, int] | None]
            results = multiprocessing.Queue()
            dns_proc = multiprocessing.Process(
                target=run_dns,
                args=(server.dns, args.services, args.qps, stop_at, args.report_every, results),
                daemon=True,
            )
            dns_proc.start()
            parts = [range(w, args.instances, args.workers) for w in range(args.workers)]
            for part in parts:
                threads.append(
                    threading.Thread(
                        target=heartbeats,
                        args=(server.api, part, args.services, args.heartbeat_every, stop, stats),
                        daemon=True,
                    )
                )
            threads.append(
                threading.Thread(
                    target=churn, args=(server.api, args.churn, stop, stats), daemon=True
                )
            )
            flaps = FlapStats()
            threads.append(
                threading.Thread(
                    target=observe_flaps,
                    args=(server.dns, ports, flap_start, args.flap_period, stop, flaps),
                    daemon=True,
                )
            )
            for thread in threads:
                thread.start()

            print(
                f"{'t (s)':>6} {'dns q':>7} {'p50 ms':>7} {'p99 ms':>7} {'dns err':>7} "
                f"{'api req':>7} {'p99 ms':>7} {'api err':>7} {'flap bad':>8} {'RSS MB':>7}",
                flush=True,
            )
            began = time.time()
            dns_p99s: list[float] = []
            api_all: list[float] = []
            dns_total = dns_errors = api_errors = 0
            while True:
                window = results.get(timeout=args.report_every * 3 + 30)
                if window is None:
                    break
                queries, p50, p99, errors = window
                if not queries and not errors:
                    continue  # the run ended just as a window began
                latencies, errs = stats.take()
                api_all.extend(latencies)
                dns_total += queries
                dns_errors += errors
                api_errors += errs
                dns_p99s.append(p99)
                api_p99 = percentile(latencies, 0.99) * 1000 if latencies else float("nan")
                print(
                    f"{time.time() - began:6.0f} {queries:7d} {p50:7.2f} {p99:7.2f} {errors:7d} "
                    f"{len(latencies):7d} {api_p99:7.1f} {errs:7d} "
                    f"{flaps.window_mismatches:8d} {rss_mb(pid):7.1f}",
                    flush=True,
                )
                flaps.window_mismatches = 0
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
            latencies, errs = stats.take()
            api_all.extend(latencies)
            api_errors += errs
            rss_end = rss_mb(pid)
            with httpx.Client(base_url=server.api, timeout=30) as client:
                listed = client.get("/v1/services").json()["services"]
            healthy = sum(s["healthy"] for s in listed if s["name"].startswith("svc"))
            print()
            print(f"duration {args.duration:.0f} s, {args.instances} instances, {args.qps} qps")
            print(
                f"DNS: {dns_total} queries ({dns_total / args.duration:.0f}/s), {dns_errors} "
                f"errors; worst window p99 {max(p for p in dns_p99s if p == p):.2f} ms"
            )
            print(
                f"API: {len(api_all)} requests (heartbeats + churn), p99 "
                f"{percentile(api_all, 0.99) * 1000:.1f} ms, {api_errors} errors"
                + (f" e.g. {stats.error_samples}" if stats.error_samples else "")
            )
            print(
                f"flapping: {flaps.observations} observations, {flaps.changes} answer changes, "
                f"{flaps.mismatches} mismatches"
                + (f" e.g. {flaps.samples}" if flaps.samples else "")
            )
            print(f"leased instances still healthy at the end: {healthy} of {args.instances}")
            print(f"RSS: {rss_start:.1f} MB at start, {rss_end:.1f} MB at end")
        finally:
            stop.set()
            if dns_proc is not None and dns_proc.is_alive():
                dns_proc.terminate()
            targets.terminate()
            server.stop()


if __name__ == "__main__":
    main()
