"""Protocol edges against a real srvdns: TCP (RFC 7766), CHAOS, TC and the UDP answer limit."""

from __future__ import annotations

import random
import socket
import time

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest
from dnsframing import closed_by_server, frame, read_frame
from e2e.harness import SrvdnsProcess, wait_for
from e2e.zones import BIG_AND_SMALL as ZONE

from srvdns import __version__


def read_reply(sock: socket.socket) -> dns.message.Message | None:
    """The next framed reply, or None when the server closed or reset the connection."""
    try:
        body = read_frame(sock)
    except ConnectionResetError:
        return None
    return None if body is None else dns.message.from_wire(body)


def connect(server: SrvdnsProcess) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=3)


def ask(sock: socket.socket, qname: str, msg_id: int) -> dns.message.Message | None:
    query = dns.message.make_query(qname, "SRV")
    query.id = msg_id
    sock.sendall(frame(query.to_wire()))
    return read_reply(sock)


@pytest.fixture
def server(launch) -> SrvdnsProcess:  # type: ignore[no-untyped-def]
    return launch(ZONE, server='tcp_idle_timeout = "3s"\ntcp_max_connections = 3\n')


def test_rfc7766_6_2_1_1_pipelined_queries_matched_by_id(server: SrvdnsProcess) -> None:
    rng = random.Random(5)
    names = ["big.service.local", "small.service.local", "nope.service.local", "example.org"]
    asked = {msg_id: rng.choice(names) for msg_id in rng.sample(range(65536), 60)}
    with connect(server) as sock:
        batch = b""
        for msg_id, qname in asked.items():
            query = dns.message.make_query(qname, "SRV")
            query.id = msg_id
            batch += frame(query.to_wire())
        sock.sendall(batch)
        for _ in range(len(asked)):
            reply = read_reply(sock)
            assert reply is not None
            qname = asked.pop(reply.id)
            assert reply.question[0].name.to_text() == f"{qname}."
            if qname == "big.service.local":
                assert len(reply.answer[0]) == 30, "TCP gets the whole answer"
    assert not asked


def test_rfc7766_6_2_2_the_longest_idle_connection_makes_room(server: SrvdnsProcess) -> None:
    first, second, third = connect(server), connect(server), connect(server)
    try:
        for n, sock in enumerate((first, second, third)):
            assert ask(sock, "small.service.local", n) is not None
            time.sleep(0.05)
        assert ask(first, "small.service.local", 10) is not None  # second: longest idle
        with connect(server) as fourth:
            reply = ask(fourth, "small.service.local", 11)
            assert reply is not None
            assert reply.rcode() == dns.rcode.NOERROR
            assert closed_by_server(second)
            for n, sock in enumerate((first, third, fourth)):
                reply = ask(sock, "small.service.local", 20 + n)
                assert reply is not None
                assert reply.id == 20 + n
    finally:
        for sock in (first, second, third):
            sock.close()


def test_rfc7766_6_2_3_idle_timeout(launch) -> None:  # type: ignore[no-untyped-def]
    proc = launch(ZONE, server='tcp_idle_timeout = "300ms"\n')
    with connect(proc) as sock:
        assert ask(sock, "small.service.local", 1) is not None
        started = time.monotonic()
        assert closed_by_server(sock)
        assert 0.2 < time.monotonic() - started < 2.5


def test_stalled_clients_do_not_block_others(launch) -> None:  # type: ignore[no-untyped-def]
    proc = launch(ZONE, server='tcp_idle_timeout = "1s"\n')
    stalled = [connect(proc) for _ in range(2)]
    try:
        stalled[0].sendall(b"\x00")  # half a length prefix
        stalled[1].sendall(frame(dns.message.make_query("small.service.local", "A").to_wire())[:10])
        for tcp in (False, True, False, True):
            reply = proc.query("small.service.local", "A", tcp=tcp)
            assert reply.rcode() == dns.rcode.NOERROR
        for sock in stalled:
            assert not closed_by_server(sock, timeout=0.01), "still waiting for the rest"
        for sock in stalled:
            assert closed_by_server(sock, timeout=3)
    finally:
        for sock in stalled:
            sock.close()


def test_chaos_version_bind_with_dig(launch, dig: str) -> None:  # type: ignore[no-untyped-def]
    proc = launch(ZONE, server='identity = "node-a"\n')
    out = proc.dig("CH", "TXT", "version.bind")
    assert "status: NOERROR" in out
    assert out.split("flags:")[1].split(";")[0].split() == ["qr", "rd"], "no AA, like NSD"
    assert f'version.bind.\t\t0\tCH\tTXT\t"srvdns {__version__}"' in out
    out = proc.dig("CH", "TXT", "ID.Server")
    assert 'ID.Server.\t\t0\tCH\tTXT\t"node-a"' in out
    assert "status: REFUSED" in proc.dig("CH", "TXT", "authors.bind")
    assert "status: REFUSED" in proc.dig("CH", "A", "version.bind")


def test_chaos_refused_when_switched_off(launch, dig: str) -> None:  # type: ignore[no-untyped-def]
    proc = launch(ZONE, server="version = false\n")
    assert "status: REFUSED" in proc.dig("CH", "TXT", "version.server")
    assert "status: REFUSED" in proc.dig("CH", "TXT", "hostname.bind")  # identity is off


def test_tc_then_dig_retries_over_tcp(server: SrvdnsProcess, dig: str) -> None:
    reply = server.query("big.service.local", "SRV")
    assert reply.flags & dns.flags.TC
    assert not reply.answer
    out = server.dig("big.service.local", "SRV", "+noedns")
    assert "Truncated, retrying in TCP mode." in out
    assert "ANSWER: 30" in out


def test_udp_answer_limit(launch) -> None:  # type: ignore[no-untyped-def]
    proc = launch(ZONE, server="udp_answer_limit = 3\n")
    seen = set()
    for _ in range(10):
        reply = proc.query("big.service.local", "SRV")
        assert not reply.flags & dns.flags.TC
        (rrset,) = reply.answer
        assert len(rrset) == 3
        targets = {r.target for r in rrset}
        assert {a.name for a in reply.additional} == targets
        seen.add(frozenset(targets))
    assert len(seen) > 1, "a random subset each time"
    a = proc.query("big.service.local", "A")
    assert len(a.answer[0]) == 3
    full = proc.query("big.service.local", "SRV", tcp=True)
    assert len(full.answer[0]) == 30
    wait_for(lambda: proc.process.poll() is None)
