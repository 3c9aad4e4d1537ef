"""Property tests on a real server: random queries, valid and broken, over UDP and TCP.

The asyncio server of ``server.py`` runs on its own thread, bound to 127.0.0.1:0, and
answers from the fixture catalog.  Whatever arrives, it never crashes; every reply
parses with dnspython, carries the query's ID and question, and fits the size allowed.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import dns.message
import dns.opcode
import dns.rcode
import pytest
from dnsframing import frame, read_frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from srvdns.config import ListenAddress
from srvdns.model import Service
from srvdns.nameserver.server import DnsServers, start

from .dnstest import catalog, instance
from .test_handler import handler

UDP_SIZE = 1232
HEADER = struct.Struct("!6H")
SETTINGS = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass
class LiveServer:
    host: str
    port: int
    udp: socket.socket
    tcp: socket.socket | None = None

    def ask_udp(self, wire: bytes, *, expect_reply: bool) -> bytes | None:
        self.udp.sendto(wire, (self.host, self.port))
        if not expect_reply:
            return None
        while True:
            reply, _ = self.udp.recvfrom(65535)
            if reply[:2] == wire[:2]:
                return reply

    def ask_tcp(self, wire: bytes) -> bytes | None:
        """Send ``wire`` and a sentinel query; the reply to ``wire`` comes first, if any."""
        sentinel = sentinel_query(wire)
        if self.tcp is None:
            self.tcp = socket.create_connection((self.host, self.port), timeout=3)
        self.tcp.sendall(frame(wire) + frame(sentinel))
        replies = []
        try:
            while True:
                reply = read_frame(self.tcp)
                if reply is None:  # the server closed a connection that sent junk
                    self.reconnect()
                    return None
                if reply[:2] == sentinel[:2] and reply[12:] == sentinel_reply_tail(sentinel):
                    break
                replies.append(reply)
        except (ConnectionError, TimeoutError):
            self.reconnect()
            return None
        assert len(replies) <= 1
        return replies[0] if replies else None

    def reconnect(self) -> None:
        if self.tcp is not None:
            self.tcp.close()
        self.tcp = None


SENTINEL_NAME = b"\x08sentinel\x07example\x00"


def sentinel_query(wire: bytes) -> bytes:
    """A query outside every zone (REFUSED) with an ID other than ``wire``'s."""
    msg_id = (struct.unpack_from("!H", wire)[0] + 1) % 65536 if len(wire) >= 2 else 1
    return HEADER.pack(msg_id, 0, 1, 0, 0, 0) + SENTINEL_NAME + b"\x00\x01\x00\x01"


def sentinel_reply_tail(sentinel: bytes) -> bytes:
    return SENTINEL_NAME + b"\x00\x01\x00\x01"


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    many = tuple(instance("many", f"many-{n}", f"10.7.0.{n}") for n in range(1, 81))
    snapshot = catalog([Service("many", many)])
    answers = handler(snapshot, version="srvdns test", identity="node-1", edns_udp_size=UDP_SIZE)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    address = ListenAddress(host="127.0.0.1", port=0)
    servers: DnsServers = asyncio.run_coroutine_threadsafe(
        start(answers, [address], idle_timeout=5), loop
    ).result(5)
    host, port = servers.addresses[0]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.settimeout(3)
    server = LiveServer(host, port, udp)
    try:
        yield server
    finally:
        server.reconnect()
        udp.close()
        asyncio.run_coroutine_threadsafe(servers.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


# --- query generators

ZONE_LABELS = [b"service", b"local"]
NAMES = [
    [b"many"],
    [b"web"],
    [b"_web", b"_tcp"],
    [b"primary", b"web"],
    [b"web-1", b"instance", b"web"],
    [b"ns"],
    [],
    [b"nope"],
]


def random_case(data: st.DataObject, label: bytes) -> bytes:
    flips = data.draw(st.lists(st.booleans(), min_size=len(label), max_size=len(label)))
    return bytes(
        c ^ 0x20 if flip and chr(c).isascii() and chr(c).isalpha() else c
        for c, flip in zip(label, flips, strict=True)
    )


@st.composite
def qnames(draw: st.DrawFn) -> list[bytes]:
    kind = draw(st.sampled_from(["known", "under", "outside", "chaos"]))
    if kind == "known":
        labels = [*draw(st.sampled_from(NAMES)), *ZONE_LABELS]
    elif kind == "chaos":
        labels = list(draw(st.sampled_from([(b"version", b"bind"), (b"id", b"server")])))
    else:
        binary = st.binary(min_size=1, max_size=63)
        labels = draw(st.lists(binary, min_size=0 if kind == "outside" else 1, max_size=3))
        if kind == "under":
            labels += ZONE_LABELS
    while sum(len(label) + 1 for label in labels) + 1 > 255:
        labels.pop(0)
    return labels


@st.composite
def valid_queries(draw: st.DrawFn) -> tuple[bytes, int]:
    """(wire, the largest reply allowed over UDP)."""
    data = draw(st.data())
    labels = [random_case(data, label) for label in draw(qnames())]
    qname = b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"
    qtype = draw(
        st.one_of(st.sampled_from([1, 2, 6, 15, 16, 28, 33, 255, 252]), st.integers(0, 65535))
    )
    qclass = draw(st.sampled_from([1, 1, 1, 3, 4, 254, 255, draw(st.integers(0, 65535))]))
    flags = draw(st.sampled_from([0, 0x0100, 0x0110, 0x0130]))  # RD, CD, AD
    edns = draw(st.booleans())
    counts = (1, 0, 0, 1 if edns else 0)
    wire = HEADER.pack(draw(st.integers(0, 65535)), flags, *counts)
    wire += qname + struct.pack("!HH", qtype, qclass)
    limit = 512
    if edns:
        payload = draw(st.integers(0, 65535))
        do = draw(st.booleans())
        wire += b"\x00" + struct.pack("!HHIH", 41, payload, 0x8000 if do else 0, 0)
        limit = min(max(payload, 512), UDP_SIZE)
    return wire, limit


@st.composite
def broken_queries(draw: st.DrawFn) -> bytes:
    wire = bytearray(draw(valid_queries())[0])
    for _ in range(draw(st.integers(0, 4))):
        wire[draw(st.integers(0, len(wire) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        del wire[draw(st.integers(0, len(wire))) :]
    else:
        wire += draw(st.binary(max_size=40))
    return bytes(wire)


# --- checks


def question_of(wire: bytes) -> bytes:
    end = 12
    while wire[end]:
        end += wire[end] + 1
    return wire[12 : end + 5]


def check(wire: bytes, reply: bytes, limit: int, *, valid: bool) -> None:
    assert len(reply) <= limit
    assert reply[:2] == wire[:2], "the ID is the query's"
    assert reply[2] & 0x80, "QR"
    assert reply[3] & 0x0F != dns.rcode.SERVFAIL
    if (reply[2] >> 3) & 0x0F != dns.opcode.UPDATE:  # dnspython reads those as RFC 2136
        message = dns.message.from_wire(reply)
        assert message.id == struct.unpack_from("!H", wire)[0]
    qdcount = HEADER.unpack_from(reply)[2]
    if valid:
        assert qdcount == 1
        assert question_of(reply) == question_of(wire), "the question, octet for octet"
    elif qdcount:
        assert question_of(reply) == question_of(wire)


def gets_reply(wire: bytes) -> bool:
    return len(wire) >= 12 and not wire[2] & 0x80


@SETTINGS
@given(valid_queries())
def test_valid_queries_over_udp(live: LiveServer, case: tuple[bytes, int]) -> None:
    wire, limit = case
    reply = live.ask_udp(wire, expect_reply=True)
    assert reply is not None
    check(wire, reply, limit, valid=True)


@SETTINGS
@given(valid_queries())
def test_valid_queries_over_tcp(live: LiveServer, case: tuple[bytes, int]) -> None:
    wire, _ = case
    reply = live.ask_tcp(wire)
    assert reply is not None
    check(wire, reply, 65535, valid=True)
    assert not reply[2] & 0x02, "TC is never needed over TCP for these"


@SETTINGS
@given(broken_queries())
def test_broken_queries_over_udp(live: LiveServer, wire: bytes) -> None:
    reply = live.ask_udp(wire, expect_reply=gets_reply(wire))
    if reply is not None:
        check(wire, reply, 512 if len(wire) < 12 else UDP_SIZE, valid=False)
    # the server is still there
    sentinel = sentinel_query(b"\x00\x00")
    assert live.ask_udp(sentinel, expect_reply=True) is not None


@SETTINGS
@given(broken_queries())
def test_broken_queries_over_tcp(live: LiveServer, wire: bytes) -> None:
    reply = live.ask_tcp(wire)
    if reply is not None:
        check(wire, reply, 65535, valid=False)
    else:
        assert not gets_reply(wire) or len(wire) < 12
