"""Several ``srvdns serve`` nodes sharing one PostgreSQL registry: a change made through
any node is answered by every node, and each health check runs on one node at a time.

Needs PostgreSQL (SRVDNS_TEST_POSTGRES_URL); each test gets an empty database of its own.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import dns.rdataclass
import pytest
import sqlalchemy as sa
from e2e.harness import SrvdnsProcess, srvdns_command, start, wait_for
from health.targets import Target, TargetPool, target_pool
from pgdb import fresh_database, require_postgres

pytestmark = pytest.mark.e2e

ZONE = """\
[[zone]]
name = "service.local"
ttl = 5
"""


@pytest.fixture
def database() -> Iterator[str]:
    """The URL of an empty PostgreSQL database, migrated with ``srvdns db upgrade``."""
    with fresh_database(require_postgres()) as url:
        done = subprocess.run(
            [*srvdns_command(), "db", "upgrade", "--database", url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        yield url


@pytest.fixture
def nodes(tmp_path: Path, database: str) -> Iterator[Callable[..., list[SrvdnsProcess]]]:
    """Start N nodes on ``database``, each with its own config file and free ports."""
    started: list[SrvdnsProcess] = []

    def _start(
        count: int, *, server: str = "", body: str = ZONE, args: tuple[str, ...] = ()
    ) -> list[SrvdnsProcess]:
        for _ in range(count):
            name = f"node{len(started)}"
            directory = tmp_path / name
            directory.mkdir()
            config = directory / "srvdns.toml"
            config.write_text(
                "[server]\n"
                'dns_listen = ["127.0.0.1:0"]\n'
                'api_listen = "127.0.0.1:0"\n'
                f'database = "{database}"\n'
                f'node_name = "{name}"\n' + server + "\n" + body
            )
            started.append(start(config, args=args))
        return started[-count:]

    yield _start
    for node in started:
        node.stop()


def addresses(node: SrvdnsProcess, qname: str = "web.service.local") -> list[str] | None:
    """The A records ``node`` answers, or None for NXDOMAIN."""
    reply = node.query(qname, "A")
    if reply.rcode() == dns.rcode.NXDOMAIN:
        return None
    assert reply.rcode() == dns.rcode.NOERROR
    return sorted(rr.to_text() for rrset in reply.answer for rr in rrset)


def register(node: SrvdnsProcess, instance: str, address: str, **fields: Any) -> None:
    with node.http() as http:
        response = http.put(
            f"/v1/services/web/instances/{instance}",
            json={"address": address, "port": 80, **fields},
        )
    assert response.status_code in (200, 201), response.text


def test_serve_refuses_a_database_that_is_not_migrated(tmp_path: Path) -> None:
    with fresh_database(require_postgres()) as url:
        config = tmp_path / "srvdns.toml"
        config.write_text(
            f'[server]\ndns_listen = ["127.0.0.1:0"]\napi_listen = "127.0.0.1:0"\n'
            f'database = "{url}"\n' + ZONE
        )
        done = subprocess.run(
            [*srvdns_command(), "serve", "-c", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode != 0
    assert "run `srvdns db upgrade`" in done.stderr


def test_a_registration_through_one_node_is_answered_by_all(nodes) -> None:
    a, b, c = nodes(3)
    register(a, "web-1", "10.0.0.1")
    for node in (a, b, c):
        wait_for(lambda node=node: addresses(node) == ["10.0.0.1"], timeout=5)
    register(c, "web-2", "10.0.0.2")
    for node in (a, b, c):
        wait_for(lambda node=node: addresses(node) == ["10.0.0.1", "10.0.0.2"], timeout=5)
    assert "10.0.0.2" in b.dig("+short", "web.service.local", "A")
    with b.http() as http:
        assert http.delete("/v1/services/web/instances/web-1").status_code in (200, 204)
    for node in (a, b, c):
        wait_for(lambda node=node: addresses(node) == ["10.0.0.2"], timeout=5)
    with c.http() as http:
        assert http.delete("/v1/services/web/instances/web-2").status_code in (200, 204)
    for node in (a, b, c):
        wait_for(lambda node=node: addresses(node) is None, timeout=5)


def test_a_heartbeat_through_another_node_keeps_the_lease(nodes) -> None:
    a, b = nodes(2)
    register(a, "web-1", "10.0.0.1", ttl="1s")
    wait_for(lambda: addresses(b) == ["10.0.0.1"], timeout=5)
    deadline = time.monotonic() + 3  # three leases long, renewed only through node b
    while time.monotonic() < deadline:
        with b.http() as http:
            assert http.put("/v1/services/web/instances/web-1/heartbeat").status_code == 200
        for node in (a, b):
            assert addresses(node) == ["10.0.0.1"]
        time.sleep(0.3)
    # without heartbeats the lease lapses on every node
    for node in (a, b):
        wait_for(lambda node=node: addresses(node) is None, timeout=5)


def test_notify_reaches_every_worker_of_a_node_without_polling(nodes) -> None:
    """Polling every 60 s cannot explain an answer within seconds: NOTIFY woke the
    node's follower, which kicks its DNS workers."""
    slow = 'follow_interval = "60s"\nidentity = "a"\n'
    (a,) = nodes(1, server=slow, args=("--workers", "2"))
    wait_for(lambda: any("supervising 2 workers" in line for line in a.log), timeout=30)
    (b,) = nodes(1)
    register(b, "web-1", "10.0.0.1")
    seen: set[str] = set()
    for _ in range(300):  # source ports: the kernel spreads them over both workers
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            who = dns.message.make_query("id.server", "TXT", rdclass=dns.rdataclass.CH)
            reply = dns.query.udp(who, a.host, port=a.port, timeout=3, sock=sock)
            worker = b"".join(next(iter(reply.answer[0])).strings).decode()
            if worker in seen:
                continue
            seen.add(worker)
            query = dns.message.make_query("web.service.local", "A")

            def answered(sock: socket.socket = sock, query: dns.message.Message = query) -> bool:
                reply = dns.query.udp(query, a.host, port=a.port, timeout=3, sock=sock)
                return reply.rcode() == dns.rcode.NOERROR and bool(reply.answer)

            wait_for(answered, timeout=5)
        if len(seen) == 2:
            break
    assert len(seen) == 2, seen


LEASE = 1.5
INTERVAL = 0.3
CHECKED = f"""\
{ZONE}
[health]
interval = "{int(INTERVAL * 1000)}ms"
timeout = "200ms"
"""


@pytest.fixture
def targets() -> Iterator[TargetPool]:
    with target_pool() as pool:
        yield pool


def owners(database: str) -> dict[str, int]:
    """How many check leases each node holds."""
    engine = sa.create_engine(database)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT node_id, count(*) FROM check_owners GROUP BY node_id")
            ).all()
    finally:
        engine.dispose()
    return {node: int(count) for node, count in rows}


def hits_over(targets: list[Target], seconds: float) -> list[int]:
    """How many health requests each target receives in the next ``seconds``."""
    before = [t.hits for t in targets]
    time.sleep(seconds)
    return [t.hits - b for t, b in zip(targets, before, strict=True)]


def register_checked(node: SrvdnsProcess, targets: list[Target]) -> None:
    for n, target in enumerate(targets, 1):
        register(node, f"web-{n}", f"10.0.0.{n}", check={"http": f"{target.url}/health"})


def test_each_check_runs_on_one_node_and_moves_when_its_node_dies(
    nodes, database: str, targets: TargetPool
) -> None:
    a, b, c = nodes(3, server=f'check_lease = "{LEASE}s"\n', body=CHECKED)
    pool = [targets.http() for _ in range(6)]
    register_checked(a, pool)
    # every node soon holds its share, two checks each
    wait_for(lambda: sorted(owners(database).values()) == [2, 2, 2], timeout=4 * LEASE)
    window = 10 * INTERVAL  # ten intervals: about 10 requests per target, not 30
    counts = hits_over(pool, window)
    assert all(5 <= n <= 15 for n in counts), counts
    # SIGKILL the node that holds node0's checks: no clean hand-over
    assert a.stop(signal.SIGKILL) == -signal.SIGKILL
    wait_for(lambda: "node0" not in owners(database), timeout=3 * LEASE)
    assert sorted(owners(database).values()) == [3, 3]
    time.sleep(INTERVAL)  # the claimed checks' next runs are due within an interval
    counts = hits_over(pool, window)
    assert all(5 <= n <= 15 for n in counts), counts
    for node in (b, c):  # the survivors still answer every instance
        wait_for(lambda node=node: len(addresses(node) or []) == 6, timeout=5)
