"""Read a query off the wire: header, the question exactly as sent, and the OPT record.

dnslib is not used here: its parser rejects labels that are not UTF-8 (``\\xff``),
accepts 64-191 octet "labels" (extended label types) and re-encodes the question, so
the echo would not always be the query's own bytes.  This reader keeps the question's
octets, folds nothing, and skips every other record without decoding it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from dnslib import DNSLabel  # type: ignore[import-untyped]

from srvdns.nameserver.edns import Edns, parse_opt

HEADER_SIZE = 12
MAX_NAME = 255
"""RFC 1035 §3.1: a domain name is at most 255 octets on the wire."""

MAX_LABEL = 63
"""RFC 1035 §3.1: a label is at most 63 octets."""

OPT = 41

_POINTER = 0xC0
_HEADER = struct.Struct("!6H")
_RR_FIXED = struct.Struct("!HHIH")
_OPT_FIXED = 1 + _RR_FIXED.size
"""The octets of an OPT record without options: the root owner and the fixed fields."""


class FormError(ValueError):
    """The message is malformed: FORMERR, echoing ``question`` and ``edns`` if they were read."""

    def __init__(
        self, reason: str, question: Question | None = None, edns: Edns | None = None
    ) -> None:
        super().__init__(reason)
        self.question = question
        self.edns = edns


@dataclass(frozen=True, slots=True)
class Question:
    """The one question of a query, with its name exactly as sent."""

    labels: tuple[bytes, ...]
    """The labels as sent (case and any octet kept), leftmost first, without the root."""
    qtype: int
    qclass: int
    wire: bytes
    """The question section's octets: QNAME, QTYPE, QCLASS."""
    qname: DNSLabel = field(init=False, repr=False, compare=False)
    """The name as a dnslib label, for owner names of answer records (made once: a
    question is looked up by its octets, see ``_QUESTIONS``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "qname", DNSLabel(self.labels))


@dataclass(frozen=True, slots=True)
class Query:
    """What a query says: its header, its single question and its EDNS parameters."""

    msg_id: int
    flags: int
    question: Question
    edns: Edns | None


def parse_query(wire: bytes) -> Query:
    """Read a message of at least a header.

    Raises FormError (RFC 1035 §4.1, RFC 6891 §6.1.1) when a section runs past the end,
    a label is longer than 63 octets or uses an extended label type, a name is longer
    than 255 octets or the question's name is compressed, QDCOUNT is not 1 (RFC 9619),
    an OPT record appears outside the additional section or more than once, or the OPT
    record is malformed (owner other than the root, options that overrun its RDATA).
    Octets after the last section are ignored.
    """
    msg_id, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    if qdcount == 1 and not ancount and not nscount and arcount <= 1:
        # The usual query: one question, then nothing or an OPT record without options
        # seen before (``_OPTS``).  Anything else is read below, in full.
        question, offset = _read_question(wire, HEADER_SIZE)
        if not arcount:
            return Query(msg_id, flags, question, None)
        known = _OPTS.get(bytes(wire[offset : offset + _OPT_FIXED]))
        if known is not None:
            return Query(msg_id, flags, question, known)
    offset = HEADER_SIZE
    questions: list[Question] = []
    for _ in range(qdcount):
        question, offset = _read_question(wire, offset)
        questions.append(question)
    single = questions[0] if len(questions) == 1 else None
    for _ in range(ancount + nscount):
        rtype, offset = _skip_record(wire, offset, single)
        if rtype == OPT:
            raise FormError("OPT record outside the additional section", single)
    edns: Edns | None = None
    for _ in range(arcount):
        start = offset
        rtype, offset = _skip_record(wire, offset, single)
        if rtype != OPT:
            continue
        if edns is not None:
            raise FormError("more than one OPT record", single)
        edns = _read_opt(wire, start, single)
    if single is None:
        raise FormError(f"QDCOUNT is {qdcount}, not 1", None, edns)
    return Query(msg_id, flags, single, edns)


def _read_question(wire: bytes, offset: int) -> tuple[Question, int]:
    """The question at ``offset`` and the offset after it.  The name's length octets are
    walked without copying a label; the question is then looked up by its octets
    (``_QUESTIONS``) and read into labels only the first time they are seen."""
    start = offset
    size = len(wire)
    while True:
        if offset >= size:
            raise FormError("the question runs past the end of the message")
        length = wire[offset]
        if length == 0:
            offset += 1
            break
        if length > MAX_LABEL:
            raise FormError("a compressed or over-long label in the question")
        offset += 1 + length
        if offset > size:
            raise FormError("the question runs past the end of the message")
        if offset - start >= MAX_NAME:
            raise FormError("the question's name is longer than 255 octets")
    if offset + 4 > size:
        raise FormError("the question runs past the end of the message")
    octets = bytes(wire[start : offset + 4])
    question = _QUESTIONS.get(octets)
    if question is None:
        question = _question(octets)
        if len(_QUESTIONS) >= _QUESTIONS_MAX:
            _QUESTIONS.clear()
        _QUESTIONS[octets] = question
    return question, offset + 4


def _question(octets: bytes) -> Question:
    """The question whose section is ``octets`` (already checked by ``_read_question``)."""
    labels: list[bytes] = []
    offset = 0
    length = octets[0]
    while length:
        labels.append(octets[offset + 1 : offset + 1 + length])
        offset += 1 + length
        length = octets[offset]
    qtype, qclass = struct.unpack_from("!HH", octets, offset + 1)
    return Question(tuple(labels), qtype, qclass, octets)


_QUESTIONS: dict[bytes, Question] = {}
"""Questions by their octets as sent: clients ask the same few questions again and again,
and a ``Question`` is never changed once made.  Emptied when full, so that a flood of
distinct names costs a few more reads, never memory."""
_QUESTIONS_MAX = 4096


def _skip_name(wire: bytes, offset: int, question: Question | None) -> int:
    """The offset after a (possibly compressed) name; the pointer is not followed."""
    start = offset
    while True:
        if offset >= len(wire):
            raise FormError("a record runs past the end of the message", question)
        length = wire[offset]
        if length & _POINTER == _POINTER:
            if offset + 2 > len(wire):
                raise FormError("a record runs past the end of the message", question)
            return offset + 2
        if length > MAX_LABEL:
            raise FormError("a label with an extended label type", question)
        offset += 1 + length
        if length == 0:
            return offset
        if offset - start >= MAX_NAME:
            raise FormError("a name longer than 255 octets", question)


def _skip_record(wire: bytes, offset: int, question: Question | None) -> tuple[int, int]:
    """(TYPE, offset after the record)."""
    offset = _skip_name(wire, offset, question)
    if offset + _RR_FIXED.size > len(wire):
        raise FormError("a record runs past the end of the message", question)
    rtype, _, _, rdlength = _RR_FIXED.unpack_from(wire, offset)
    offset += _RR_FIXED.size + rdlength
    if offset > len(wire):
        raise FormError("a record's RDATA runs past the end of the message", question)
    return rtype, offset


def _read_opt(wire: bytes, offset: int, question: Question | None) -> Edns:
    if wire[offset] != 0:
        raise FormError("the OPT record's owner is not the root", question)
    _, payload, ttl, rdlength = _RR_FIXED.unpack_from(wire, offset + 1)
    rdata_start = offset + 1 + _RR_FIXED.size
    if rdlength == 0:  # no options (the usual OPT record): its parameters, read once
        fixed = bytes(wire[offset : offset + _OPT_FIXED])
        edns = _OPTS.get(fixed)
        if edns is None:
            if len(_OPTS) >= _QUESTIONS_MAX:
                _OPTS.clear()
            edns = _OPTS[fixed] = parse_opt(payload, ttl, b"")
        return edns
    try:
        return parse_opt(payload, ttl, wire[rdata_start : rdata_start + rdlength])
    except ValueError as exc:
        raise FormError(str(exc), question) from None


_OPTS: dict[bytes, Edns] = {}
"""The EDNS parameters of option-less OPT records, by their octets: they differ only in
payload size, version and flags, so few are ever seen (emptied when full, as
``_QUESTIONS``)."""
