"""Leases, restarts and crashes of a real srvdns process."""

from __future__ import annotations

import signal
import time

import dns.rcode
from e2e.harness import SrvdnsProcess, start, wait_for


def answered(server: SrvdnsProcess, qname: str = "web.service.local") -> bool:
    return server.query(qname, "A").rcode() == dns.rcode.NOERROR


def test_lease_expiry_and_renewal(srvdns: SrvdnsProcess) -> None:
    with srvdns.http() as http:
        r = http.put(
            "/v1/services/web/instances/web-1",
            json={"address": "10.0.0.1", "port": 80, "ttl": "1s"},
        )
        assert r.status_code in (200, 201), r.text
        registered = time.monotonic()
        reply = srvdns.query("web.service.local", "A")
        assert reply.rcode() == dns.rcode.NOERROR
        assert reply.answer[0].ttl <= 1  # never cached past the lease

        wait_for(lambda: not answered(srvdns), timeout=3)
        assert time.monotonic() - registered < 2.5  # leaves DNS within a second of expiry
        assert srvdns.query("web.service.local", "A").rcode() == dns.rcode.NXDOMAIN
        listed = http.get("/v1/services/web").json()
        assert [i["status"] for i in listed["instances"]] == ["critical"]

        beat = http.put("/v1/services/web/instances/web-1/heartbeat")
        assert beat.status_code == 200, beat.text
        assert answered(srvdns)


def test_restart_keeps_registrations(launch) -> None:  # type: ignore[no-untyped-def]
    first = launch()
    with first.http() as http:
        for n in range(3):
            r = http.put(
                f"/v1/services/web/instances/web-{n}",
                json={"address": f"10.0.0.{n + 1}", "port": 80, "tags": ["blue"]},
            )
            assert r.status_code in (200, 201), r.text
        lapsing = http.put(
            "/v1/services/cron/instances/c-1", json={"address": "10.0.9.9", "port": 1, "ttl": "1s"}
        )
        assert lapsing.status_code in (200, 201)
    assert first.stop() == 0

    time.sleep(1.1)  # the lease of cron/c-1 lapses while srvdns is down
    second = launch(config=first.config)
    reply = second.query("blue.web.service.local", "A")
    assert sorted(r.to_text() for rr in reply.answer for r in rr) == [
        "10.0.0.1",
        "10.0.0.2",
        "10.0.0.3",
    ]
    assert second.query("cron.service.local", "A").rcode() == dns.rcode.NXDOMAIN
    with second.http() as http:
        cron = http.get("/v1/services/cron").json()
    assert [i["status"] for i in cron["instances"]] == ["critical"]


def test_acknowledged_writes_survive_sigkill(launch) -> None:  # type: ignore[no-untyped-def]
    first = launch()
    with first.http() as http:
        for n in range(20):
            r = http.put(
                f"/v1/services/svc{n % 4}/instances/i-{n}",
                json={"address": f"10.1.0.{n + 1}", "port": 1000 + n},
            )
            assert r.status_code in (200, 201), r.text
        assert http.delete("/v1/services/svc0/instances/i-0").status_code in (200, 204)
    first.stop(signal.SIGKILL)

    second = start(first.config)
    try:
        with second.http() as http:
            services = {s["name"]: s for s in http.get("/v1/services").json()["services"]}
        assert {name: s["instances"] for name, s in services.items()} == {
            "svc0": 4,
            "svc1": 5,
            "svc2": 5,
            "svc3": 5,
        }
    finally:
        second.stop()
