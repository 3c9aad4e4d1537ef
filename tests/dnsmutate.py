"""Random and mutated DNS messages for fuzzing, from a corpus of valid queries.

Shared by the hypothesis tests (``tests/nameserver/test_fuzz.py``,
``tests/e2e/test_fuzz_live.py``) and ``bench/fuzz_dns.py``.  Everything is driven by a
``random.Random`` so that a failing packet can be rebuilt from its seed, and every
mutation aims at one parser rule: bit flips and truncations anywhere, label lengths of
the extended types and over 63, names over 255 octets, compression pointers that loop,
point forward or past the end, section counts that disagree with the sections, and OPT
records that are repeated, misplaced, owned by a non-root name or carry options that
overrun their RDATA.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Sequence

HEADER = struct.Struct("!6H")
RR_FIXED = struct.Struct("!HHIH")
OPT = 41

ZONE = "service.local"

QNAMES: tuple[str, ...] = (
    f"web.{ZONE}",
    f"WeB.{ZONE}",
    f"v2.web.{ZONE}",
    f"_web._tcp.{ZONE}",
    f"_web._v2.{ZONE}",
    f"web-1.instance.web.{ZONE}",
    f"db.{ZONE}",
    f"_tcp.{ZONE}",
    f"nope.{ZONE}",
    ZONE,
    f"ns.{ZONE}",
    "example.org",
    "www.Example.NET",
    "_sip._udp.example.com",
    "version.bind",
    "id.server",
)
QTYPES: tuple[int, ...] = (1, 28, 33, 16, 6, 2, 255, 15, 252, 251, 65535, 0)


def encode_name(name: str) -> bytes:
    """Uncompressed wire form of a dotted name."""
    labels = [label.encode() for label in name.rstrip(".").split(".") if label]
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"


def opt_rr(
    payload: int = 1232, *, version: int = 0, do: bool = False, options: bytes = b""
) -> bytes:
    """An OPT record (root owner) with raw ``options`` as its RDATA."""
    ttl = (version << 16) | (0x8000 if do else 0)
    return b"\x00" + RR_FIXED.pack(OPT, payload, ttl, len(options)) + options


def option(code: int, data: bytes) -> bytes:
    return struct.pack("!HH", code, len(data)) + data


def make_query(
    qname: str,
    qtype: int,
    *,
    msg_id: int = 0,
    qclass: int = 1,
    flags: int = 0x0100,
    edns: bytes | None = None,
) -> bytes:
    """A query with one question and, if ``edns`` is given, that OPT record."""
    counts = (1, 0, 0, 1 if edns is not None else 0)
    wire = HEADER.pack(msg_id, flags, *counts) + encode_name(qname)
    return wire + struct.pack("!HH", qtype, qclass) + (edns or b"")


def corpus() -> list[bytes]:
    """Valid queries: every name form and common type, without and with EDNS (plain,
    DO, a cookie, client subnet, padding, an unknown option) and in class CH."""
    options = (
        b"",
        option(10, bytes(8)),  # COOKIE
        option(8, b"\x00\x01\x18\x00\x0a\x00\x00"),  # ECS 10.0.0.0/24
        option(12, bytes(16)),  # padding
        option(65001, b"x"),
    )
    queries: list[bytes] = []
    for qname in QNAMES:
        for qtype in QTYPES:
            qclass = 3 if qname in ("version.bind", "id.server") else 1
            queries.append(make_query(qname, qtype, qclass=qclass))
            for n, data in enumerate(options):
                edns = opt_rr(512 + 300 * n, do=n % 2 == 1, options=data)
                queries.append(make_query(qname, qtype, qclass=qclass, edns=edns))
    return queries


def question_end(wire: bytes) -> int:
    """Offset after the first question's name (uncompressed names only), or 12."""
    offset = 12
    while offset < len(wire) and wire[offset] and wire[offset] < 64:
        offset += wire[offset] + 1
    return min(offset + 1, len(wire))


# --- mutations: each takes the generator and a message, returns a new message


def flip_bits(rng: random.Random, wire: bytes) -> bytes:
    data = bytearray(wire)
    for _ in range(rng.randint(1, 8)):
        if not data:
            break
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


def set_bytes(rng: random.Random, wire: bytes) -> bytes:
    data = bytearray(wire)
    for _ in range(rng.randint(1, 4)):
        if not data:
            break
        data[rng.randrange(len(data))] = rng.choice((0, 0xFF, 0x3F, 0x40, 0xC0, rng.randrange(256)))
    return bytes(data)


def truncate(rng: random.Random, wire: bytes) -> bytes:
    return wire[: rng.randrange(len(wire) + 1)]


def extend(rng: random.Random, wire: bytes) -> bytes:
    return wire + rng.randbytes(rng.randint(1, 64))


def header_flags(rng: random.Random, wire: bytes) -> bytes:
    """Any opcode, QR, TC, Z, AD, CD and a nonzero RCODE in a query."""
    if len(wire) < 4:
        return wire
    return wire[:2] + struct.pack("!H", rng.randrange(65536)) + wire[4:]


def counts(rng: random.Random, wire: bytes) -> bytes:
    """Section counts that disagree with the sections."""
    if len(wire) < 12:
        return wire
    values = list(HEADER.unpack_from(wire))
    index = rng.randrange(2, 6)
    values[index] = rng.choice((0, 1, 2, 3, 255, 0xFFFF, values[index] + 1, rng.randrange(65536)))
    values[index] &= 0xFFFF
    return HEADER.pack(*values) + wire[12:]


def label_tricks(rng: random.Random, wire: bytes) -> bytes:
    """A question name with extended label types, over-long labels or names, a
    compression pointer (to itself, the header, past the end), or a length past the end."""
    if len(wire) < 13:
        return wire
    start, end = 12, question_end(wire)
    rest = wire[end:]
    trick = rng.randrange(8)
    if trick == 0:  # extended label type (0x40-0xBF)
        name = bytes([rng.randrange(0x40, 0xC0)]) + wire[start + 1 : end]
    elif trick == 1:  # a pointer at the start of the name, anywhere
        name = struct.pack("!H", 0xC000 | rng.choice((12, 0, 2, end, 0x3FFF)))
    elif trick == 2:  # name over 255 octets, or exactly at the limit
        size = rng.choice((63, 62, 1))
        count = rng.choice((4, 5, 127, 128, 200)) if size < 63 else rng.choice((3, 4, 5))
        name = (bytes([size]) + b"a" * size) * count + b"\x00"
    elif trick == 3:  # label length running past the end of the message
        return wire[:start] + bytes([63]) + b"x" * rng.randrange(63)
    elif trick == 4:  # labels ending in a pointer loop (a pointer to itself)
        here = start + 4
        name = b"\x03abc" + struct.pack("!H", 0xC000 | here)
    elif trick == 5:  # a zero-length name with junk labels after it
        name = b"\x00"
    elif trick == 6:  # binary labels
        name = b"".join(
            bytes([n]) + rng.randbytes(n) for n in (rng.randint(1, 63) for _ in range(3))
        )
        name += b"\x00"
    else:  # a label of 64 octets
        name = b"\x40" + b"b" * 64 + wire[start:end]
    return wire[:start] + name + rest


def records(rng: random.Random, wire: bytes) -> bytes:
    """Records appended to a section, some with compressed owners that loop or point
    past the end, some with RDATA lengths that overrun the message."""
    if len(wire) < 12:
        return wire
    values = list(HEADER.unpack_from(wire))
    section = rng.randrange(3, 6)
    owners = (
        b"\xc0\x0c",
        b"\x00",
        struct.pack("!H", 0xC000 | len(wire)),  # to itself
        struct.pack("!H", 0xC000 | (len(wire) + 40)),  # forward, past the end
        b"\x01a\xc0\x0c",
        b"\x01a" + struct.pack("!H", 0xC000 | len(wire)),  # loop through a label
        b"\xc0",  # half a pointer
    )
    extra = b""
    for _ in range(rng.randint(1, 3)):
        owner = rng.choice(owners)
        rdata = rng.randbytes(rng.randrange(8))
        rdlength = rng.choice((len(rdata), len(rdata), len(rdata) + 5, 0xFFFF))
        rtype = rng.choice((1, 5, 33, 41, 250, 255, rng.randrange(65536)))
        extra += owner + RR_FIXED.pack(rtype, rng.choice((1, 255, 512)), 0, rdlength) + rdata
        values[section] = (values[section] + 1) & 0xFFFF
    return HEADER.pack(*values) + wire[12:] + extra


def opt_variants(rng: random.Random, wire: bytes) -> bytes:
    """A second OPT, an OPT in the answer section, one with a non-root owner, a version
    above 0, payload sizes of 0 and 65535, and options that overrun the RDATA."""
    if len(wire) < 12:
        return wire
    values = list(HEADER.unpack_from(wire))
    variant = rng.randrange(8)
    payload = rng.choice((0, 1, 511, 512, 1232, 4096, 65535))
    if variant == 0:
        record = opt_rr(payload, version=rng.choice((1, 2, 255)))
    elif variant == 1:  # an option whose length runs past the RDATA
        data = struct.pack("!HH", 10, 40) + bytes(4)
        record = b"\x00" + RR_FIXED.pack(OPT, payload, 0, len(data)) + data
    elif variant == 2:  # half an option header
        record = b"\x00" + RR_FIXED.pack(OPT, payload, 0, 3) + b"\x00\x0a\x00"
    elif variant == 3:  # non-root owner
        record = b"\x03opt\x00" + RR_FIXED.pack(OPT, payload, 0, 0)
    elif variant == 4:  # in the answer section
        record = opt_rr(payload)
        values[3] = (values[3] + 1) & 0xFFFF
        return HEADER.pack(*values) + wire[12:] + record
    elif variant == 5:  # many options
        options = b"".join(
            option(rng.randrange(65536), rng.randbytes(rng.randrange(6))) for _ in range(200)
        )
        record = opt_rr(payload, do=True, options=options)
    elif variant == 6:  # RDLENGTH beyond the message
        record = b"\x00" + RR_FIXED.pack(OPT, payload, rng.randrange(1 << 32), 0xFFFF)
    else:  # an extended RCODE and every flag bit in the TTL
        record = b"\x00" + RR_FIXED.pack(OPT, payload, rng.randrange(1 << 32), 0)
    values[5] = (values[5] + 1) & 0xFFFF
    return HEADER.pack(*values) + wire[12:] + record


def garbage(rng: random.Random, wire: bytes) -> bytes:
    return rng.randbytes(rng.choice((0, 1, 2, 11, 12, 13, rng.randrange(600))))


MUTATIONS: tuple[Callable[[random.Random, bytes], bytes], ...] = (
    flip_bits,
    set_bytes,
    truncate,
    extend,
    header_flags,
    counts,
    label_tricks,
    records,
    opt_variants,
    garbage,
)


def splice(rng: random.Random, first: bytes, second: bytes) -> bytes:
    """The head of one message and the tail of another."""
    return first[: rng.randrange(len(first) + 1)] + second[rng.randrange(len(second) + 1) :]


def mutate(rng: random.Random, seeds: Sequence[bytes]) -> bytes:
    """One fuzzed message: a corpus query through one to three mutations, or spliced."""
    wire = rng.choice(seeds)
    if rng.random() < 0.05:
        return splice(rng, wire, rng.choice(seeds))
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        wire = rng.choice(MUTATIONS)(rng, wire)
    return wire


def expects_reply(wire: bytes) -> bool:
    """srvdns answers every message of at least a header that is not a response."""
    return len(wire) >= 12 and not wire[2] & 0x80


def with_id(wire: bytes, msg_id: int) -> bytes:
    """``wire`` with its first two octets set to ``msg_id`` (when it has them)."""
    if len(wire) < 2:
        return wire
    return struct.pack("!H", msg_id) + wire[2:]


def reply_problem(query: bytes, reply: bytes) -> str | None:
    """Why ``reply`` is not a well-formed reply to ``query`` (None: it is).

    It must parse with dnspython (as a QUERY, whatever its opcode: dnspython reads
    UPDATE sections differently), have QR set, carry the query's ID, opcode, and, when
    it has a question, the query's question octet for octet.
    """
    import dns.exception
    import dns.message

    if len(reply) < 12:
        return "shorter than a header"
    if reply[:2] != query[:2]:
        return "ID mismatch"
    if not reply[2] & 0x80:
        return "QR clear"
    if (reply[2] & 0x78) != (query[2] & 0x78):
        return "opcode not copied"
    as_query_opcode = reply[:2] + bytes([reply[2] & 0x87]) + reply[3:]
    try:
        message = dns.message.from_wire(as_query_opcode)
    except dns.exception.DNSException as exc:
        return f"does not parse: {type(exc).__name__}: {exc}"
    if len(message.question) > 1:
        return "more than one question"
    if message.question:
        end = question_end(reply) + 4
        if query[12:end] != reply[12:end]:
            return "the question is not echoed"
    return None
