"""Health checks end to end: a real srvdns, real HTTP and TCP targets on loopback, and
DNS answers (dnspython) through every transition."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dns.rcode
import dns.rdatatype
import pytest
from e2e.harness import SrvdnsProcess, wait_for
from health.targets import Target, TargetPool, target_pool

ZONE = """\
[[zone]]
name = "service.local"
ttl = 5
{zone}

[health]
interval = "200ms"
timeout = "100ms"
success_before_passing = 2
failures_before_critical = 1
{health}
"""


@pytest.fixture
def targets() -> Iterator[TargetPool]:
    with target_pool() as pool:
        yield pool


@pytest.fixture
def health_srvdns(launch: Callable[..., SrvdnsProcess]) -> Callable[..., SrvdnsProcess]:
    def _start(zone: str = "", health: str = "", **options: Any) -> SrvdnsProcess:
        return launch(ZONE.format(zone=zone, health=health), **options)

    return _start


def addresses(server: SrvdnsProcess, qname: str = "web.service.local") -> list[str] | None:
    """The A records, or None for NXDOMAIN."""
    reply = server.query(qname, "A", tcp=True)
    if reply.rcode() == dns.rcode.NXDOMAIN:
        return None
    assert reply.rcode() == dns.rcode.NOERROR
    return sorted(rr.to_text() for rrset in reply.answer for rr in rrset)


def srv_weights(server: SrvdnsProcess, qname: str = "web.service.local") -> dict[str, int]:
    reply = server.query(qname, "SRV", tcp=True)
    return {
        rr.target.to_text().split(".")[0]: rr.weight
        for rrset in reply.answer
        if rrset.rdtype == dns.rdatatype.SRV
        for rr in rrset
    }


def register(server: SrvdnsProcess, instance: str, target: Target, **fields: Any) -> dict:
    fields.setdefault("check", {"http": f"{target.url}/health"})
    n = instance.rsplit("-", 1)[-1]
    with server.http() as http:
        response = http.put(
            f"/v1/services/web/instances/{instance}",
            json={"address": f"10.0.0.{n}", "port": target.port, **fields},
        )
    assert response.status_code in (200, 201), response.text
    return response.json()


def instance(server: SrvdnsProcess, instance_id: str) -> dict | None:
    with server.http() as http:
        response = http.get("/v1/services/web")
    if response.status_code == 404:
        return None
    found = [i for i in response.json()["instances"] if i["id"] == instance_id]
    return found[0] if found else None


def check(server: SrvdnsProcess, instance_id: str, check_id: str = "http") -> dict:
    found = instance(server, instance_id)
    assert found is not None
    return next(c for c in found["checks"] if c["id"] == check_id)


def timed(predicate: Callable[[], object], timeout: float = 5.0) -> float:
    start = time.monotonic()
    wait_for(predicate, timeout=timeout, interval=0.01)
    return time.monotonic() - start


def test_http_transitions(health_srvdns, targets: TargetPool) -> None:
    server = health_srvdns()
    target = targets.http()
    register(server, "web-1", target, weights={"passing": 10, "warning": 2})
    assert timed(lambda: addresses(server) == ["10.0.0.1"]) < 1.0  # checked at once
    assert srv_weights(server) == {"web-1": 10}
    # interval 200 ms + timeout 100 ms: every failure shows within that plus polling slack
    bound = 0.2 + 0.1 + 0.25

    target.set("warn")  # 429: still answered, with the warning weight
    assert timed(lambda: srv_weights(server) == {"web-1": 2}) < bound
    assert check(server, "web-1")["status"] == "warning"
    assert addresses(server) == ["10.0.0.1"]

    target.set("error")  # 500
    assert timed(lambda: addresses(server) is None) < bound
    state = check(server, "web-1")
    assert state["status"] == "critical"
    assert state["output"].endswith(": 500 Internal Server Error Output: ok")

    target.set("ok")  # back after success_before_passing (2) good results
    assert timed(lambda: addresses(server) == ["10.0.0.1"]) < 2 * bound
    assert check(server, "web-1")["successes"] >= 2

    target.set("slow")  # no answer within the timeout
    assert timed(lambda: addresses(server) is None) < bound
    assert check(server, "web-1")["output"].endswith("timed out after 100ms")

    target.set("ok")
    wait_for(lambda: addresses(server) == ["10.0.0.1"], timeout=3)
    target.set("dead")  # the port is closed
    assert timed(lambda: addresses(server) is None) < bound
    assert "refused" in check(server, "web-1")["output"].lower()


def test_tcp_check(health_srvdns, targets: TargetPool) -> None:
    server = health_srvdns()
    target = targets.http()
    register(server, "web-1", target, check={"tcp": f"127.0.0.1:{target.port}"})
    wait_for(lambda: addresses(server) == ["10.0.0.1"], timeout=3)
    target.set("dead")
    wait_for(lambda: addresses(server) is None, timeout=3)
    assert check(server, "web-1", "tcp")["output"].startswith("TCP connect")
    target.set("ok")
    wait_for(lambda: addresses(server) == ["10.0.0.1"], timeout=3)


def test_tcp_check_outputs_and_timeouts(health_srvdns, targets: TargetPool) -> None:
    """What the API shows of a TCP check: success, the system's text for a refused
    port, and the timeout for a target whose accept queue is full (SYNs dropped)."""
    server = health_srvdns()
    target = targets.http()
    netloc = f"127.0.0.1:{target.port}"
    register(server, "web-1", target, check={"tcp": netloc})
    wait_for(lambda: check(server, "web-1", "tcp")["output"] == f"TCP connect {netloc}: success")
    target.set("dead")
    refused = f"TCP connect {netloc}: Connection refused"
    wait_for(lambda: check(server, "web-1", "tcp")["output"] == refused, timeout=3)
    assert check(server, "web-1", "tcp")["status"] == "critical"
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        filler = socket.create_connection(full.getsockname())
        blackhole = f"127.0.0.1:{full.getsockname()[1]}"
        try:
            register(server, "web-2", target, check={"tcp": blackhole})
            timed_out = f"TCP connect {blackhole}: timed out after 100ms"
            wait_for(lambda: check(server, "web-2", "tcp")["output"] == timed_out, timeout=3)
            assert check(server, "web-2", "tcp")["status"] == "critical"
        finally:
            filler.close()


def open_sockets(pid: int) -> int:
    """How many sockets ``pid`` has open (not files: the registry's connection pool may
    open a database connection at any time)."""
    return sum(
        1 for fd in Path(f"/proc/{pid}/fd").iterdir() if str(fd.readlink()).startswith("socket:")
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_tcp_checks_reset_every_connection_and_leak_no_socket(
    health_srvdns, targets: TargetPool, host: str
) -> None:
    """Run after run, the TCP check connects for real and resets the connection (the
    target reads a reset, never a clean close), and srvdns's open sockets stay flat."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        listener = socket.create_server((host, 0), family=family)
    except OSError:
        pytest.skip(f"no {host} on this host")
    server = health_srvdns()
    with listener:
        port = listener.getsockname()[1]
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        register(server, "web-1", targets.http(), check={"tcp": netloc})
        wait_for(
            lambda: check(server, "web-1", "tcp")["output"] == f"TCP connect {netloc}: success"
        )
        listener.settimeout(3)
        for run in range(8):
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(3)
                with pytest.raises(ConnectionResetError):
                    conn.recv(1)
            if run == 1:
                sockets = open_sockets(server.process.pid)
        # a socket kept per check would have added six by now; an API connection of the
        # test's own polling may still be closing, so wait for it rather than count it
        wait_for(lambda: open_sockets(server.process.pid) <= sockets, timeout=3)
        assert check(server, "web-1", "tcp")["status"] == "passing"


def test_damping_counters(health_srvdns, targets: TargetPool) -> None:
    server = health_srvdns()
    target = targets.http()
    damped = {"http": f"{target.url}/", "success_before_passing": 3, "failures_before_critical": 2}
    register(server, "web-1", target, check=damped)
    register(server, "web-2", targets.http())
    wait_for(lambda: addresses(server) == ["10.0.0.1", "10.0.0.2"], timeout=3)

    target.set("error")
    wait_for(lambda: check(server, "web-1")["failures"] == 1, timeout=3, interval=0.01)
    assert addresses(server) == ["10.0.0.1", "10.0.0.2"]  # one failure is not enough
    assert check(server, "web-1")["status"] == "passing"
    wait_for(lambda: addresses(server) == ["10.0.0.2"], timeout=3)
    assert check(server, "web-1")["failures"] >= 2

    target.set("ok")
    wait_for(lambda: check(server, "web-1")["successes"] in (1, 2), timeout=3, interval=0.01)
    assert addresses(server) == ["10.0.0.2"]  # not yet: three good results in a row
    wait_for(lambda: addresses(server) == ["10.0.0.1", "10.0.0.2"], timeout=3)
    assert check(server, "web-1")["successes"] >= 3


def test_deregister_critical_after(health_srvdns, targets: TargetPool) -> None:
    server = health_srvdns()
    target = targets.http()
    register(
        server, "web-1", target, check={"http": target.url, "deregister_critical_after": "500ms"}
    )
    register(server, "web-2", targets.http())
    wait_for(lambda: addresses(server) == ["10.0.0.1", "10.0.0.2"], timeout=3)
    target.set("dead")
    wait_for(lambda: addresses(server) == ["10.0.0.2"], timeout=3)
    gone = time.monotonic()
    wait_for(lambda: instance(server, "web-1") is None, timeout=5)
    assert time.monotonic() - gone >= 0.3
    assert any("deregistered web/web-1" in line for line in server.log)


def test_only_passing(health_srvdns, targets: TargetPool) -> None:
    server = health_srvdns(zone="only_passing = true")
    target = targets.http()
    register(server, "web-1", target)
    register(server, "web-2", targets.http())
    wait_for(lambda: addresses(server) == ["10.0.0.1", "10.0.0.2"], timeout=3)
    target.set("warn")
    wait_for(lambda: addresses(server) == ["10.0.0.2"], timeout=3)
    assert check(server, "web-1")["status"] == "warning"


def test_panic_threshold(health_srvdns, targets: TargetPool) -> None:
    server = health_srvdns(zone="panic_threshold = 0.5\npanic_min_instances = 3")
    pool = [targets.http() for _ in range(4)]
    for n, target in enumerate(pool, 1):
        register(server, f"web-{n}", target)
    everyone = [f"10.0.0.{n}" for n in range(1, 5)]
    wait_for(lambda: addresses(server) == everyone, timeout=3)

    pool[0].set("dead")  # one of four: just left out
    wait_for(lambda: addresses(server) == everyone[1:], timeout=3)
    pool[1].set("dead")  # half: not more than half
    wait_for(lambda: addresses(server) == everyone[2:], timeout=3)
    pool[2].set("dead")  # three of four: panic, everyone is answered
    wait_for(lambda: addresses(server) == everyone, timeout=3)
    with server.http() as http:
        body = http.get("/v1/services/web").json()
    assert (body["panic"], body["panic_zones"]) == (True, ["service.local"])
    assert [i["status"] for i in body["instances"]].count("critical") == 3
    wait_for(lambda: any("PANIC: 3 of 4 instances of web" in line for line in server.log))

    pool[0].set("ok")
    pool[1].set("ok")
    wait_for(lambda: addresses(server) == everyone[:2] + everyone[3:], timeout=3)
    with server.http() as http:
        assert http.get("/v1/services/web").json()["panic"] is False


def test_restart_keeps_check_state(health_srvdns, targets: TargetPool, launch) -> None:
    first = health_srvdns()
    good, bad = targets.http(), targets.http("error")
    register(first, "web-1", good, check={"http": good.url, "interval": "300ms"})
    register(first, "web-2", bad, check={"http": bad.url, "interval": "300ms"})
    wait_for(lambda: addresses(first) == ["10.0.0.1"], timeout=3)
    wait_for(lambda: check(first, "web-1")["successes"] >= 3, timeout=3)
    assert first.stop() == 0

    # the targets go quiet: whatever the restarted srvdns answers comes from the registry
    good.set("slow")
    bad.set("slow")
    second = launch(config=first.config)
    assert addresses(second) == ["10.0.0.1"]  # not everything critical, nothing resurrected
    state = check(second, "web-1")
    assert state["status"] == "passing"
    assert state["successes"] >= 3
    assert check(second, "web-2")["status"] == "critical"


def test_static_services_take_checks(health_srvdns, targets: TargetPool) -> None:
    target = targets.http()
    zone = (
        '[[zone.service]]\nname = "db"\ninstances = [\n'
        f'  {{ address = "127.0.0.1", port = {target.port}, checks = [{{ http = "/" }}] }},\n'
        "]\n"
    )
    server = health_srvdns(zone=zone)
    wait_for(lambda: addresses(server, "db.service.local") == ["127.0.0.1"], timeout=3)
    target.set("error")
    wait_for(lambda: addresses(server, "db.service.local") is None, timeout=3)


def test_new_instance_appears_fast_and_metrics(health_srvdns, targets: TargetPool) -> None:
    server = health_srvdns()
    target = targets.http()
    start = time.monotonic()
    register(server, "web-1", target)
    wait_for(lambda: addresses(server) == ["10.0.0.1"], timeout=3, interval=0.005)
    assert time.monotonic() - start < 0.5
    with server.http() as http:
        text = http.get("/metrics").text
    assert "srvdns_event_loop_lag_seconds" in text
    assert 'srvdns_health_checks_total{kind="http",status="passing"}' in text


def test_sigkill_keeps_acknowledged_status_changes(health_srvdns, targets: TargetPool, launch):
    first = health_srvdns()
    target = targets.http()
    register(first, "web-1", target, check={"http": target.url, "interval": "300ms"})
    register(first, "web-2", targets.http())
    wait_for(lambda: addresses(first) == ["10.0.0.1", "10.0.0.2"], timeout=3)
    target.set("error")
    wait_for(lambda: addresses(first) == ["10.0.0.2"], timeout=3)
    first.stop(signal.SIGKILL)
    target.set("slow")
    second = launch(config=first.config)
    assert addresses(second) == ["10.0.0.2"]
