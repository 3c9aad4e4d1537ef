"""What a crash (SIGKILL) keeps of acknowledged writes, and the heartbeat fast path's answers.

A registration is committed before it is acknowledged, so it survives a SIGKILL.  A
heartbeat of a running lease is held in memory for up to ``heartbeat_flush_interval``:
after a SIGKILL and a restart the lease is the acknowledged one or, at worst, that
interval older; never newer.  A clean stop (SIGTERM) writes every renewal.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from e2e.harness import SrvdnsProcess, start

pytestmark = pytest.mark.e2e

FLUSH = 0.5


def lease_expires(proc: SrvdnsProcess, service: str, instance_id: str) -> float:
    with proc.http() as client:
        found = client.get(f"/v1/services/{service}").json()["instances"]
    [instance] = [i for i in found if i["id"] == instance_id]
    return float(instance["lease_expires_unix"])


def test_a_registration_acknowledged_survives_sigkill(launch: Callable[..., SrvdnsProcess]):
    proc = launch(server=f'heartbeat_flush_interval = "{FLUSH}s"')
    with proc.http() as client:
        for n in range(20):
            body = {"address": f"10.0.0.{n + 1}", "port": 80, "ttl": "60s"}
            assert client.put(f"/v1/services/web/instances/w{n}", json=body).status_code == 201
    assert proc.stop(signal.SIGKILL) == -signal.SIGKILL
    again = start(proc.config)
    try:
        with again.http() as client:
            found = client.get("/v1/services/web").json()["instances"]
        assert sorted(i["id"] for i in found) == sorted(f"w{n}" for n in range(20))
        answer = again.query("web.service.local", "A")
        assert len(answer.answer[0]) == 20
    finally:
        again.stop()


def test_concurrent_registrations_acknowledged_survive_sigkill(
    launch: Callable[..., SrvdnsProcess],
):
    """Sixteen clients at once: their registrations share group commits (one stamp and
    one index bump per batch), and every one acknowledged is there after a SIGKILL."""
    proc = launch(server=f'heartbeat_flush_interval = "{FLUSH}s"')

    def register(n: int) -> int:
        body = {"address": f"10.0.{n // 200}.{n % 200 + 1}", "port": 80, "ttl": "60s"}
        with proc.http() as client:
            return client.put(f"/v1/services/s{n % 3}/instances/i{n}", json=body).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(register, range(240)))
    assert statuses == [201] * 240
    assert proc.stop(signal.SIGKILL) == -signal.SIGKILL
    again = start(proc.config)
    try:
        with again.http() as client:
            for service in range(3):
                found = client.get(f"/v1/services/s{service}").json()["instances"]
                assert sorted(i["id"] for i in found) == sorted(
                    f"i{n}" for n in range(240) if n % 3 == service
                )
                answer = again.query(f"s{service}.service.local", "SRV", tcp=True)
                assert len(answer.answer[0]) == 80
    finally:
        again.stop()


def test_a_heartbeat_then_sigkill_loses_at_most_the_flush_interval(
    launch: Callable[..., SrvdnsProcess],
):
    proc = launch(server=f'heartbeat_flush_interval = "{FLUSH}s"')
    with proc.http() as client:
        body = {"address": "10.0.0.1", "port": 80, "ttl": "60s"}
        registered = client.put("/v1/services/web/instances/a", json=body).json()
        time.sleep(0.05)
        beat = client.put("/v1/services/web/instances/a/heartbeat")
        assert beat.status_code == 200
        acknowledged = beat.json()["lease_expires_unix"]
    assert acknowledged > registered["lease_expires_unix"]
    time.sleep(FLUSH / 5)  # well inside the flush interval
    proc.stop(signal.SIGKILL)
    again = start(proc.config)
    try:
        kept = lease_expires(again, "web", "a")
    finally:
        again.stop()
    assert acknowledged - FLUSH <= kept <= acknowledged


def test_a_heartbeat_is_written_within_the_flush_interval(
    launch: Callable[..., SrvdnsProcess],
):
    proc = launch(server=f'heartbeat_flush_interval = "{FLUSH}s"')
    with proc.http() as client:
        body = {"address": "10.0.0.1", "port": 80, "ttl": "60s"}
        client.put("/v1/services/web/instances/a", json=body)
        time.sleep(0.05)
        acknowledged = client.put("/v1/services/web/instances/a/heartbeat").json()
    time.sleep(FLUSH * 3)  # the flush has run by now
    proc.stop(signal.SIGKILL)
    again = start(proc.config)
    try:
        assert lease_expires(again, "web", "a") == acknowledged["lease_expires_unix"]
    finally:
        again.stop()


def test_sigterm_writes_every_heartbeat(launch: Callable[..., SrvdnsProcess]):
    proc = launch(server='heartbeat_flush_interval = "60s"')
    with proc.http() as client:
        body = {"address": "10.0.0.1", "port": 80, "ttl": "600s"}
        for n in range(5):
            client.put(f"/v1/services/web/instances/w{n}", json=body)
        time.sleep(0.05)
        acknowledged = {
            f"w{n}": client.put(f"/v1/services/web/instances/w{n}/heartbeat").json()[
                "lease_expires_unix"
            ]
            for n in range(5)
        }
    assert proc.stop(signal.SIGTERM) == 0
    again = start(proc.config)
    try:
        kept = {f"w{n}": lease_expires(again, "web", f"w{n}") for n in range(5)}
    finally:
        again.stop()
    assert kept == acknowledged


def test_the_fast_heartbeat_answers_as_the_route_does(
    tmp_path: Path, launch: Callable[..., SrvdnsProcess]
):
    (tmp_path / "token").write_text("s3cret\n")
    fast = launch(server='heartbeat_flush_interval = "1s"\napi_token_file = "token"')
    try:
        with fast.http("s3cret") as client:
            body = {"address": "10.0.0.1", "port": 80, "ttl": "30s", "tags": ["b", "a"]}
            client.put("/v1/services/Web/instances/a", json=body)
            client.put("/v1/services/web/instances/plain", json={"address": "10.0.0.2", "port": 1})
            quick = client.put("/v1/services/WEB/instances/a/heartbeat")  # in memory
            listed = client.get("/v1/services/web").json()["instances"]
            # everything else still gets the application's answers
            missing = client.put("/v1/services/web/instances/nope/heartbeat")
            no_lease = client.put("/v1/services/web/instances/plain/heartbeat")
            bad_name = client.put("/v1/services/we_b/instances/a/heartbeat")
            with_body = client.put("/v1/services/web/instances/a/heartbeat", content=b"{}")
        with fast.http() as anonymous:
            unauthorized = anonymous.put("/v1/services/web/instances/a/heartbeat")
        with fast.http("wrong") as wrong:
            forbidden = wrong.put("/v1/services/web/instances/a/heartbeat")
    finally:
        fast.stop()
    assert quick.status_code == 200
    assert quick.headers["content-type"] == "application/json"
    [stored] = [i for i in listed if i["id"] == "a"]
    reply = quick.json()
    assert set(reply) == set(stored)
    for key in ("lease_remaining", "checks"):  # times move on between the two requests
        reply.pop(key)
        stored.pop(key)
    assert reply == stored
    assert (missing.status_code, no_lease.status_code, bad_name.status_code) == (404, 409, 422)
    assert with_body.status_code == 200
    assert (unauthorized.status_code, forbidden.status_code) == (401, 403)
    assert "error" in unauthorized.json()
