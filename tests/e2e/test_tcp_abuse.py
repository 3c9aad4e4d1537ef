"""TCP abuse against a real srvdns: slowloris clients, oversized or lying length
prefixes, half-open and reset connections, clients that never read, and more idle
connections than ``tcp_max_connections`` (also under a low open-file limit).

Throughout, other clients over UDP and TCP keep getting right answers within a second
(the query timeout), and the server log stays free of tracebacks and errors.
"""

from __future__ import annotations

import concurrent.futures
import shutil
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest
from dnsframing import closed_by_server, frame
from e2e.harness import SrvdnsProcess, start, wait_for, write_config
from e2e.zones import BIG_AND_SMALL as ZONE

MAX_CONNECTIONS = 10
SERVER = f'tcp_idle_timeout = "1s"\ntcp_max_connections = {MAX_CONNECTIONS}\n'
PROMPT = 1.0
"""Seconds a bystander's query may take: far below the idle timeout abusers play with."""


def query(qname: str = "small.service.local", rdtype: str = "A") -> dns.message.Message:
    return dns.message.make_query(qname, rdtype)


def read_reply(stream: socket.SocketIO | object) -> dns.message.Message | None:
    """The next framed reply on a buffered reader, or None at EOF or reset."""
    assert hasattr(stream, "read")
    try:
        prefix = stream.read(2)
        if len(prefix) < 2:
            return None
        body = stream.read(struct.unpack("!H", prefix)[0])
    except ConnectionResetError:
        return None
    return dns.message.from_wire(body)


def connect(proc: SrvdnsProcess) -> socket.socket:
    return socket.create_connection((proc.host, proc.port), timeout=3)


def bystander(proc: SrvdnsProcess) -> None:
    """One query over UDP and one over TCP (a new connection), each answered promptly."""
    for ask in (dns.query.udp, dns.query.tcp):
        reply = ask(query(), proc.host, port=proc.port, timeout=PROMPT)
        assert reply.rcode() == dns.rcode.NOERROR
        assert [rdata.address for rrset in reply.answer for rdata in rrset] == ["10.8.0.1"]


def bystanders_for(proc: SrvdnsProcess, seconds: float) -> int:
    """Keep asking for ``seconds`` (past the idle timeout the abusers play with)."""
    rounds = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        bystander(proc)
        rounds += 1
        time.sleep(0.05)
    return rounds


def clean_log(proc: SrvdnsProcess) -> None:
    assert proc.process.poll() is None, "srvdns is running"
    problems = [
        line
        for line in proc.log
        if "Traceback" in line or " ERROR " in line or "Too many open files" in line
    ]
    assert not problems, "\n".join(proc.log)


@pytest.fixture
def proc(launch: Callable[..., SrvdnsProcess]) -> SrvdnsProcess:
    return launch(ZONE, server=SERVER)


@contextmanager
def dribbling(sockets: list[socket.socket], data: bytes, interval: float) -> Iterator[None]:
    """Send ``data`` one octet at a time on every socket, every ``interval`` seconds,
    in a thread, until the block ends."""
    stop = threading.Event()

    def run() -> None:
        for octet in data:
            for sock in sockets:
                try:
                    sock.send(bytes([octet]))
                except OSError:
                    continue
            if stop.wait(interval):
                return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def test_slowloris_clients_are_cut_off_and_others_answered(proc: SrvdnsProcess) -> None:
    """More slowloris clients than the cap, each sending a query one octet every 100 ms,
    never finishing within the idle timeout: each is closed, nobody else waits."""
    slow = [connect(proc) for _ in range(MAX_CONNECTIONS + 5)]
    try:
        with dribbling(slow, frame(query().to_wire()) * 10, 0.1):
            assert bystanders_for(proc, 2.5) > 3
        for sock in slow:
            assert closed_by_server(sock)
    finally:
        for sock in slow:
            sock.close()
    bystander(proc)
    clean_log(proc)


def test_oversized_length_prefix_that_never_fills(proc: SrvdnsProcess) -> None:
    """A 65535-octet frame of which 1000 octets come: closed after the idle timeout."""
    with connect(proc) as sock:
        sock.sendall(b"\xff\xff" + b"\x00" * 1000)
        bystanders_for(proc, 0.3)
        assert closed_by_server(sock)
    clean_log(proc)


def test_full_size_junk_frame_then_a_query(proc: SrvdnsProcess) -> None:
    """A 65535-octet frame of junk gets FORMERR; the same connection goes on."""
    junk = struct.pack("!6H", 0x0BAD, 0, 0, 0, 0, 0) + b"\xff" * (65535 - 12)
    valid = query()
    valid.id = 0x600D
    with connect(proc) as sock, sock.makefile("rb") as stream:
        sock.sendall(frame(junk) + frame(valid.to_wire()))
        first = read_reply(stream)
        assert first is not None
        assert (first.id, first.rcode()) == (0x0BAD, dns.rcode.FORMERR)
        second = read_reply(stream)
        assert second is not None
        assert (second.id, second.rcode()) == (0x600D, dns.rcode.NOERROR)
    bystander(proc)
    clean_log(proc)


@pytest.mark.parametrize("length", [0, 1, 11])
def test_length_prefix_below_a_header_ends_the_connection(proc: SrvdnsProcess, length: int) -> None:
    valid = frame(query().to_wire())
    with connect(proc) as sock, sock.makefile("rb") as stream:
        sock.sendall(struct.pack("!H", length) + b"\x00" * length + valid)
        assert read_reply(stream) is None, "no reply: the stream is out of step"
    bystander(proc)
    clean_log(proc)


def test_length_prefix_longer_than_what_comes_before_eof(proc: SrvdnsProcess) -> None:
    """The prefix claims more than the query; the client sends a FIN: no reply, closed."""
    wire = query().to_wire()
    with connect(proc) as sock, sock.makefile("rb") as stream:
        sock.sendall(struct.pack("!H", len(wire) + 50) + wire)
        sock.shutdown(socket.SHUT_WR)
        assert read_reply(stream) is None
    bystander(proc)
    clean_log(proc)


def test_half_closed_client_gets_its_replies(proc: SrvdnsProcess) -> None:
    """Queries then a FIN (half-close, RFC 7766 §6.2.4): every reply, then the close."""
    queries = [query(qname) for qname in ("small.service.local", "big.service.local")]
    with connect(proc) as sock, sock.makefile("rb") as stream:
        sock.sendall(b"".join(frame(q.to_wire()) for q in queries))
        sock.shutdown(socket.SHUT_WR)
        for sent in queries:
            reply = read_reply(stream)
            assert reply is not None
            assert reply.id == sent.id
            assert reply.rcode() == dns.rcode.NOERROR
        assert read_reply(stream) is None
    clean_log(proc)


def test_half_a_query_then_fin(proc: SrvdnsProcess) -> None:
    wire = frame(query().to_wire())
    with connect(proc) as sock, sock.makefile("rb") as stream:
        sock.sendall(wire[: len(wire) // 2])
        sock.shutdown(socket.SHUT_WR)
        assert read_reply(stream) is None
    bystander(proc)
    clean_log(proc)


def test_reset_in_the_middle_of_replies(proc: SrvdnsProcess) -> None:
    """Pipelined queries for a large answer, then a reset before reading any reply."""
    batch = frame(query("big.service.local", "SRV").to_wire()) * 200
    for _ in range(5):
        sock = connect(proc)
        sock.sendall(batch)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    bystander(proc)
    clean_log(proc)


def test_client_that_never_reads_is_dropped(proc: SrvdnsProcess) -> None:
    """10,000 queries for 2 KB answers, never reading: once the socket buffers fill,
    the server waits the idle timeout for the client to read, then drops it."""
    big = query("big.service.local", "SRV")
    reply_size = len(dns.query.tcp(big, proc.host, port=proc.port, timeout=PROMPT).to_wire())
    batch = frame(big.to_wire()) * 10_000
    with connect(proc) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sender = threading.Thread(target=lambda: _send_quietly(sock, batch), daemon=True)
        sender.start()
        bystanders_for(proc, 1.5)
        received = 0
        sock.settimeout(5)
        try:
            while chunk := sock.recv(65536):
                received += len(chunk)
        except ConnectionResetError:
            pass
        sender.join(5)
        assert received < 10_000 * (2 + reply_size), "dropped before every reply was sent"
    bystander(proc)
    clean_log(proc)


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    with suppress(OSError):
        sock.sendall(data)


def test_idle_connections_beyond_the_cap(proc: SrvdnsProcess) -> None:
    """Three times the cap of idle connections: the oldest make room, and others get
    answers over UDP and TCP all along."""
    idle: list[socket.socket] = []
    try:
        for _ in range(3 * MAX_CONNECTIONS):
            idle.append(connect(proc))
            bystander(proc)
        closed = [sock for sock in idle if closed_by_server(sock, timeout=0.05)]
        assert len(closed) >= 2 * MAX_CONNECTIONS
        assert idle[0] in closed
    finally:
        for sock in idle:
            sock.close()
    clean_log(proc)


def test_many_connections_under_a_low_open_file_limit(tmp_path: Path) -> None:
    """With 200 open files allowed and the default cap of 1000 connections, 400
    connections do not exhaust the descriptors: the cap shrinks to fit, with a warning,
    and DNS over TCP, UDP and the API keep working."""
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        pytest.fail("prlimit is not installed (Debian package util-linux)")
    proc = start(write_config(tmp_path, ZONE), prefix=(prlimit, "--nofile=200"))
    held: list[socket.socket] = []
    try:
        with concurrent.futures.ThreadPoolExecutor(30) as pool:
            held.extend(pool.map(lambda _: connect(proc), range(400)))
        for _ in range(5):
            bystander(proc)
        with proc.http() as api:
            assert api.get("/v1/services").status_code == 200
        wait_for(lambda: any("does not fit the open-file limit" in line for line in proc.log))
        clean_log(proc)
    finally:
        for sock in held:
            sock.close()
        proc.stop()
