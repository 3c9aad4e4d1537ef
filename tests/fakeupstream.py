"""A tiny upstream DNS server for forwarding tests: UDP and TCP on one port, in threads.

In-process: ``with FakeUpstream() as up: up.port``.  As a program (for end-to-end tests):
``python tests/fakeupstream.py HOST PORT`` prints ``ready`` once it listens.

Names: ``www.example.test`` A 192.0.2.1 (TTL 300), ``short.example.test`` A 192.0.2.2
(TTL 1), ``big.example.test`` 60 A records (too large for 512 octets); anything else is
NXDOMAIN with an SOA (TTL 60, minimum 30).  ``mode``: "answer", "servfail", "silent" (no
reply) or "truncate" (TC over UDP, the full answer over TCP).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import sys
import threading
from types import TracebackType

from dnslib import QTYPE, RCODE, RR, SOA, A, DNSRecord  # type: ignore[import-untyped]

RECORDS: dict[str, list[RR]] = {
    "www.example.test.": [RR("www.example.test", QTYPE.A, rdata=A("192.0.2.1"), ttl=300)],
    "short.example.test.": [RR("short.example.test", QTYPE.A, rdata=A("192.0.2.2"), ttl=1)],
    "big.example.test.": [
        RR("big.example.test", QTYPE.A, rdata=A(f"198.51.100.{i}"), ttl=300) for i in range(60)
    ],
}
SOA_RR = RR(
    "example.test",
    QTYPE.SOA,
    rdata=SOA("ns.example.test", "admin.example.test", (1, 3600, 600, 86400, 30)),
    ttl=60,
)


class FakeUpstream:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, mode: str = "answer") -> None:
        self.mode = mode
        self.udp_queries = 0
        self.tcp_queries = 0
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((host, port))
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((host, self.port))
        self.tcp.listen(16)
        self._stop = False
        self._threads = [
            threading.Thread(target=self._serve_udp, daemon=True),
            threading.Thread(target=self._serve_tcp, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def queries(self) -> int:
        return self.udp_queries + self.tcp_queries

    def reply(self, data: bytes, *, tcp: bool) -> bytes | None:
        query = DNSRecord.parse(data)
        if self.mode == "silent":
            return None
        reply = query.reply()  # QR, RD copied, RA, AA
        if self.mode == "servfail":
            reply.header.rcode = RCODE.SERVFAIL
            return bytes(reply.pack())
        name = str(query.q.qname).lower()
        records = RECORDS.get(name)
        if records is None:
            reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(SOA_RR)
        elif query.q.qtype in (QTYPE.A, QTYPE.ANY):
            for rr in records:
                reply.add_answer(rr)
        else:
            reply.add_auth(SOA_RR)
        if not tcp and (self.mode == "truncate" or len(reply.pack()) > 512):
            reply = query.reply()
            reply.header.tc = 1
        return bytes(reply.pack())

    def _serve_udp(self) -> None:
        while not self._stop:
            try:
                data, addr = self.udp.recvfrom(65535)
            except OSError:
                return
            self.udp_queries += 1
            try:
                answer = self.reply(data, tcp=False)
            except Exception:
                continue
            if answer is not None:
                self.udp.sendto(answer, addr)

    def _serve_tcp(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            threading.Thread(target=self._tcp_conn, args=(conn,), daemon=True).start()

    def _tcp_conn(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    prefix = _recv_exactly(conn, 2)
                    data = _recv_exactly(conn, struct.unpack("!H", prefix)[0])
                except OSError:
                    return
                self.tcp_queries += 1
                answer = self.reply(data, tcp=True)
                if answer is None:
                    continue
                conn.sendall(struct.pack("!H", len(answer)) + answer)

    def close(self) -> None:
        self._stop = True
        for sock in (self.udp, self.tcp):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def __enter__(self) -> FakeUpstream:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    out = b""
    while len(out) < size:
        chunk = conn.recv(size - len(out))
        if not chunk:
            raise OSError("closed")
        out += chunk
    return out


if __name__ == "__main__":
    server = FakeUpstream(sys.argv[1], int(sys.argv[2]))
    print("ready", server.port, flush=True)
    threading.Event().wait()
