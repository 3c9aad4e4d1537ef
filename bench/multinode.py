"""Convergence of several srvdns nodes sharing one PostgreSQL registry.

    python bench/multinode.py [--url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
                              [--nodes 3] [--samples 200] [--follow-interval 0.15]

``--url`` (default: $SRVDNS_TEST_POSTGRES_URL) names any database on a PostgreSQL server
where the user may CREATE DATABASE: the benchmark creates a database of its own there,
migrates it with ``srvdns db upgrade``, starts ``--nodes`` ``srvdns serve`` processes on
it (free loopback ports), and drops it at the end.  Each sample registers a new service
through one node (round robin) over the HTTP API and then asks every node for its A
record over UDP until each answers with it.  Printed: p50/p99/max of the time from the
PUT's start to the answer of the slowest node, and of each node that did not take the
write (a follower woken by NOTIFY, or its poll).  Then (``--checks``, 0 skips it) it
registers HTTP checks on local targets, waits until the check leases are spread over
the nodes, SIGKILLs the first node and prints how long after the kill each of its
checks reaches its target again, from a survivor.  Everything stays on loopback.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url

_API_LINE = re.compile(r"api listening on (http://\S+)")
_DNS_LINE = re.compile(r"dns listening on \[?([0-9a-f.:]+?)\]?:(\d+) ")


def srvdns_bin() -> list[str]:
    script = Path(sys.executable).with_name("srvdns")
    if script.exists():
        return [str(script)]
    found = shutil.which("srvdns")
    return [found] if found else [sys.executable, "-m", "srvdns"]


class Node:
    """One ``srvdns serve`` on the shared database."""

    def __init__(
        self,
        directory: Path,
        url: str,
        name: str,
        follow_interval: float,
        check_lease: float = 10.0,
        check_interval: float = 1.0,
    ) -> None:
        directory.mkdir()
        config = directory / "srvdns.toml"
        config.write_text(
            "[server]\n"
            'dns_listen = ["127.0.0.1:0"]\n'
            'api_listen = "127.0.0.1:0"\n'
            f'database = "{url}"\n'
            f'node_name = "{name}"\n'
            f'follow_interval = "{int(follow_interval * 1000)}ms"\n'
            f'check_lease = "{int(check_lease * 1000)}ms"\n'
            '\n[[zone]]\nname = "service.local"\nttl = 5\n'
            f'\n[health]\ninterval = "{int(check_interval * 1000)}ms"\ntimeout = "500ms"\n'
        )
        self.process = subprocess.Popen(
            [*srvdns_bin(), "serve", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.api = ""
        self.dns: tuple[str, int] = ("", 0)
        ready = threading.Event()
        self.log: list[str] = []

        def read() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.log.append(line)
                if m := _DNS_LINE.search(line):
                    self.dns = (m.group(1), int(m.group(2)))
                elif m := _API_LINE.search(line):
                    self.api = m.group(1)
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(120) or not self.api:
            self.stop()
            raise SystemExit("srvdns did not start:\n" + "".join(self.log))

    def answers(self, qname: str) -> bool:
        host, port = self.dns
        reply = dns.query.udp(dns.message.make_query(qname, "A"), host, port=port, timeout=1)
        return reply.rcode() == dns.rcode.NOERROR and bool(reply.answer)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _handler(hits: list[float]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(time.monotonic())
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    return Handler


class Targets:
    """HTTP health targets on loopback that note when each request arrives."""

    def __init__(self, count: int) -> None:
        self.hits: list[list[float]] = [[] for _ in range(count)]
        self.servers: list[ThreadingHTTPServer] = []
        for n in range(count):
            server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.hits[n]))
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers.append(server)

    def url(self, n: int) -> str:
        return f"http://127.0.0.1:{self.servers[n].server_address[1]}/health"

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


def owners(url: str) -> dict[str, str]:
    """instance id -> node holding its check lease."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT instance_id, node_id FROM check_owners")).all()
    finally:
        engine.dispose()
    return {str(i): str(n) for i, n in rows}


def failover(nodes: list[Node], url: str, checks: int, interval: float) -> list[float]:
    """SIGKILL the first node; per check it held, seconds from the kill to the next
    health request its target receives (from a survivor)."""
    targets = Targets(checks)
    try:
        with httpx.Client(base_url=nodes[1].api, timeout=10) as client:
            for n in range(checks):
                client.put(
                    f"/v1/services/checked/instances/c{n}",
                    json={"address": "127.0.0.1", "port": 80, "check": {"http": targets.url(n)}},
                ).raise_for_status()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            held = owners(url)
            counts = [sum(1 for o in held.values() if o == f"bench{k}") for k in range(len(nodes))]
            if len(held) == checks and max(counts) - min(counts) <= 1:
                break
            time.sleep(0.2)
        time.sleep(2 * interval)
        orphaned = [int(i[1:]) for i, o in owners(url).items() if o == "bench0"]
        killed = time.monotonic()
        nodes[0].process.kill()
        nodes[0].process.wait()
        delays: list[float] = []
        deadline = killed + 120
        waiting = set(orphaned)
        while waiting and time.monotonic() < deadline:
            for n in sorted(waiting):
                after = [t for t in targets.hits[n] if t > killed + interval]
                if after:
                    # a request within one interval of the kill may be node0's last
                    delays.append(after[0] - killed)
                    waiting.discard(n)
            time.sleep(0.02)
        if waiting:
            raise SystemExit(f"checks {sorted(waiting)} never ran again")
        return delays
    finally:
        targets.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def describe(label: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"{label}: p50 {percentile(ms, 0.5):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, "
        f"max {max(ms):.1f} ms ({len(ms)} samples)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("SRVDNS_TEST_POSTGRES_URL"))
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--follow-interval", type=float, default=0.15)
    parser.add_argument("--check-lease", type=float, default=3.0)
    parser.add_argument("--check-interval", type=float, default=1.0)
    parser.add_argument(
        "--checks", type=int, default=30, help="HTTP checks for the failover run (0: skip it)"
    )
    args = parser.parse_args()
    if not args.url:
        parser.error("--url or $SRVDNS_TEST_POSTGRES_URL is required")
    name = f"srvdns_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(make_url(args.url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(args.url).set(database=name).render_as_string(hide_password=False)
    nodes: list[Node] = []
    try:
        subprocess.run([*srvdns_bin(), "db", "upgrade", "--database", url], check=True)
        with tempfile.TemporaryDirectory() as tmp:
            nodes = [
                Node(
                    Path(tmp) / f"n{n}",
                    url,
                    f"bench{n}",
                    args.follow_interval,
                    args.check_lease,
                    args.check_interval,
                )
                for n in range(args.nodes)
            ]
            slowest: list[float] = []
            others: list[float] = []
            clients = [httpx.Client(base_url=node.api, timeout=10) for node in nodes]
            for sample in range(args.samples):
                writer = sample % len(nodes)
                service = f"conv{sample}"
                started = time.perf_counter()
                response = clients[writer].put(
                    f"/v1/services/{service}/instances/i1",
                    json={"address": "10.1.0.1", "port": 80},
                )
                response.raise_for_status()
                waiting = set(range(len(nodes)))
                deadline = started + 10
                while waiting and time.perf_counter() < deadline:
                    for n in sorted(waiting):
                        if nodes[n].answers(f"{service}.service.local"):
                            waiting.discard(n)
                            if n != writer:
                                others.append(time.perf_counter() - started)
                if waiting:
                    raise SystemExit(f"{service}: nodes {sorted(waiting)} never answered")
                slowest.append(time.perf_counter() - started)
            for client in clients:
                client.close()
            print(
                f"{args.nodes} nodes, follow_interval {args.follow_interval:g}s, "
                f"PostgreSQL {make_url(args.url).host}:{make_url(args.url).port}"
            )
            print(describe("registration -> answer on every node", slowest))
            print(describe("registration -> answer on a node that did not take it", others))
            if args.checks and args.nodes > 1:
                delays = failover(nodes, url, args.checks, args.check_interval)
                print(
                    describe(
                        f"SIGKILL of a node -> its checks run on a survivor (check_lease "
                        f"{args.check_lease:g}s, interval {args.check_interval:g}s)",
                        delays,
                    )
                )
    finally:
        for node in nodes:
            node.stop()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
