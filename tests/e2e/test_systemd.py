"""srvdns under systemd's protocols: sd_notify, the watchdog, socket activation, unit files."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import httpx
import pytest
from e2e.harness import (
    free_port,
    socket_activate,
    socket_activated,
    srvdns_command,
    start,
    wait_for,
    write_config,
)


def _receive(sock: socket.socket, timeout: float) -> list[str]:
    """Every notification that arrives within ``timeout`` seconds."""
    messages: list[str] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            break
    return messages


def _wait_message(sock: socket.socket, wanted: str, timeout: float = 10) -> list[str]:
    """Notifications up to and including one that contains ``wanted``."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while wanted not in "\n".join(seen):
        left = deadline - time.monotonic()
        assert left > 0, f"no {wanted} within {timeout}s: {seen}"
        sock.settimeout(left)
        seen.append(sock.recv(4096).decode())
    return seen


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_sd_notify_ready_watchdog_stopping(tmp_path: Path, abstract: bool) -> None:
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = f"srvdns-test-{os.getpid()}-{time.monotonic_ns()}"
        notify.bind("\0" + name)
        address = "@" + name
    else:
        address = str(tmp_path / "notify")
        notify.bind(address)
    with notify:
        server = start(
            write_config(tmp_path),
            env={"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "200000"},
        )
        try:
            messages = _wait_message(notify, "READY=1")
            # READY=1 comes once DNS and the API listen and the snapshot is loaded
            assert server.query("x.service.local", "A").rcode() == dns.rcode.NXDOMAIN
            with server.http() as http:
                assert http.get("/readyz").status_code == 200
            later = _receive(notify, 0.5)
            assert sum("WATCHDOG=1" in m for m in messages + later) >= 3  # every 100 ms

            server.process.send_signal(signal.SIGHUP)
            reload = _wait_message(notify, "RELOADING=1")
            assert "MONOTONIC_USEC=" in reload[-1]
            _wait_message(notify, "READY=1")

            server.process.send_signal(signal.SIGTERM)
            _wait_message(notify, "STOPPING=1")
        finally:
            assert server.stop() == 0


def test_socket_activation_tcp_dns_and_api(tmp_path: Path) -> None:
    """One systemd-socket-activate hands over a TCP socket for DNS and one for the API
    (it listens on stream sockets only, or with --datagram on datagram sockets only)."""
    dns_port, api_port = free_port(), free_port()
    config = write_config(tmp_path)  # its port-0 listen addresses are not used
    process = subprocess.Popen(
        [
            socket_activate(),
            f"--listen=127.0.0.1:{dns_port}",
            f"--listen=127.0.0.1:{api_port}",
            "--fdname=dns:api",
            *srvdns_command(),
            "serve",
            "-c",
            str(config),
        ],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.2)  # systemd-socket-activate listens; srvdns starts on the first connection
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=20) as http:
            # the first connection starts srvdns; it is ready once everything is bound
            deadline = time.monotonic() + 15
            while (ready := http.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, ready.text
                time.sleep(0.05)
            put = http.put(
                "/v1/services/web/instances/w1", json={"address": "10.0.0.7", "port": 80}
            )
            assert put.status_code in (200, 201), put.text
        query = dns.message.make_query("web.service.local", dns.rdatatype.A)
        reply = dns.query.tcp(query, "127.0.0.1", port=dns_port, timeout=5)
        assert [r.to_text() for rr in reply.answer for r in rr] == ["10.0.0.7"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None
        log = process.stderr.read()
        process.stderr.close()
    assert f"dns listening on 127.0.0.1:{dns_port}" in log
    assert f"api listening on http://127.0.0.1:{api_port}" in log


def test_socket_activation_udp_tcp_and_api(tmp_path: Path) -> None:
    """UDP and TCP DNS and the API in one process, as srvdns.socket and srvdns-api.socket
    hand them over.  One systemd-socket-activate listens on stream or (--datagram) on
    datagram sockets only, but it passes on the sockets it was handed itself: an outer
    one with the UDP socket runs an inner one with the TCP sockets, which runs srvdns."""
    dns_port = free_port()
    api_port = free_port()
    process = subprocess.Popen(
        socket_activated(dns_port, api_port, ["serve", "-c", str(write_config(tmp_path))]),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.2)
        query = dns.message.make_query("version.bind", dns.rdatatype.TXT, rdclass="CH")
        replies: list[dns.message.Message] = []

        def answered() -> bool:
            try:
                replies.append(dns.query.udp(query, "127.0.0.1", port=dns_port, timeout=0.5))
            except dns.exception.Timeout:
                return False
            return True

        wait_for(answered, timeout=20)  # the first datagram starts both, then srvdns
        assert replies[0].rcode() == dns.rcode.NOERROR
        assert "srvdns" in replies[0].answer[0].to_text()
        reply = dns.query.tcp(query, "127.0.0.1", port=dns_port, timeout=5)
        assert reply.answer == replies[0].answer
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=10) as http:
            assert http.get("/readyz").status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None
        log = process.stderr.read()
        process.stderr.close()
    assert log.count("dns listening on") == 1, log


def test_socket_activation_rejects_an_unnamed_socket(tmp_path: Path) -> None:
    port = free_port()
    config = str(write_config(tmp_path))
    process = subprocess.Popen(
        [socket_activate(), f"--listen=127.0.0.1:{port}", *srvdns_command(), "serve", "-c", config],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.2)
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        status = process.wait(timeout=20)
    assert process.stderr is not None
    log = process.stderr.read()
    process.stderr.close()
    assert status == 1
    assert "FileDescriptorName=" in log
