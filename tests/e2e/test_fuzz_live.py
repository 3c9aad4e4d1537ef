"""Fuzzing a real ``srvdns serve`` over UDP and TCP with random and mutated messages.

Every message of at least a header that is not a response gets a reply that parses,
with the query's ID and question; between fuzzed messages a valid query keeps getting
its answer; at the end the process is alive and its log holds no traceback or error.
"""

from __future__ import annotations

import random
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import dns.message
import dns.rcode
import dnsmutate
import pytest
from e2e.harness import SrvdnsProcess, start, write_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SEEDS = dnsmutate.corpus()
WEB_A = dnsmutate.make_query("web.service.local", 1, msg_id=0xBEEF)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SrvdnsProcess]:
    directory: Path = tmp_path_factory.mktemp("fuzz")
    proc = start(write_config(directory, server='version = "fuzz"\nidentity = "fuzz-1"\n'))
    try:
        with proc.http() as api:
            for n in (1, 2):
                body = {"address": f"10.0.0.{n}", "port": 80, "tags": ["v2"]}
                api.put(f"/v1/services/web/instances/web-{n}", json=body).raise_for_status()
        yield proc
        assert proc.process.poll() is None, "srvdns died:\n" + "\n".join(proc.log)
    finally:
        status = proc.stop()
    problems = [line for line in proc.log if "Traceback" in line or " ERROR " in line]
    assert not problems, "\n".join(proc.log)
    assert status == 0


@pytest.fixture(scope="module")
def udp(server: SrvdnsProcess) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(3)
    sock.connect((server.host, server.port))
    yield sock
    sock.close()


def exchange_udp(sock: socket.socket, wire: bytes) -> bytes | None:
    """Send ``wire``, then the valid query; the reply to ``wire`` (if any) comes first,
    as the server answers a socket's datagrams in order."""
    sock.send(wire)
    sock.send(WEB_A)
    first = sock.recv(65535)
    if first[:2] == WEB_A[:2]:
        check_web(first)
        return None
    second = sock.recv(65535)
    check_web(second)
    return first


def check_web(reply: bytes) -> None:
    message = dns.message.from_wire(reply)
    assert message.id == 0xBEEF
    assert message.rcode() == dns.rcode.NOERROR
    addresses = sorted(rdata.address for rrset in message.answer for rdata in rrset)
    assert addresses == ["10.0.0.1", "10.0.0.2"]


def frame(wire: bytes) -> bytes:
    return struct.pack("!H", len(wire)) + wire


def read_frame(stream: BinaryIO) -> bytes | None:
    prefix = stream.read(2)
    if len(prefix) < 2:
        return None
    data = stream.read(struct.unpack("!H", prefix)[0])
    assert data is not None
    return data


def exchange_tcp(server: SrvdnsProcess, wire: bytes) -> bytes | None:
    """On a new connection: ``wire`` then the valid query, answered in order.  A frame
    shorter than a header ends the connection (no reply to either)."""
    with socket.create_connection((server.host, server.port), timeout=3) as sock:
        sock.sendall(frame(wire) + frame(WEB_A))
        stream = sock.makefile("rb")
        first = read_frame(stream)
        if len(wire) < 12:
            assert first is None
            return None
        assert first is not None
        if not dnsmutate.expects_reply(wire):
            check_web(first)
            return None
        second = read_frame(stream)
        assert second is not None
        check_web(second)
        return first


def check(wire: bytes, reply: bytes | None) -> None:
    if reply is None:
        assert not dnsmutate.expects_reply(wire)
        return
    assert dnsmutate.expects_reply(wire)
    problem = dnsmutate.reply_problem(wire, reply)
    assert problem is None, f"{problem}: {wire.hex()} -> {reply.hex()}"
    assert reply[3] & 0x0F != dns.rcode.SERVFAIL


def fuzzed(seed: int) -> bytes:
    wire = dnsmutate.mutate(random.Random(seed), SEEDS)
    return dnsmutate.with_id(wire, 0x1234)  # never the valid query's ID


@SETTINGS
@given(seed=st.integers(0, 2**64 - 1))
def test_mutated_over_udp(udp: socket.socket, seed: int) -> None:
    wire = fuzzed(seed)
    check(wire, exchange_udp(udp, wire))


@SETTINGS
@given(wire=st.binary(max_size=300))
def test_random_bytes_over_udp(udp: socket.socket, wire: bytes) -> None:
    wire = dnsmutate.with_id(wire, 0x1234)
    check(wire, exchange_udp(udp, wire))


@SETTINGS
@given(seed=st.integers(0, 2**64 - 1))
def test_mutated_over_tcp(server: SrvdnsProcess, seed: int) -> None:
    wire = fuzzed(seed)
    check(wire, exchange_tcp(server, wire))


def test_dig_still_gets_answers(server: SrvdnsProcess, dig: str) -> None:
    for tcp in ("+notcp", "+tcp"):
        out = server.dig("web.service.local", "A", "+short", tcp)
        assert sorted(out.split()) == ["10.0.0.1", "10.0.0.2"]
