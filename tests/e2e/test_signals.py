"""SIGTERM and SIGHUP on a real srvdns process: graceful stop and config reload."""

from __future__ import annotations

import json
import signal
import socket
import struct
import threading
import time
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype
import httpx
from e2e.harness import SrvdnsProcess, start, wait_for, write_config


def _tcp_query(sock: socket.socket, qname: str) -> None:
    wire = dns.message.make_query(qname, dns.rdatatype.A).to_wire()
    sock.sendall(struct.pack("!H", len(wire)) + wire)


def _tcp_reply(sock: socket.socket) -> dns.message.Message:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed before the reply")
            data += chunk
        return data

    (length,) = struct.unpack("!H", exactly(2))
    return dns.message.from_wire(exactly(length))


def test_sigterm_finishes_in_flight_work_and_exits_0(srvdns: SrvdnsProcess) -> None:
    with srvdns.http() as http:
        r = http.put("/v1/services/web/instances/w1", json={"address": "10.0.0.1", "port": 80})
        assert r.status_code in (200, 201), r.text
        index = http.get("/v1/services").json()["index"]

    watch: dict[str, object] = {}

    def blocking_query() -> None:
        with httpx.Client(base_url=srvdns.api, timeout=30) as client:
            reply = client.get("/v1/services", params={"index": index, "wait": "60s"})
            watch["status"] = reply.status_code
            watch["body"] = reply.json()

    watcher = threading.Thread(target=blocking_query)
    watcher.start()
    time.sleep(0.5)  # the blocking query is in flight
    assert watcher.is_alive()

    with socket.create_connection(srvdns.dns[0], timeout=5) as conn:
        _tcp_query(conn, "web.service.local")
        srvdns.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        reply = _tcp_reply(conn)  # the query sent before the signal is answered
        assert reply.rcode() == dns.rcode.NOERROR
        watcher.join(timeout=10)
        assert not watcher.is_alive()
        assert watch["status"] == 200  # the in-flight API request completed
        assert srvdns.process.wait(timeout=10) == 0
    assert time.monotonic() - signalled < 10
    assert any("shutting down" in line for line in srvdns.log)
    assert not any("Traceback" in line for line in srvdns.log), "\n".join(srvdns.log)


ZONES = """\
[[zone]]
name = "service.local"
ttl = {ttl}

[[zone.service]]
name = "db"
instances = [{{ address = "{address}", port = 5432 }}]
"""


def _write(path: Path, ttl: int, address: str) -> None:
    text = path.read_text()
    head = text.split("[[zone]]")[0]
    path.write_text(head + ZONES.format(ttl=ttl, address=address))


def test_sighup_reloads_config_without_dropping_a_query(tmp_path: Path) -> None:
    config = write_config(tmp_path, ZONES.format(ttl=5, address="10.0.0.5"))
    server = start(config)
    try:
        first = server.query("db.service.local", "A")
        assert [(rr.ttl, [r.to_text() for r in rr]) for rr in first.answer] == [(5, ["10.0.0.5"])]

        failures: list[str] = []
        answered = 0
        done = threading.Event()

        def query_loop() -> None:
            nonlocal answered
            while not done.is_set():
                try:
                    reply = server.query("db.service.local", "A", tcp=answered % 2 == 1)
                    if reply.rcode() != dns.rcode.NOERROR or not reply.answer:
                        failures.append(dns.rcode.to_text(reply.rcode()))
                except Exception as exc:
                    failures.append(repr(exc))
                answered += 1

        loop = threading.Thread(target=query_loop)
        loop.start()
        try:
            time.sleep(0.2)
            _write(config, ttl=17, address="10.0.0.6")
            server.process.send_signal(signal.SIGHUP)

            def reloaded() -> bool:
                reply = server.query("db.service.local", "A")
                return [(rr.ttl, [r.to_text() for r in rr]) for rr in reply.answer] == [
                    (17, ["10.0.0.6"])
                ]

            wait_for(reloaded, timeout=5)
            time.sleep(0.2)
        finally:
            done.set()
            loop.join(timeout=10)
        assert answered > 10
        assert failures == []
        assert any("reloaded" in line for line in server.log), "\n".join(server.log)

        # a broken config is refused: the error is logged and the old config stays
        config.write_text(config.read_text().replace("ttl = 17", 'ttl = "soon"'))
        server.process.send_signal(signal.SIGHUP)
        wait_for(lambda: any("reload failed" in line for line in server.log), timeout=5)
        assert any("ttl" in line for line in server.log if "reload failed" in line)
        assert server.process.poll() is None
        assert reloaded_answer(server) == [(17, ["10.0.0.6"])]
    finally:
        assert server.stop() == 0


def reloaded_answer(server: SrvdnsProcess) -> list[tuple[int, list[str]]]:
    reply = server.query("db.service.local", "A")
    return [(rr.ttl, [r.to_text() for r in rr]) for rr in reply.answer]


def test_readyz_and_json_logs(tmp_path: Path) -> None:
    server = start(write_config(tmp_path), args=("--log-format", "json"))
    try:
        with server.http() as http:
            assert http.get("/healthz").status_code == 200
            ready = http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {
            "status": "ready",
            "checks": {"listeners": "ok", "snapshot": "ok", "database": "ok"},
        }
    finally:
        assert server.stop() == 0
    entries = [json.loads(line) for line in server.log]
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    messages = [e["message"] for e in entries]
    assert any(m.startswith("api listening on http://") for m in messages)
    assert "shutting down" in messages
