"""``srvdns serve --workers 2``: a real process tree answering on one port with SO_REUSEPORT."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import httpx
import pytest
from e2e.harness import (
    SrvdnsProcess,
    free_port,
    socket_activated,
    srvdns_command,
    start,
    wait_for,
    write_config,
)

_STARTED = re.compile(r"started worker (\d+) \(pid (\d+)\)")
SPREAD_TRIES = 300
"""Source ports tried to reach every worker; with two, missing one is 2**-300 unlikely."""


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[SrvdnsProcess]:
    """``srvdns serve --workers 2`` with id.server on, once both workers listen."""
    zone = '[[zone]]\nname = "service.local"\nttl = 60\n'
    config = write_config(tmp_path, zone, server='identity = "node"\n')
    proc = start(config, args=("--workers", "2"))
    try:
        wait_for(lambda: any("supervising 2 workers" in line for line in proc.log), timeout=30)
        yield proc
    finally:
        proc.stop()


def pids(proc: SrvdnsProcess) -> dict[int, int]:
    """Worker number -> pid of its latest start, from the supervisor's log."""
    found: dict[int, int] = {}
    for line in list(proc.log):
        if m := _STARTED.search(line):
            found[int(m.group(1))] = int(m.group(2))
    return found


def ask(proc: SrvdnsProcess, sock: socket.socket, qname: str, rdtype: str, **kw: object):
    query = dns.message.make_query(qname, dns.rdatatype.from_text(rdtype), **kw)  # type: ignore[arg-type]
    return dns.query.udp(query, proc.host, port=proc.port, timeout=3, sock=sock)


def worker_of(proc: SrvdnsProcess, sock: socket.socket) -> str:
    """Which worker answers queries from ``sock``'s source port (id.server, RFC 4892)."""
    reply = ask(proc, sock, "id.server", "TXT", rdclass=dns.rdataclass.CH)
    (rrset,) = reply.answer
    return b"".join(next(iter(rrset)).strings).decode()


def by_worker(proc: SrvdnsProcess, check: Callable[[socket.socket], None]) -> set[str]:
    """Run ``check`` from source ports until every worker ran it; the workers it reached.

    The kernel picks the SO_REUSEPORT socket by a hash of the source address, so one
    source port always reaches the same worker, and many ports reach them all.
    """
    seen: set[str] = set()
    for _ in range(SPREAD_TRIES):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            worker = worker_of(proc, sock)
            if worker not in seen:
                check(sock)
                assert worker_of(proc, sock) == worker  # the same one answered the check
                seen.add(worker)
        if len(seen) == 2:
            break
    return seen


def test_a_registration_is_answered_by_every_worker(tree: SrvdnsProcess) -> None:
    with tree.http() as http:
        body = {"address": "10.0.0.7", "port": 8080, "ttl": "20s"}
        assert http.put("/v1/services/web/instances/w1", json=body).status_code in (200, 201)

    def answers_web(sock: socket.socket) -> None:
        def ready() -> bool:
            reply = ask(tree, sock, "web.service.local", "A")
            return reply.rcode() == dns.rcode.NOERROR and bool(reply.answer)

        wait_for(ready, timeout=5)  # the follower polls every 150 ms
        (rrset,) = ask(tree, sock, "web.service.local", "A").answer
        assert [r.address for r in rrset] == ["10.0.0.7"]
        assert rrset.ttl <= 20  # the zone's 60 s capped by the lease, in a follower too

    assert by_worker(tree, answers_web) == {"node worker 1", "node worker 2"}

    with tree.http() as http:
        assert http.delete("/v1/services/web/instances/w1").status_code in (200, 204)

    def forgot_web(sock: socket.socket) -> None:
        wait_for(
            lambda: ask(tree, sock, "web.service.local", "A").rcode() == dns.rcode.NXDOMAIN,
            timeout=5,
        )

    assert by_worker(tree, forgot_web) == {"node worker 1", "node worker 2"}
    assert tree.query("service.local", "SOA", tcp=True).rcode() == dns.rcode.NOERROR


def test_a_killed_worker_is_restarted(tree: SrvdnsProcess) -> None:
    before = pids(tree)
    os.kill(before[2], signal.SIGKILL)
    wait_for(lambda: pids(tree)[2] != before[2], timeout=10)
    wait_for(lambda: sum("dns worker 2 listening" in line for line in tree.log) == 2, timeout=30)
    assert by_worker(tree, lambda sock: None) == {"node worker 1", "node worker 2"}

    os.kill(before[1], signal.SIGKILL)  # the primary: the API comes back on its port
    wait_for(lambda: pids(tree)[1] != before[1], timeout=10)
    wait_for(lambda: sum("api listening on" in line for line in tree.log) == 2, timeout=30)
    with tree.http() as http:
        body = {"address": "10.0.0.8", "port": 80}
        assert http.put("/v1/services/db/instances/d1", json=body).status_code in (200, 201)
    wait_for(lambda: bool(tree.query("db.service.local", "A").answer), timeout=5)
    assert pids(tree)[2] != before[2]  # worker 2 was left alone


def test_sigterm_stops_the_whole_tree_with_status_0(tree: SrvdnsProcess) -> None:
    workers = pids(tree)
    assert tree.stop() == 0
    for pid in workers.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert any("supervisor: stopping 2 workers" in line for line in tree.log)


def test_workers_from_the_config_file_and_a_failing_start(tmp_path: Path) -> None:
    config = write_config(tmp_path, server="workers = 2\n")
    proc = start(config)
    try:
        wait_for(lambda: any("supervising 2 workers" in line for line in proc.log), timeout=30)
        assert proc.query("service.local", "SOA").rcode() == dns.rcode.NOERROR
    finally:
        assert proc.stop() == 0
    # a port another program holds without SO_REUSEPORT: the tree does not start
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        config = write_config(tmp_path, server="workers = 2\n", dns_listen=f'["127.0.0.1:{port}"]')
        with pytest.raises(AssertionError, match="exited at start-up"):
            start(config)


def test_systemd_hears_from_the_supervisor_only(tmp_path: Path) -> None:
    """READY=1 once every worker listens, watchdog pings, STOPPING=1; the workers do not
    see NOTIFY_SOCKET (NotifyAccess=main would refuse them)."""
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    with notify:
        notify.settimeout(30)
        proc = start(
            write_config(tmp_path, server="workers = 2\n"),
            env={"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "400000"},
        )
        try:
            first = notify.recv(4096).decode()
            assert first.startswith("READY=1")
            assert "serving with 2 workers" in first
            wait_for(lambda: any("supervising 2 workers" in line for line in proc.log))
            assert "WATCHDOG=1" in notify.recv(4096).decode()
            proc.process.send_signal(signal.SIGTERM)
            while "STOPPING=1" not in notify.recv(4096).decode():
                pass
        finally:
            assert proc.stop() == 0


def test_workers_share_the_sockets_of_socket_activation(tmp_path: Path) -> None:
    """As srvdns.socket and srvdns-api.socket hand them over (see test_systemd.py): the
    supervisor takes the sockets and every worker serves the same DNS sockets."""
    dns_port, api_port = free_port(), free_port()
    config = write_config(tmp_path, server='identity = "node"\n')
    process = subprocess.Popen(
        socket_activated(dns_port, api_port, ["serve", "-c", str(config), "--workers", "2"]),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc = SrvdnsProcess(config=config, process=process, dns=[("127.0.0.1", dns_port)])
    try:
        question = dns.message.make_query("id.server", "TXT", rdclass="CH")
        seen: set[str] = set()

        def answered() -> bool:
            try:
                reply = dns.query.udp(question, "127.0.0.1", port=dns_port, timeout=0.5)
            except dns.exception.Timeout:
                return False
            seen.add(b"".join(next(iter(reply.answer[0])).strings).decode())
            return True

        wait_for(answered, timeout=60)  # the first datagram starts the tree
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=10) as http:
            body = {"address": "10.0.0.9", "port": 80}
            put = http.put("/v1/services/web/instances/w1", json=body)
            assert put.status_code in (200, 201), put.text
        # both workers read the one UDP socket: whichever is free first answers
        wait_for(lambda: answered() and seen == {"node worker 1", "node worker 2"}, timeout=60)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _ in range(20):  # every answer, from either worker, has the registration
                wait_for(lambda: bool(ask(proc, sock, "web.service.local", "A").answer))
        reply = dns.query.tcp(question, "127.0.0.1", port=dns_port, timeout=5)
        assert reply.rcode() == dns.rcode.NOERROR
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert process.stderr is not None
        log = process.stderr.read()
        process.stderr.close()
    assert "supervising 2 workers" in log
    assert "dns worker 2 listening" in log


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie left for init to reap does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_workers_stop_when_the_supervisor_is_killed(tree: SrvdnsProcess) -> None:
    workers = pids(tree)
    tree.process.kill()  # no chance to stop them itself
    tree.process.wait(timeout=10)
    wait_for(lambda: not any(running(pid) for pid in workers.values()), timeout=20)


def test_sighup_reloads_every_worker(tree: SrvdnsProcess) -> None:
    with tree.http() as http:
        body = {"address": "10.0.0.7", "port": 8080}
        assert http.put("/v1/services/web/instances/w1", json=body).status_code in (200, 201)
    text = tree.config.read_text()
    tree.config.write_text(text.replace("ttl = 60", "ttl = 30"))
    tree.process.send_signal(signal.SIGHUP)
    wait_for(lambda: any("dns worker 2: reloaded" in line for line in tree.log), timeout=20)
    wait_for(lambda: any("reloaded" in line and "static" in line for line in tree.log), timeout=20)

    def answers_with_the_new_ttl(sock: socket.socket) -> None:
        wait_for(lambda: bool(ask(tree, sock, "web.service.local", "A").answer), timeout=5)
        (rrset,) = ask(tree, sock, "web.service.local", "A").answer
        assert rrset.ttl == 30

    assert by_worker(tree, answers_with_the_new_ttl) == {"node worker 1", "node worker 2"}


def test_zone_transfers_need_a_single_worker(tmp_path: Path) -> None:
    config = write_config(tmp_path, server="workers = 2")
    text = config.read_text().replace(
        'name = "service.local"', 'name = "service.local"\ntransfer_to = ["127.0.0.1"]', 1
    )
    config.write_text(text)
    done = subprocess.run(
        [*srvdns_command(), "serve", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "server.workers: zone transfers (service.local" in done.stderr
