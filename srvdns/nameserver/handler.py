"""The query pipeline, bytes in and bytes out; the only place rcode and AA are set."""

from __future__ import annotations

import logging
import random
import struct
import time
from collections.abc import Callable, Sequence

from dnslib import (  # type: ignore[import-untyped]
    CLASS,
    QTYPE,
    RCODE,
    RR,
    DNSBuffer,
    DNSHeader,
    DNSLabel,
    DNSQuestion,
    DNSRecord,
)

from srvdns.catalog import Catalog, CatalogHolder
from srvdns.config import ZoneConfig
from srvdns.nameserver import names
from srvdns.nameserver.authority import REFUSED, Answer, Outcome, lookup, negative_soa
from srvdns.nameserver.edns import (
    BADVERS,
    TCP_SIZE,
    Edns,
    MultipleOptError,
    get_edns,
    opt,
    udp_limit,
)

log = logging.getLogger(__name__)

HEADER_SIZE = 12
_QR = 0x8000
_OPCODE = 0x7800
_AA = 0x0400
_TC = 0x0200
_RD = 0x0100
_CD = 0x0010
_OPCODE_QUERY = 0
_MAX_NAME_WIRE = 255
_ZONE_TRANSFERS = frozenset({QTYPE.AXFR, QTYPE.IXFR})


def conclude(
    answer: Answer, zone: ZoneConfig | None, catalog: Catalog
) -> tuple[int, bool, tuple[RR, ...]]:
    """Turn a lookup's outcome into (rcode, AA, authority section).

    RFC 1035 §4.1.1: AA is set when the responding server is an authority for the
    name; REFUSED answers (outside every zone) are not authoritative.  RFC 2308 §3:
    "Name servers authoritative for a zone MUST include the SOA record of the zone in
    the authority section of the response when reporting an NXDOMAIN or indicating
    that no data of the requested type exists."
    """
    if answer.outcome is Outcome.REFUSED or zone is None:
        return RCODE.REFUSED, False, ()
    if answer.outcome is Outcome.SUCCESS:
        return RCODE.NOERROR, True, answer.authority
    rcode = RCODE.NXDOMAIN if answer.outcome is Outcome.NXDOMAIN else RCODE.NOERROR
    return rcode, True, (*answer.authority, negative_soa(zone, catalog))


class Handler:
    """Answers DNS queries for ``zones`` from the snapshot in ``holder``.

    ``clock`` gives the ``now`` each query is answered at (wall-clock seconds, the time
    base of heartbeat leases); ``rng`` orders the records; ``edns_udp_size`` is the
    largest UDP reply to an EDNS client, advertised in every OPT record we send.
    """

    def __init__(
        self,
        zones: Sequence[ZoneConfig],
        holder: CatalogHolder,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        edns_udp_size: int = 1232,
    ) -> None:
        self._zones = sorted(
            (
                (names.lower_labels(_labels(zone.name)), zone, zone.reserved_labels)
                for zone in zones
            ),
            key=lambda entry: len(entry[0]),
            reverse=True,
        )
        self._holder = holder
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._edns_udp_size = edns_udp_size

    def handle(self, wire: bytes, *, tcp: bool = False) -> bytes | None:
        """The reply to one DNS message, or None when it gets no reply.

        ``tcp`` says the reply goes over TCP (up to 65535 octets) rather than UDP.

        - No reply to a response (QR=1), so that two servers never bounce messages
          between them, nor to a message shorter than a header (nothing to echo).
        - NOTIMP for an opcode other than QUERY (RFC 1035 §4.1.1).
        - FORMERR for a message that does not parse, with a QDCOUNT other than 1
          (RFC 9619), or with more than one OPT RR (RFC 6891 §6.1.1).
        - BADVERS for EDNS versions above 0 (RFC 6891 §6.1.3).
        - REFUSED for a class other than IN, a zone transfer, or a name outside every
          zone; otherwise an authoritative answer (see ``conclude``).
        - SERVFAIL, logged once, when anything unexpected goes wrong.

        A UDP reply that does not fit first loses additional records, which does not
        set TC (RFC 2181 §9); if it still does not fit, it is sent with TC=1 and only
        the question (RFC 1035 §4.2.1, RFC 6891 §7).
        """
        if len(wire) < HEADER_SIZE:
            return None
        msg_id, flags = struct.unpack_from("!HH", wire)
        if flags & _QR:
            return None
        try:
            return self._handle(wire, msg_id, flags, tcp)
        except Exception:
            log.exception("internal error answering a DNS query")
            return self._error(wire, msg_id, flags, RCODE.SERVFAIL)

    def _handle(self, wire: bytes, msg_id: int, flags: int, tcp: bool) -> bytes:
        if (flags & _OPCODE) >> 11 != _OPCODE_QUERY:
            return self._error(wire, msg_id, flags, RCODE.NOTIMP)
        try:
            query = DNSRecord.parse(wire)
        except Exception:
            return self._error(wire, msg_id, flags, RCODE.FORMERR)
        question = _single_question(query)
        try:
            edns = get_edns(query)
        except MultipleOptError:
            return self._pack(msg_id, flags, RCODE.FORMERR, question, None, tcp=tcp)
        if edns is not None and edns.version > 0:
            return self._pack(msg_id, flags, BADVERS, question, edns, tcp=tcp)
        if question is None:
            return self._pack(msg_id, flags, RCODE.FORMERR, None, edns, tcp=tcp)
        answer, zone, catalog = self._lookup(question)
        rcode, aa, authority = conclude(answer, zone, catalog)
        return self._pack(
            msg_id,
            flags,
            rcode,
            question,
            edns,
            tcp=tcp,
            aa=aa,
            answer=answer.answer,
            authority=authority,
            additional=answer.additional,
        )

    def _lookup(self, question: DNSQuestion) -> tuple[Answer, ZoneConfig | None, Catalog]:
        """Find the zone by longest suffix, route the name, look it up in the snapshot."""
        catalog = self._holder.current
        if question.qclass != CLASS.IN or question.qtype in _ZONE_TRANSFERS:
            return REFUSED, None, catalog
        qname = names.lower_labels(question.qname.label)
        for origin, zone, name_servers in self._zones:
            relative = names.relative_to(qname, origin)
            if relative is not None:
                route = names.route(relative, name_servers)
                answer = lookup(
                    zone,
                    catalog,
                    route,
                    question.qtype,
                    owner=question.qname,
                    now=self._clock(),
                    rng=self._rng,
                )
                return answer, zone, catalog
        return REFUSED, None, catalog

    def _error(self, wire: bytes, msg_id: int, flags: int, rcode: int) -> bytes:
        """An error reply echoing whatever of the question and OPT can be read; never raises."""
        question: DNSQuestion | None = None
        edns: Edns | None = None
        try:
            query = DNSRecord.parse(wire)
        except Exception:
            question = _parse_question(wire)
        else:
            question = _single_question(query)
            try:
                edns = get_edns(query)
            except MultipleOptError:
                edns = None
        try:
            return self._pack(msg_id, flags, rcode, question, edns, tcp=True)
        except Exception:
            log.debug("cannot echo the question of a bad query", exc_info=True)
            return struct.pack("!HHHHHH", msg_id, _reply_flags(flags, rcode, aa=False), 0, 0, 0, 0)

    def _pack(
        self,
        msg_id: int,
        flags: int,
        rcode: int,
        question: DNSQuestion | None,
        edns: Edns | None,
        *,
        tcp: bool,
        aa: bool = False,
        answer: Sequence[RR] = (),
        authority: Sequence[RR] = (),
        additional: Sequence[RR] = (),
    ) -> bytes:
        """Pack a reply; over UDP drop additional records, then everything, to fit."""
        limit = TCP_SIZE if tcp else udp_limit(edns, self._edns_udp_size)
        opt_rr = [] if edns is None else [opt(self._edns_udp_size, edns, rcode)]
        message = DNSRecord(
            DNSHeader(id=msg_id, bitmap=_reply_flags(flags, rcode, aa=aa)),
            questions=[] if question is None else [question],
            rr=list(answer),
            auth=list(authority),
            ar=[*additional, *opt_rr],
        )
        wire = bytes(message.pack())
        if len(wire) <= limit:
            return wire
        # RFC 2181 §9: keep as many additional records as fit; that alone sets no TC.
        low, high = 0, len(additional) - 1
        best: bytes | None = None
        while low <= high:
            keep = (low + high) // 2
            message.ar = [*additional[:keep], *opt_rr]
            wire = bytes(message.pack())
            if len(wire) <= limit:
                best, low = wire, keep + 1
            else:
                high = keep - 1
        if best is not None:
            return best
        message.rr, message.auth, message.ar = [], [], opt_rr
        message.header.tc = 1
        return bytes(message.pack())


def _labels(text: str) -> tuple[bytes, ...]:
    return tuple(label.encode() for label in text.rstrip(".").split(".") if label)


def _reply_flags(query_flags: int, rcode: int, *, aa: bool) -> int:
    """QR set; opcode, RD and CD copied (RFC 1035 §4.1.1, RFC 6840 §5.9); RA clear."""
    flags = _QR | (query_flags & (_OPCODE | _RD | _CD)) | (rcode & 0xF)
    return flags | _AA if aa else flags


def _name_fits(qname: DNSLabel) -> bool:
    """RFC 1035 §3.1: a name is at most 255 octets on the wire."""
    return sum(len(label) + 1 for label in qname.label) + 1 <= _MAX_NAME_WIRE


def _single_question(query: DNSRecord) -> DNSQuestion | None:
    if len(query.questions) != 1 or not _name_fits(query.questions[0].qname):
        return None
    question: DNSQuestion = query.questions[0]
    return question


def _parse_question(wire: bytes) -> DNSQuestion | None:
    """The question of a message whose later sections do not parse, if it has one."""
    if struct.unpack_from("!H", wire, 4)[0] != 1:
        return None
    try:
        buffer = DNSBuffer(wire)
        buffer.offset = HEADER_SIZE
        question = DNSQuestion.parse(buffer)
    except Exception:
        return None
    return question if _name_fits(question.qname) else None
