"""Fuzz a live ``srvdns serve`` with random and mutated DNS messages over UDP and TCP.

    python bench/fuzz_dns.py [--packets 1000000] [--max-seconds 900] [--tcp-share 0.2]
                             [--forward]

Everything runs on loopback and stops by itself after ``--packets`` messages or
``--max-seconds``, whichever comes first.  It starts ``srvdns serve`` on free ports with
its log in a temporary directory, registers a few instances through the HTTP API, and
sends messages built by ``tests/dnsmutate.py``: a corpus of valid queries (every name
form, common types, EDNS with and without options, CHAOS) put through bit flips, byte
overwrites, truncations, label and compression-pointer tricks, section counts that
disagree with the sections, extra records, OPT variants, splices and plain garbage.
Every 50th message of each stream is a valid query whose answer must stay the one it
got before the fuzzing began (rcode and answer RRset, TTLs aside).  With ``--forward``
srvdns forwards names outside its zone to a loopback upstream (``EchoUpstream``), so
that the fuzzed messages it can read go down the forwarding path too.

Each reply must parse with dnspython and carry the query's ID, opcode and question
(``dnsmutate.reply_problem``); every message of at least a header with QR clear must
get a reply (over UDP, one still missing after ``--timeout`` counts as lost).  At the
end the server must still be running, stop cleanly on SIGTERM, and its log must hold
no traceback and no error.  Prints the counts; exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import random
import re
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.rcode
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import dnsmutate
from dnsframing import read_frame

_DNS_LINE = re.compile(r"dns listening on \[?([0-9a-f.:]+?)\]?:(\d+) ")
_API_LINE = re.compile(r"api listening on (http://\S+)")
_LOG_PROBLEM = re.compile(r"Traceback|\b(ERROR|CRITICAL|WARNING)\b|[Ee]xception|[Uu]nhandled")
VALID_EVERY = 50
WINDOW = 48
"""UDP messages in flight at once."""

INSTANCES = (
    ("web", "web-1", "10.0.0.1", ["v2"]),
    ("web", "web-2", "10.0.0.2", ["v1"]),
    ("web", "web-3", "10.0.0.3", ["v2"]),
    ("db", "db-1", "10.0.1.1", []),
)


@dataclass
class Counts:
    """What one stream (UDP or TCP) saw."""

    sent: int = 0
    replies: int = 0
    no_reply_expected: int = 0
    parse_failures: int = 0
    mismatches: int = 0
    unexpected_replies: int = 0
    lost: int = 0
    servfail: int = 0
    valid_sent: int = 0
    valid_failures: int = 0
    reconnects: int = 0
    examples: list[str] = field(default_factory=list)

    def problem(self, kind: str, query: bytes, detail: str) -> None:
        if len(self.examples) < 10:
            self.examples.append(f"{kind}: {detail}; query {query.hex()}")


def srvdns_command() -> list[str]:
    script = Path(sys.executable).with_name("srvdns")
    return [str(script)] if script.exists() else [sys.executable, "-m", "srvdns"]


def start_server(
    directory: Path, upstream: int | None = None
) -> tuple[subprocess.Popen[bytes], int, str, Path]:
    """``srvdns serve`` on free loopback ports, forwarding names outside the zone to
    ``127.0.0.1:upstream`` when given; its stderr goes to ``srvdns.log``."""
    config = directory / "srvdns.toml"
    forward = "" if upstream is None else f'[forward]\nupstreams = ["127.0.0.1:{upstream}"]\n'
    config.write_text(
        forward + "[server]\n"
        'dns_listen = ["127.0.0.1:0"]\n'
        'api_listen = "127.0.0.1:0"\n'
        'database = "sqlite:///registry.db"\n'
        'version = "srvdns fuzz"\n'
        'identity = "fuzz-1"\n'
        f'[[zone]]\nname = "{dnsmutate.ZONE}"\nttl = 5\n'
    )
    log_path = directory / "srvdns.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*srvdns_command(), "serve", "-c", str(config)],
            cwd=directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        dns_match, api_match = _DNS_LINE.search(text), _API_LINE.search(text)
        if dns_match and api_match:
            return process, int(dns_match.group(2)), api_match.group(1), log_path
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    sys.exit("srvdns did not start:\n" + log_path.read_text(errors="replace"))


class EchoUpstream:
    """An upstream resolver on loopback for ``--forward``: answers every query over UDP
    with NXDOMAIN and the question as asked, without parsing it (srvdns forwards only
    queries it could read), on a thread of its own."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.queries = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                query, addr = self.sock.recvfrom(65535)
            except OSError:
                return
            self.queries += 1
            end = dnsmutate.question_end(query) + 4
            flags = bytes((0x80 | (query[2] & 0x79), 0x80 | 3))  # QR, opcode, RD; RA, NXDOMAIN
            reply = query[:2] + flags + struct.pack("!4H", 1, 0, 0, 0) + query[12:end]
            self.sock.sendto(reply, addr)

    def close(self) -> None:
        self.sock.close()


def register(api: str) -> None:
    with httpx.Client(base_url=api, timeout=10) as client:
        for service, instance, address, tags in INSTANCES:
            body = {"address": address, "port": 8080, "tags": tags, "meta": {"zone": "a"}}
            client.put(f"/v1/services/{service}/instances/{instance}", json=body).raise_for_status()


def summary(reply: bytes) -> tuple[int, list[str]]:
    """The rcode and the answer section without TTLs, sorted."""
    message = dns.message.from_wire(reply)
    rows = [
        f"{rrset.name} {rrset.rdclass} {rrset.rdtype} {rdata}"
        for rrset in message.answer
        for rdata in rrset
    ]
    return message.rcode(), sorted(rows)


def ask_udp(port: int, wire: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        for _ in range(5):
            sock.sendto(wire, ("127.0.0.1", port))
            try:
                return sock.recv(65535)
            except TimeoutError:
                continue
    sys.exit("srvdns does not answer over UDP")


def baseline(port: int) -> list[tuple[bytes, tuple[int, list[str]]]]:
    """Valid queries and the answers they get before any fuzzing; checks a few by hand."""
    checks = [q for q in dnsmutate.corpus() if struct.unpack_from("!H", q, 4)[0] == 1]
    known = [(q, summary(ask_udp(port, q))) for q in checks]
    web_a = dnsmutate.make_query(f"web.{dnsmutate.ZONE}", 1)
    rcode, rows = summary(ask_udp(port, web_a))
    addresses = sorted(row.rsplit(" ", 1)[1] for row in rows)
    if rcode != dns.rcode.NOERROR or addresses != ["10.0.0.1", "10.0.0.2", "10.0.0.3"]:
        sys.exit(f"unexpected baseline answer for web A: {rcode} {rows}")
    return known


def messages(
    seed: int, seeds: list[bytes], known: list[tuple[bytes, tuple[int, list[str]]]]
) -> Iterator[tuple[bytes, tuple[int, list[str]] | None]]:
    """An endless stream of (message, expected summary for a valid check, or None)."""
    rng = random.Random(seed)
    count = 0
    while True:
        count += 1
        if count % VALID_EVERY == 0:
            wire, expected = rng.choice(known)
            yield wire, expected
        else:
            yield dnsmutate.mutate(rng, seeds), None


def check_reply(
    counts: Counts, query: bytes, reply: bytes, expected: tuple[int, list[str]] | None
) -> None:
    counts.replies += 1
    problem = dnsmutate.reply_problem(query, reply)
    if problem is not None:
        if problem.startswith("does not parse"):
            counts.parse_failures += 1
        else:
            counts.mismatches += 1
        counts.problem("reply", query, f"{problem}; reply {reply.hex()}")
        return
    if reply[3] & 0x0F == dns.rcode.SERVFAIL:
        counts.servfail += 1
        counts.problem("SERVFAIL", query, reply.hex())
    if expected is not None:
        got = summary(reply)
        if got != expected:
            counts.valid_failures += 1
            counts.problem("valid query", query, f"{got} != {expected}")


def fuzz_udp(
    port: int,
    total: int,
    deadline: float,
    timeout: float,
    stream: Iterator[tuple[bytes, tuple[int, list[str]] | None]],
) -> Counts:
    """Keep ``WINDOW`` messages in flight on one socket, each with its own ID."""
    counts = Counts()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    pending: dict[int, tuple[bytes, tuple[int, list[str]] | None, float]] = {}
    next_id = 0
    while True:
        now = time.monotonic()
        sending = counts.sent < total and now < deadline
        while sending and len(pending) < WINDOW and counts.sent < total:
            wire, expected = next(stream)
            next_id = (next_id + 1) & 0xFFFF
            while next_id in pending:
                next_id = (next_id + 1) & 0xFFFF
            wire = dnsmutate.with_id(wire, next_id)
            try:
                sock.send(wire)
            except (BlockingIOError, ConnectionRefusedError):
                break
            counts.sent += 1
            if expected is not None:
                counts.valid_sent += 1
            if dnsmutate.expects_reply(wire):
                pending[next_id] = (wire, expected, now)
            else:
                counts.no_reply_expected += 1
        if not sending and not pending:
            break
        for _ in selector.select(0.05):
            while True:
                try:
                    reply = sock.recv(65535)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                msg_id = struct.unpack_from("!H", reply)[0] if len(reply) >= 2 else -1
                entry = pending.pop(msg_id, None)
                if entry is None:
                    counts.unexpected_replies += 1
                    counts.problem("unexpected reply", b"", reply.hex())
                    continue
                check_reply(counts, entry[0], reply, entry[1])
        now = time.monotonic()
        for msg_id, (wire, expected, sent_at) in list(pending.items()):
            if now - sent_at > timeout:
                del pending[msg_id]
                counts.lost += 1
                if expected is not None:
                    counts.valid_failures += 1
                counts.problem("lost", wire, "no reply")
    sock.close()
    return counts


def fuzz_tcp(
    port: int,
    total: int,
    deadline: float,
    stream: Iterator[tuple[bytes, tuple[int, list[str]] | None]],
) -> Counts:
    """Batches of framed messages on one connection, answered in order; a message
    shorter than a header ends a connection by design, so it goes on one of its own."""
    counts = Counts()
    sock: socket.socket | None = None
    msg_id = 0
    while counts.sent < total and time.monotonic() < deadline:
        if sock is None:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        batch: list[tuple[bytes, tuple[int, list[str]] | None]] = []
        short: bytes | None = None
        while len(batch) < 32 and counts.sent + len(batch) < total:
            wire, expected = next(stream)
            msg_id = (msg_id + 1) & 0xFFFF
            wire = dnsmutate.with_id(wire, msg_id)
            if len(wire) < 12:
                short = wire
                break
            batch.append((wire, expected))
        try:
            sock.sendall(b"".join(struct.pack("!H", len(w)) + w for w, _ in batch))
            for wire, expected in batch:
                counts.sent += 1
                if expected is not None:
                    counts.valid_sent += 1
                if not dnsmutate.expects_reply(wire):
                    counts.no_reply_expected += 1
            for wire, expected in batch:
                if not dnsmutate.expects_reply(wire):
                    continue
                reply = read_frame(sock)
                if reply is None:
                    counts.lost += 1
                    counts.problem("connection closed", wire, "no reply")
                    raise ConnectionError
                check_reply(counts, wire, reply, expected)
            if short is not None:
                sock.sendall(struct.pack("!H", len(short)) + short)
                counts.sent += 1
                counts.no_reply_expected += 1
                if read_frame(sock) is not None:
                    counts.unexpected_replies += 1
                    counts.problem("reply to a short frame", short, "")
                raise ConnectionError
        except (ConnectionError, TimeoutError):
            sock.close()
            sock = None
            counts.reconnects += 1
    if sock is not None:
        sock.close()
    return counts


def log_problems(log_path: Path) -> list[str]:
    return [
        line
        for line in log_path.read_text(errors="replace").splitlines()
        if _LOG_PROBLEM.search(line)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--max-seconds", type=float, default=900)
    parser.add_argument("--tcp-share", type=float, default=0.2)
    parser.add_argument(
        "--timeout", type=float, default=3.0, help="seconds to wait for a UDP reply"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--forward",
        action="store_true",
        help="forward names outside the zone to an upstream on loopback (the forwarding path)",
    )
    options = parser.parse_args()

    upstream = EchoUpstream() if options.forward else None
    with tempfile.TemporaryDirectory(prefix="srvdns-fuzz-") as tmp:
        process, port, api, log_path = start_server(
            Path(tmp), None if upstream is None else upstream.port
        )
        try:
            register(api)
            known = baseline(port)
            seeds = dnsmutate.corpus()
            started = time.monotonic()
            deadline = started + options.max_seconds
            tcp_total = int(options.packets * options.tcp_share)
            results: dict[str, Counts] = {}
            tcp_thread = threading.Thread(
                target=lambda: results.__setitem__(
                    "tcp",
                    fuzz_tcp(port, tcp_total, deadline, messages(options.seed + 1, seeds, known)),
                ),
                daemon=True,
            )
            tcp_thread.start()
            results["udp"] = fuzz_udp(
                port,
                options.packets - tcp_total,
                deadline,
                options.timeout,
                messages(options.seed, seeds, known),
            )
            tcp_thread.join()
            elapsed = time.monotonic() - started
            alive = process.poll() is None
            final = summary(ask_udp(port, known[0][0])) == known[0][1] if alive else False
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                status = process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                status = process.wait(5)
        problems = log_problems(log_path)

    failed = not alive or not final or status != 0 or bool(problems)
    print(f"elapsed {elapsed:.1f} s, seed {options.seed}")
    if upstream is not None:
        print(f"forwarded to the upstream: {upstream.queries} queries")
        upstream.close()
    header = (
        "stream",
        "sent",
        "replies",
        "no-reply",
        "parse-fail",
        "mismatch",
        "unexpected",
        "lost",
        "servfail",
        "valid",
        "valid-fail",
        "reconnects",
    )
    print("  ".join(f"{h:>10}" for h in header))
    for name, c in results.items():
        row = (
            name,
            c.sent,
            c.replies,
            c.no_reply_expected,
            c.parse_failures,
            c.mismatches,
            c.unexpected_replies,
            c.lost,
            c.servfail,
            c.valid_sent,
            c.valid_failures,
            c.reconnects,
        )
        print("  ".join(f"{v:>10}" for v in row))
        failed |= bool(
            c.parse_failures
            or c.mismatches
            or c.unexpected_replies
            or c.lost
            or c.servfail
            or c.valid_failures
        )
        for example in c.examples:
            print(f"  {name} {example}")
    total = sum(c.sent for c in results.values())
    print(
        f"total sent {total} ({total / elapsed:.0f}/s); server alive at the end: {alive}; "
        f"valid answer after fuzzing: {final}; exit status on SIGTERM: {status}; "
        f"log problems: {len(problems)}"
    )
    for line in problems[:10]:
        print("  log:", line)
    print("FAILED" if failed else "OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
