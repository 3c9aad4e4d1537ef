"""UDP (and TCP) query throughput of srvdns, NSD and dnslib's stock server on one data set.

    python bench/dns_throughput.py [--duration 5] [--runs 3] [--services 1000]

Needs: ``dnsperf`` and ``nsd`` (Debian: ``apt-get install dnsperf nsd``), ``taskset``
(util-linux), srvdns installed (``pip install -e .[fast]`` for uvloop).  Installs nothing.

What it does, all on loopback: starts ``srvdns serve`` pinned to CPU 1, registers
``--services`` services x ``--instances`` instances through the HTTP API (no leases, no
checks), exports the zone with ``srvdns export-zone``, and serves that zone file with NSD
and with dnslib's ``DNSServer`` (bench/dnslib_zone_server.py), each pinned to CPU 1 in
turn.  dnsperf, pinned to CPU 0, asks the same question file (50% SRV, 50% A over every
service) for ``--duration`` seconds, ``--runs`` times per server after a warm-up that
asks every question 4 times (which fills srvdns's answer cache): first flat out
(throughput and loss), then for srvdns at half its median rate (latency percentiles from
dnsperf -v).  Prints a table of medians.

    python bench/dns_throughput.py --churn 200 [--checks 300] [--duration 5] [--runs 3]
                                   [--workers N]

measures srvdns alone, idle and then while it works: ``--checks`` instances with a TCP
health check every second (against a port the benchmark accepts on) and registrations streaming
through the API at ``--churn`` per second (each replaces one of 1,000 extra instances
spread over the queried services, so every write swaps the snapshot and drops the
cached answers of one service); the registrations' client and the checks' target run in
this process, pinned to dnsperf's CPU.  The flat-out runs alternate, idle first and last:
``--runs`` busy runs, each between two idle runs a few seconds away (the checked instances
are registered for the busy run and deregistered after it), and each busy run is compared
with the mean of those two, so that the machine's speed drifting over the benchmark passes
neither for a cost of the churn nor for a gain; each ratio and their median are printed.  With
each busy run, the server's garbage collections during it (``/metrics``, youngest first).  Then
latency percentiles of both at half the idle rate, side by side; and the server's CPU for
the registrations alone and the checks alone (no DNS load), for each and per operation.
``--workers N`` serves with N processes, not pinned (on this machine they share the two
CPUs with dnsperf): the primary runs the API and the checks, the others answer DNS only.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))  # the NSD config of the tests
from http_load import LoadResult, request, run_sync
from nsdconf import nsd_conf

SERVER_CPU = "1"
CLIENT_CPU = "0"
ZONE = "service.local"
_DNS_LINE = re.compile(r"dns listening on \[?([0-9a-f.:]+?)\]?:(\d+) ")
_API_LINE = re.compile(r"api listening on (http://\S+)")


@dataclass
class Result:
    qps: float
    sent: int
    lost: int
    avg_ms: float


def need(binary: str) -> str:
    for candidate in (shutil.which(binary), f"/usr/sbin/{binary}"):
        if candidate and Path(candidate).exists():
            return candidate
    sys.exit(f"{binary} not found: apt-get install dnsperf nsd")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        port = int(udp.getsockname()[1])
    return port


def srvdns_bin() -> list[str]:
    script = Path(sys.executable).with_name("srvdns")
    return [str(script)] if script.exists() else [sys.executable, "-m", "srvdns"]


def start_srvdns(
    directory: Path,
    *,
    extra: str = "",
    server: str = "",
    args: Sequence[str] = (),
    pin: bool = True,
    ready_line: str | None = None,
    timeout: float = 600,
    env: Mapping[str, str] | None = None,
) -> tuple[subprocess.Popen[str], int, str, Path]:
    """``srvdns serve`` on free loopback ports, pinned to the server CPU unless ``pin`` is
    false; ``server`` adds ``[server]`` keys, ``extra`` is appended to the config
    (``[[zone.service]]`` blocks), ``args`` to the command line, ``env`` to this
    process's environment for the server's (e.g. ``PYTHONPATH`` to run another tree's
    ``srvdns``).  Returns once the API listens, or once a log line holds ``ready_line``
    when given."""
    config = directory / "srvdns.toml"
    config.write_text(
        "[server]\n"
        'dns_listen = ["127.0.0.1:0"]\n'
        'api_listen = "127.0.0.1:0"\n'
        'database = "sqlite:///registry.db"\n'
        + server
        + f'[[zone]]\nname = "{ZONE}"\nttl = 5\n'
        + extra
    )
    pinned = ["taskset", "-c", SERVER_CPU] if pin else []
    process = subprocess.Popen(
        [*pinned, *srvdns_bin(), "serve", "-c", str(config), *args],
        cwd=directory,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=None if env is None else {**os.environ, **env},
    )
    found: dict[str, str] = {}
    ready = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if m := _DNS_LINE.search(line):
                found.setdefault("dns", m.group(2))
            elif m := _API_LINE.search(line):
                found.setdefault("api", m.group(1))
                if ready_line is None:
                    ready.set()
            elif ready_line is not None and ready_line in line:
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(timeout) or "api" not in found:
        process.kill()
        sys.exit("srvdns did not start")
    return process, int(found["dns"]), found["api"], config


def register(api: str, services: int, instances: int) -> float:
    """Register everything through the API; returns registrations per second."""
    jobs = [(s, i) for s in range(services) for i in range(instances)]

    def put(chunk: list[tuple[int, int]]) -> None:
        with httpx.Client(base_url=api, timeout=30) as client:
            for s, i in chunk:
                address = f"10.{s // 250}.{s % 250}.{i + 1}"
                body = {"address": address, "port": 8000 + i}
                client.put(f"/v1/services/svc-{s}/instances/svc-{s}-{i}", json=body)

    start = time.perf_counter()
    workers = 8
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(put, [jobs[n::workers] for n in range(workers)]))
    return len(jobs) / (time.perf_counter() - start)


def wait_udp(port: int, timeout: float = 20) -> None:
    query = bytes.fromhex("abcd01000001000000000000") + b"\x03svc\x00\x00\x01\x00\x01"
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        while time.monotonic() < deadline:
            sock.sendto(query, ("127.0.0.1", port))
            try:
                sock.recv(512)
                return
            except TimeoutError:
                continue
    sys.exit(f"nothing answers on port {port}")


def dnsperf(
    port: int,
    queries: Path,
    duration: float,
    *,
    rate: int | None = None,
    tcp: bool = False,
    passes: int | None = None,
) -> tuple[Result, list[float]]:
    args = ["taskset", "-c", CLIENT_CPU, need("dnsperf"), "-s", "127.0.0.1", "-p", str(port)]
    args += ["-d", str(queries), "-l", str(duration), "-t", "2", "-q", "200", "-c", "4"]
    if tcp:
        args += ["-m", "tcp"]
    if passes is not None:
        args += ["-n", str(passes)]
    if rate is not None:
        args += ["-Q", str(rate), "-v"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=duration + 60).stdout

    def number(label: str) -> float:
        m = re.search(label + r":\s+([0-9.]+)", out)
        return float(m.group(1)) if m else 0.0

    latencies = [float(m.group(1)) for m in re.finditer(r"^> \S+ .* ([0-9.]+)$", out, re.M)]
    result = Result(
        qps=number("Queries per second"),
        sent=int(number("Queries sent")),
        lost=int(number("Queries lost")),
        avg_ms=number(r"Average Latency \(s\)") * 1000,
    )
    return result, latencies


def warm_up(port: int, queries: Path, *, tcp: bool = False) -> float:
    """Ask every question 4 times (srvdns's answer cache packs one record order per
    ask, up to 4); returns the rate of the first, cold pass."""
    cold, _ = dnsperf(port, queries, 600, tcp=tcp, passes=1)
    dnsperf(port, queries, 600, tcp=tcp, passes=3)
    return cold.qps


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its descendants so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


def busy_cpu(pid: int, seconds: float) -> float:
    """The share of one core process ``pid`` uses over the next ``seconds``."""
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - started)


def cost(pid: int, port: int, queries: Path, duration: float, rate: int) -> tuple[float, float]:
    """(server CPU microseconds per answered query, answered qps) at a fixed offered rate:
    a figure the client's own speed does not limit."""
    before = cpu_seconds(pid)
    result, _ = dnsperf(port, queries, duration, rate=rate)
    used = cpu_seconds(pid) - before
    answered = max(1, result.sent - result.lost)
    return used / answered * 1e6, result.qps


def latency(name: str, port: int, queries: Path, duration: float, rate: int) -> None:
    """Latency percentiles at a fixed offered rate (dnsperf -v, one line per answer)."""
    result, latencies = dnsperf(port, queries, duration, rate=rate)
    lat = [x * 1000 for x in latencies]
    print(
        f"  {name} at {rate} qps offered: p50 {percentile(lat, 0.5):.3f} ms, "
        f"p99 {percentile(lat, 0.99):.3f} ms, p99.9 {percentile(lat, 0.999):.3f} ms, "
        f"max {max(lat, default=0):.3f} ms ({len(lat)} answers, lost {result.lost})",
        flush=True,
    )


def median(results: list[Result]) -> Result:
    ordered = sorted(results, key=lambda r: r.qps)
    return ordered[len(ordered) // 2]


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def measure(
    name: str,
    port: int,
    queries: Path,
    args: argparse.Namespace,
    table: dict[str, Result],
    tcp: bool = False,
) -> None:
    warm_up(port, queries, tcp=tcp)
    runs = [dnsperf(port, queries, args.duration, tcp=tcp)[0] for _ in range(args.runs)]
    table[name] = median(runs)
    r = table[name]
    print(
        f"  {name:<14} {r.qps:>10.0f} qps  lost {r.lost}/{r.sent}  avg {r.avg_ms:.3f} ms  "
        f"(runs: {', '.join(f'{x.qps:.0f}' for x in runs)})",
        flush=True,
    )


def stop(process: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def serve_other(
    name: str, command: Callable[[int], list[str]], cwd: Path
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, *command(port)],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=open(cwd / f"{name}.log", "wb"),  # noqa: SIM115
    )
    wait_udp(port)
    return process, port


def nsd_command(directory: Path, zone_file: Path) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        zone = f"zone:\n    name: {ZONE}\n    zonefile: {zone_file}\n"
        (directory / "nsd.conf").write_text(nsd_conf(directory, port, rest=zone))
        return [need("nsd"), "-d", "-c", str(directory / "nsd.conf")]

    return command


def churn_requests(netloc: str, services: int) -> list[bytes]:
    """1,000 registrations of extra instances spread over the ``services`` queried
    services, each replacing its own (so each write changes one service's answers)."""
    return [
        request(
            "PUT",
            netloc,
            f"/v1/services/svc-{n % services}/instances/churn-{n}",
            f'{{"address": "10.254.{n // 250 % 250}.{n % 250 + 1}", "port": 9000}}'.encode(),
        )
        for n in range(1000)
    ]


class Churn:
    """Registrations at a steady rate from a thread, until stopped."""

    def __init__(self, api: str, services: int, rate: float) -> None:
        url = urlsplit(api)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.rate = rate
        self.requests = churn_requests(url.netloc, services)
        self.results: list[LoadResult] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():  # one second of registrations per round
            chunk = self.requests[: int(self.rate)]
            self.requests = self.requests[int(self.rate) :] + chunk
            self.results.append(
                run_sync(self.host, self.port, chunk, connections=4, rate=self.rate)
            )

    def __enter__(self) -> Churn:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def achieved(self) -> float:
        """Registrations answered per second so far."""
        elapsed = sum(r.elapsed for r in self.results)
        return sum(r.count for r in self.results) / elapsed if elapsed else 0.0

    def summary(self) -> str:
        count = sum(r.count for r in self.results)
        ok = sum(r.ok for r in self.results)
        return f"{self.achieved():.0f} registrations/s ({ok}/{count} 2xx)"


class CheckTarget:
    """A loopback port that accepts and closes connections from a thread: what the TCP
    checks connect to, so that what they cost srvdns is its checks alone (pointing them
    at srvdns's own API would add its accepting the connections)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.netloc = f"127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.close()


def add_checked(api: str, count: int, target: str) -> None:
    """``count`` instances whose TCP check (every second) connects to ``target``."""
    with httpx.Client(base_url=api, timeout=30) as client:
        for n in range(count):
            body = {
                "address": f"10.253.{n // 250}.{n % 250 + 1}",
                "port": 9000,
                "check": {"tcp": target, "interval": "1s", "timeout": "1s"},
            }
            client.put(f"/v1/services/checked/instances/c-{n}", json=body).raise_for_status()


def remove_checked(api: str, count: int) -> None:
    """Deregister ``add_checked``'s instances: their checks stop."""
    with httpx.Client(base_url=api, timeout=30) as client:
        for n in range(count):
            client.delete(f"/v1/services/checked/instances/c-{n}").raise_for_status()


@dataclass
class Busy:
    """Checks running and registrations streaming while the ``with`` block runs."""

    api: str
    args: argparse.Namespace
    target: str
    churn: Churn = field(init=False)

    def __enter__(self) -> Churn:
        add_checked(self.api, self.args.checks, self.target)
        self.churn = Churn(self.api, self.args.services, self.args.churn).__enter__()
        time.sleep(2)  # every check has run once: its schedule is spread over its interval
        return self.churn

    def __exit__(self, *_: object) -> None:
        self.churn.__exit__()
        remove_checked(self.api, self.args.checks)
        time.sleep(1)


def flat_out_alternating(
    port: int, api: str, queries: Path, args: argparse.Namespace, target: str
) -> tuple[Result, Result, float]:
    """Flat-out runs, idle and busy in turn, starting and ending idle (``--runs`` busy
    runs, one idle run more): each busy run is compared with the mean of the idle runs
    just before and just after it, so that the machine's speed drifting over the whole
    benchmark does not count as a cost of the churn, nor as a gain (against the idle run
    before it alone, a steady slow-down would count against the busy run every time; that
    ratio is printed too).  The churn's instances are all registered first, so that idle
    and busy runs answer the same data (each service has one instance more: larger
    answers).  Returns the median idle and busy runs and the median ratio."""
    url = urlsplit(api)
    first = run_sync(
        url.hostname or "127.0.0.1",
        url.port or 80,
        churn_requests(url.netloc, args.services),
        connections=4,
    )
    if first.count != first.ok:
        sys.exit(f"registering the churn's instances failed: {first.statuses}")
    warm_up(port, queries)
    idle = [dnsperf(port, queries, args.duration)[0]]
    print(f"  idle   {idle[-1].qps:>8.0f} qps (lost {idle[-1].lost})", flush=True)
    busy: list[Result] = []
    for _ in range(args.runs):
        with Busy(api, args, target) as churn:
            collected = gc_collections(api)
            busy.append(dnsperf(port, queries, args.duration)[0])
            collected = [
                after - before for before, after in zip(collected, gc_collections(api), strict=True)
            ]
        idle.append(dnsperf(port, queries, args.duration)[0])
        around = (idle[-2].qps + idle[-1].qps) / 2
        print(
            f"  busy   {busy[-1].qps:>8.0f} qps (lost {busy[-1].lost}; {churn.summary()}): "
            f"{busy[-1].qps / around:.2f} of the idle runs around it "
            f"({busy[-1].qps / idle[-2].qps:.2f} of the one before); server garbage "
            f"collections meanwhile: {', '.join(f'{n:.0f}' for n in collected)} (young to full)",
            flush=True,
        )
        print(f"  idle   {idle[-1].qps:>8.0f} qps (lost {idle[-1].lost})", flush=True)
    ratios = sorted(
        b.qps / ((before.qps + after.qps) / 2)
        for b, before, after in zip(busy, idle, idle[1:], strict=False)
    )
    before_only = sorted(b.qps / i.qps for b, i in zip(busy, idle, strict=False))
    print(
        f"  busy / idle around it: {', '.join(f'{r:.2f}' for r in ratios)}; "
        f"median {ratios[len(ratios) // 2]:.2f} (against the idle run before: "
        f"{', '.join(f'{r:.2f}' for r in before_only)}; median "
        f"{before_only[len(before_only) // 2]:.2f})"
    )
    return median(idle), median(busy), ratios[len(ratios) // 2]


def gc_collections(api: str) -> list[float]:
    """The server's garbage collections so far, youngest generation first (``/metrics``)."""
    text = httpx.get(f"{api}/metrics", timeout=30).text
    found = re.findall(r'^python_gc_collections_total\{generation="(\d)"\} (\S+)$', text, re.M)
    return [float(count) for _, count in sorted(found)]


def churn_mode(args: argparse.Namespace, pid: int, port: int, api: str, queries: Path) -> None:
    """srvdns idle, then with checks and registrations streaming: throughput, latency, and
    where the server's CPU goes (what writes and checks take alone, and the DNS work per
    query idle and busy: the part of the loss the name server itself is responsible for)."""
    if args.workers == 1:
        # The registrations' client and the checks' target are load generators, like
        # dnsperf: on its CPU, not the server's (threads started from here on inherit it).
        os.sched_setaffinity(0, {int(CLIENT_CPU)})
    target = CheckTarget().netloc
    print(
        f"flat out, idle and with {args.checks} checks/s and registrations at "
        f"{args.churn:.0f}/s in turn: {args.runs} busy runs of {args.duration:.0f} s, "
        "each between two idle ones:"
    )
    idle, busy, ratio = flat_out_alternating(port, api, queries, args, target)
    rate = int(idle.qps / 2)
    latency("srvdns idle", port, queries, args.duration, rate)
    idle_us, _ = cost(pid, port, queries, args.duration, rate)
    with Churn(api, args.services, args.churn) as alone:  # no DNS load, no checks yet
        time.sleep(1)
        writes = busy_cpu(pid, args.duration)
    add_checked(api, args.checks, target)
    time.sleep(2)  # every check has run once: its schedule is spread over its interval
    checks = busy_cpu(pid, args.duration)
    with Churn(api, args.services, args.churn):
        background = busy_cpu(pid, args.duration)
        latency("srvdns busy", port, queries, args.duration, rate)
        before, started = cpu_seconds(pid), time.monotonic()
        result, _ = dnsperf(port, queries, args.duration, rate=rate)
        spent = cpu_seconds(pid) - before - background * (time.monotonic() - started)
        busy_us = spent / max(1, result.sent - result.lost) * 1e6
    print(
        f"\nUDP flat out, medians of the runs: idle {idle.qps:.0f} qps, busy {busy.qps:.0f} qps; "
        f"busy {ratio:.2f} of idle (the median of the busy runs' ratios above)"
    )
    print(
        f"server CPU alone: {writes * 100:.1f} % for the registrations "
        f"({writes / max(1.0, alone.achieved()) * 1e6:.0f} us each at {alone.achieved():.0f}/s), "
        f"{checks * 100:.1f} % for the checks ({checks / max(1, args.checks) * 1e6:.0f} us each)"
    )
    print(
        f"server CPU: writes and checks alone {background * 100:.1f} % of its core; "
        f"DNS work per answered query at {rate} qps: idle {idle_us:.2f} us, "
        f"busy {busy_us:.2f} us ({busy_us / idle_us:.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--tcp", action="store_true", help="TCP throughput too")
    parser.add_argument(
        "--cpu-rate", type=int, default=40_000, help="fixed qps for the CPU-per-query runs"
    )
    parser.add_argument("--skip", nargs="*", default=[], choices=["nsd", "dnslib"])
    parser.add_argument(
        "--churn", type=float, default=None, help="registrations/s: measure srvdns idle vs busy"
    )
    parser.add_argument("--checks", type=int, default=300, help="health-checked instances")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="with --churn: serve with this many processes, not pinned (DNS-only workers "
        "run neither writes nor checks)",
    )
    args = parser.parse_args()
    if args.workers > 1 and args.churn is None:
        parser.error("--workers is for --churn runs")
    if args.churn is not None:
        args.skip = ["nsd", "dnslib"]
    need("dnsperf")
    if "nsd" not in args.skip:
        need("nsd")
    where = f"on CPU {SERVER_CPU}" if args.workers == 1 else f"{args.workers} processes, unpinned"
    print(f"{os.cpu_count()} CPUs; server {where}, dnsperf on CPU {CLIENT_CPU}")
    with tempfile.TemporaryDirectory(prefix="srvdns-bench-") as tmp:
        directory = Path(tmp)
        queries = directory / "queries.txt"
        queries.write_text(
            "".join(f"svc-{s}.{ZONE} SRV\nsvc-{s}.{ZONE} A\n" for s in range(args.services))
        )
        table: dict[str, Result] = {}
        costs: dict[str, tuple[float, float]] = {}
        if args.workers > 1:
            srvdns, port, api, config = start_srvdns(
                directory,
                args=("--workers", str(args.workers)),
                pin=False,
                ready_line="supervising",
            )
        else:
            srvdns, port, api, config = start_srvdns(directory)
        try:
            rate = register(api, args.services, args.instances)
            print(f"registered {args.services * args.instances} instances at {rate:.0f}/s")
            if args.churn is not None:
                churn_mode(args, srvdns.pid, port, api, queries)
                return
            zone_file = directory / f"{ZONE}.zone"
            subprocess.run(
                [
                    *srvdns_bin(),
                    "export-zone",
                    "-c",
                    str(config),
                    "--zone",
                    ZONE,
                    "-o",
                    str(zone_file),
                ],
                check=True,
                cwd=directory,
            )
            print("UDP, flat out (median of runs):")
            measure("srvdns", port, queries, args, table)
            half = int(table["srvdns"].qps / 2)
            latency("srvdns", port, queries, args.duration, half)
            costs["srvdns"] = cost(srvdns.pid, port, queries, args.duration, args.cpu_rate)
            if args.tcp:
                measure("srvdns tcp", port, queries, args, table, tcp=True)
        finally:
            stop(srvdns)
        if "nsd" not in args.skip:
            nsd, nsd_port = serve_other("nsd", nsd_command(directory, zone_file), directory)
            try:
                measure("nsd", nsd_port, queries, args, table)
                costs["nsd"] = cost(nsd.pid, nsd_port, queries, args.duration, args.cpu_rate)
                latency("nsd", nsd_port, queries, args.duration, half)  # the same rate: a control
                if args.tcp:
                    measure("nsd tcp", nsd_port, queries, args, table, tcp=True)
            finally:
                stop(nsd)
        if "dnslib" not in args.skip:
            script = Path(__file__).with_name("dnslib_zone_server.py")
            dnslib, dnslib_port = serve_other(
                "dnslib",
                lambda p: [sys.executable, str(script), str(zone_file), str(p)],
                directory,
            )
            try:
                measure("dnslib", dnslib_port, queries, args, table)
            finally:
                stop(dnslib)
            quiet, quiet_port = serve_other(
                "dnslib-quiet",
                lambda p: [sys.executable, str(script), str(zone_file), str(p), "quiet"],
                directory,
            )
            try:
                measure("dnslib quiet", quiet_port, queries, args, table)
            finally:
                stop(quiet)
        ours = table["srvdns"].qps
        print("\n| server | median qps | lost/sent | avg latency | srvdns / server |")
        print("|---|---:|---:|---:|---:|")
        for name, r in table.items():
            ratio = ours / r.qps if r.qps else float("nan")
            print(f"| {name} | {r.qps:.0f} | {r.lost}/{r.sent} | {r.avg_ms:.3f} ms | {ratio:.2f} |")
        if costs:
            print(f"\nServer CPU per answered query at {args.cpu_rate} qps offered:")
            print("| server | answered qps | CPU us/query | capacity (1 core) |")
            print("|---|---:|---:|---:|")
            for name, (micros, qps) in costs.items():
                print(f"| {name} | {qps:.0f} | {micros:.2f} | {1e6 / micros:.0f} qps |")


if __name__ == "__main__":
    main()
