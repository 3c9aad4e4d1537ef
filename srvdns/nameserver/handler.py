"""The query pipeline, bytes in and bytes out; the only place rcode and AA are set."""

from __future__ import annotations

import logging
import random
import struct
import time
from collections.abc import Callable, Sequence

from dnslib import CLASS, QTYPE, RCODE, RR  # type: ignore[import-untyped]

from srvdns.catalog import Catalog, CatalogHolder
from srvdns.config import ZoneConfig
from srvdns.nameserver import cache, names, serviceoctets
from srvdns.nameserver.authority import REFUSED, Answer, Outcome, lookup, negative_soa
from srvdns.nameserver.chaos import chaos_txt
from srvdns.nameserver.edns import BADVERS, TCP_SIZE, Edns, opt_record, udp_limit
from srvdns.nameserver.orders import Arrangements, Reorder
from srvdns.nameserver.packing import ArrangingPacker, Packer, rrsets, sample
from srvdns.nameserver.stats import OTHER, DnsStats
from srvdns.nameserver.wire import HEADER_SIZE, FormError, Query, Question, parse_query

log = logging.getLogger(__name__)

_QR = 0x8000
_OPCODE = 0x7800
_AA = 0x0400
_TC = 0x0200
_RD = 0x0100
_CD = 0x0010
_OPCODE_QUERY = 0
_ANSWER, _AUTHORITY, _ADDITIONAL = 1, 2, 3
_ZONE_TRANSFERS = frozenset({QTYPE.AXFR, QTYPE.IXFR})
_IN, _CH = CLASS.IN, CLASS.CH
_NOERROR, _NXDOMAIN = RCODE.NOERROR, RCODE.NXDOMAIN

_Scope = tuple[Catalog, str | None, float]
"""What a reply depends on: (snapshot, the service if the reply depends on nothing else
of the snapshot, the time it may change by); see ``cache.Entry``."""


def conclude(
    answer: Answer, zone: ZoneConfig | None, catalog: Catalog
) -> tuple[int, bool, tuple[RR, ...]]:
    """Turn a lookup's outcome into (rcode, AA, authority section).

    RFC 1035 §4.1.1: AA is set when the responding server is an authority for the
    name; REFUSED answers (outside every zone) are not authoritative, nor are CHAOS
    answers (``zone`` None), which NSD and Knot also send without AA.  RFC 2308 §3:
    "Name servers authoritative for a zone MUST include the SOA record of the zone in
    the authority section of the response when reporting an NXDOMAIN or indicating
    that no data of the requested type exists."
    """
    if answer.outcome is Outcome.REFUSED:
        return RCODE.REFUSED, False, ()
    if answer.outcome is Outcome.SUCCESS:
        return _NOERROR, zone is not None, answer.authority
    if zone is None:
        raise ValueError(f"a {answer.outcome.value} answer outside every zone")
    rcode = _NXDOMAIN if answer.outcome is Outcome.NXDOMAIN else _NOERROR
    return rcode, True, (*answer.authority, negative_soa(zone, catalog))


class Handler:
    """Answers DNS queries for ``zones`` from the snapshot in ``holder``.

    ``clock`` gives the ``now`` each query is answered at (wall-clock seconds, the time
    base of heartbeat leases); ``rng`` orders the records; ``edns_udp_size`` is the
    largest UDP reply to an EDNS client, advertised in every OPT record we send;
    ``udp_answer_limit`` (None: off) is the most records of one RRset a UDP reply
    carries; ``version`` and ``identity`` answer CHAOS TXT queries (None: REFUSED).
    ``answer_cache`` keeps packed replies (see ``cache``); off, every query is packed.
    ``service_octets`` writes the plain SRV, A and AAAA answers about a service straight
    into octets (``serviceoctets``: the same octets, less work); off, the general path
    packs them too.  Every reply is counted in ``stats`` (one per process, shared across
    reloads).
    """

    def __init__(
        self,
        zones: Sequence[ZoneConfig],
        holder: CatalogHolder,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        edns_udp_size: int = 1232,
        udp_answer_limit: int | None = None,
        version: str | None = None,
        identity: str | None = None,
        answer_cache: bool = True,
        stats: DnsStats | None = None,
        service_octets: bool = True,
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
        self._udp_answer_limit = udp_answer_limit
        self._version = version
        self._identity = identity
        self.stats = stats if stats is not None else DnsStats()
        self._udp_cache = cache.Store(self.stats) if answer_cache else None
        self._tcp_cache = cache.Store(self.stats) if answer_cache else None
        self._arrangements = Arrangements()
        """Of the cached answers still collecting orders (``orders.Reorder``)."""
        self._service_octets = service_octets

    def handle(self, wire: bytes, *, tcp: bool = False) -> bytes | None:
        """The reply to one DNS message, or None when it gets no reply.

        ``tcp`` says the reply goes over TCP (up to 65535 octets) rather than UDP.

        - No reply to a response (QR=1), so that two servers never bounce messages
          between them, nor to a message shorter than a header (nothing to echo).
        - NOTIMP for an opcode other than QUERY (RFC 1035 §4.1.1).
        - FORMERR for a message that does not parse (see ``wire.parse_query``): QDCOUNT
          other than 1 (RFC 9619), labels over 63 or names over 255 octets (RFC 1035
          §3.1), an OPT RR twice or outside the additional section (RFC 6891 §6.1.1).
        - BADVERS for EDNS versions above 0 (RFC 6891 §6.1.3).
        - REFUSED for a class other than IN and CH, a zone transfer, a name outside
          every zone, and CH names other than the version and identity ones; otherwise
          an authoritative answer (see ``conclude`` and ``chaos.chaos_txt``).
        - SERVFAIL, logged once, when anything unexpected goes wrong.

        The reply echoes the query's question octet for octet (0x20 case randomisation,
        RFC 4343 §4.1), copies RD and CD (RFC 6840 §5.9), and clears RA.  It carries an
        OPT record when the query did (RFC 6891 §7), and names are compressed.

        Over UDP the reply fits 512 octets, or the EDNS payload size capped by
        ``edns_udp_size``: RRsets over ``udp_answer_limit`` records are cut to a random
        subset of that many, with their additional records; then additional RRsets are
        dropped from the end, which does not set TC (RFC 2181 §9); if the answer still
        does not fit, the reply is TC=1 with only the question (RFC 1035 §4.2.1, RFC 6891
        §7) and the client asks again over TCP, which gets everything (RFC 7766 §8).

        A query whose octets after the ID were answered before, from a snapshot and at a
        time that give the same reply, gets a cached reply with its ID patched in.
        """
        entries = self._tcp_cache if tcp else self._udp_cache
        if entries is not None:
            try:
                if entries.catalog is not self._holder.current:
                    entries.sync(self._holder.current)
            except Exception:  # the pipeline below meets it too: SERVFAIL, logged once
                entries = None
            else:
                key = wire[2:]
                entry = entries.get(key)
                if entry is not None:
                    if entry.until == cache.FOREVER or self._clock() < entry.until:
                        entry.hits += 1
                        if entry.again is not None:
                            return self._another_order(entries, entry, wire, tcp=tcp)
                        tails = entry.tails
                        if len(tails) == 1:
                            return wire[:2] + tails[0]
                        return wire[:2] + tails[int(self._rng.random() * len(tails))]
                    entries.discard(key)
        if len(wire) < HEADER_SIZE:
            self.stats.ignored[tcp] += 1
            return None
        msg_id, flags = struct.unpack_from("!HH", wire)
        if flags & _QR:
            self.stats.ignored[tcp] += 1
            return None
        query: Query | None = None
        try:
            try:
                query = parse_query(wire)
            except FormError as exc:
                rcode = RCODE.FORMERR if _opcode(flags) == _OPCODE_QUERY else RCODE.NOTIMP
                reply = self._reply(msg_id, flags, rcode, exc.question, exc.edns, tcp=tcp)
                qtype = OTHER if exc.question is None else exc.question.qtype
                self.stats.packed(tcp, qtype, rcode)
                return reply
            reply, scope, again = self._answer(query, tcp=tcp)
            slot = self.stats.packed(tcp, query.question.qtype, _rcode(reply, query))
            if entries is not None and scope is not None and len(wire) <= cache.MAX_KEY:
                self._remember(entries, wire, reply, scope, slot, again)
            return reply
        except Exception:
            log.exception("internal error answering a DNS query")
            qtype = OTHER if query is None else query.question.qtype
            self.stats.packed(tcp, qtype, RCODE.SERVFAIL)
            return self._servfail(msg_id, flags, query, tcp=tcp)

    def _remember(
        self,
        entries: cache.Store,
        wire: bytes,
        reply: bytes,
        scope: _Scope,
        slot: int,
        again: Reorder | serviceoctets.Replies | None,
    ) -> None:
        """Cache ``reply``; when its records come in a random order (``again`` makes
        another), the next ``ORDERS - 1`` hits each make one more order
        (``_another_order``), so that a miss costs one packing, not ``ORDERS``.  ``slot``
        is the reply's kind (see ``stats``)."""
        catalog, service, until = scope
        if catalog is not entries.catalog:  # answered from another snapshot: not kept
            return
        entry = cache.Entry((reply[2:],), service, until, slot)
        if again is not None:
            entry.again, entry.pending = again, cache.ORDERS - 1
            again.keep()
        entries.put(wire[2:], entry)

    def _another_order(
        self, entries: cache.Store, entry: cache.Entry, wire: bytes, *, tcp: bool
    ) -> bytes:
        """A hit on an entry still collecting orders: pack the same records (same snapshot
        and TTLs, see ``handle``) in another order, keep it, send it."""
        assert entry.again is not None
        try:
            reply = entry.again()
        except Exception:
            log.exception("internal error packing another order of a cached answer")
            self._arrangements.discard(entry.again)
            entry.again = None
            return wire[:2] + entry.tails[0]
        entry.pending -= 1
        if entry.pending <= 0:
            self._arrangements.discard(entry.again)
            entry.again = None
        tail = reply[2:]
        if tail not in entry.tails:
            entry.tails += (tail,)
            entries.size += len(tail)
        return wire[:2] + tail

    def _answer(
        self, query: Query, *, tcp: bool
    ) -> tuple[bytes, _Scope | None, Reorder | serviceoctets.Replies | None]:
        """The reply; what it depends on (None: it must not be cached); and when its
        records are in a random order, what packs the same reply in another order."""
        msg_id, flags, question, edns = query.msg_id, query.flags, query.question, query.edns
        if _opcode(flags) != _OPCODE_QUERY:
            return self._reply(msg_id, flags, RCODE.NOTIMP, question, edns, tcp=tcp), None, None
        catalog = self._holder.current
        if edns is not None and edns.version > 0:
            reply = self._reply(msg_id, flags, BADVERS, question, edns, tcp=tcp)
            return reply, (catalog, None, cache.FOREVER), None
        if (
            self._service_octets
            and question.qtype in serviceoctets.TYPES
            and question.qclass == _IN
        ):
            written = self._service_octets_reply(query, catalog, tcp=tcp)
            if written is not None:
                return written
        answer, zone, catalog, scope = self._lookup(question)
        limit = self._udp_answer_limit
        if not tcp and limit is not None and len(answer.answer) > limit:
            scope = None  # a random subset per query spreads load beyond a few orders
        rcode, aa, authority = conclude(answer, zone, catalog)

        def pack(answer: Answer, keep: list[ArrangingPacker] | None = None) -> bytes:
            return self._reply(
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
                keep=keep,
            )

        reorder = answer.reorder
        if reorder is None or scope is None or len(answer.answer) < 2:
            return pack(answer), scope, None
        kept: list[ArrangingPacker] = []
        reply = pack(answer, kept)
        if reply[6:8] in (b"\x00\x00", b"\x00\x01"):
            return reply, scope, None
        again = Reorder(pack, reorder, self._rng, self._arrangements)
        if kept:
            again.first(kept[0], reply)
        return reply, scope, again

    def _service_octets_reply(
        self, query: Query, catalog: Catalog, *, tcp: bool
    ) -> tuple[bytes, _Scope, serviceoctets.Replies | None] | None:
        """The reply to an SRV, A or AAAA question at a service's name (no tag) written
        straight into octets (``serviceoctets``), or None: the general path answers."""
        found = self._route(names.lower_labels(query.question.labels))
        if found is None:
            return None
        zone, route = found
        if type(route) is not names.ServiceName or route.tag is not None:
            return None
        view = catalog.get_service(route.service)
        if view is None:
            return None
        now = self._clock()
        instances = view.answerable(now, zone)
        if not instances:
            return None
        edns = query.edns
        tail = b"" if edns is None else opt_record(self._edns_udp_size, edns, _NOERROR)
        question = query.question
        written = serviceoctets.service_reply(
            view,
            instances,
            zone,
            (query.msg_id, _reply_flags(query.flags, _NOERROR, aa=True), question.wire),
            question.qtype,
            tail,
            TCP_SIZE if tcp else udp_limit(edns, self._edns_udp_size),
            None if tcp else self._udp_answer_limit,
            now,
            self._rng,
        )
        if written is None:
            return None
        reply, orders = written
        return reply, (catalog, route.service, cache.service_horizon(view, now)), orders

    def _route(self, qname: names.Labels) -> tuple[ZoneConfig, names.Route] | None:
        """The zone of ``qname`` (the longest suffix) and where the name leads in it."""
        for origin, zone, name_servers in self._zones:
            relative = names.relative_to(qname, origin)
            if relative is not None:
                return zone, names.route(relative, name_servers)
        return None

    def _lookup(
        self, question: Question
    ) -> tuple[Answer, ZoneConfig | None, Catalog, _Scope | None]:
        """Find the zone by longest suffix, route the name, look it up in the snapshot;
        with the answer, what it depends on (see ``_answer``)."""
        catalog = self._holder.current
        whole: _Scope = (catalog, None, cache.FOREVER)
        if question.qtype in _ZONE_TRANSFERS:
            return REFUSED, None, catalog, whole
        qname = names.lower_labels(question.labels)
        if question.qclass == _CH:
            rr = chaos_txt(
                qname,
                question.qname,
                question.qtype,
                version=self._version,
                identity=self._identity,
            )
            answer = REFUSED if rr is None else Answer(Outcome.SUCCESS, (rr,))
            return answer, None, catalog, whole
        if question.qclass != _IN:
            return REFUSED, None, catalog, whole
        found = self._route(qname)
        if found is None:
            return REFUSED, None, catalog, whole
        zone, route = found
        now = self._clock()
        answer = lookup(
            zone, catalog, route, question.qtype, owner=question.qname, now=now, rng=self._rng
        )
        return answer, zone, catalog, _scope(catalog, route, answer, now)

    def _servfail(self, msg_id: int, flags: int, query: Query | None, *, tcp: bool) -> bytes:
        """SERVFAIL echoing the question and OPT if the query was read; never raises."""
        question = None if query is None else query.question
        edns = None if query is None else query.edns
        try:
            return self._reply(msg_id, flags, RCODE.SERVFAIL, question, edns, tcp=tcp)
        except Exception:
            log.debug("cannot echo the question of a failed query", exc_info=True)
            flags = _reply_flags(flags, RCODE.SERVFAIL, aa=False)
            return struct.pack("!6H", msg_id, flags, 0, 0, 0, 0)

    def _reply(
        self,
        msg_id: int,
        flags: int,
        rcode: int,
        question: Question | None,
        edns: Edns | None,
        *,
        tcp: bool,
        aa: bool = False,
        answer: Sequence[RR] = (),
        authority: Sequence[RR] = (),
        additional: Sequence[RR] = (),
        keep: list[ArrangingPacker] | None = None,
    ) -> bytes:
        """Pack a reply no larger than allowed (see ``handle`` for what gives way); its
        packer goes to ``keep`` when every record given is in it (``ArrangingPacker``)."""
        limit = TCP_SIZE if tcp else udp_limit(edns, self._edns_udp_size)
        if not tcp and self._udp_answer_limit is not None:
            answer, additional = sample(answer, additional, self._udp_answer_limit, self._rng)
        opt = b"" if edns is None else opt_record(self._edns_udp_size, edns, rcode)
        reply_flags = _reply_flags(flags, rcode, aa=aa)
        kind = Packer if keep is None else ArrangingPacker
        packer = kind(msg_id, reply_flags, question, limit=limit, reserve=len(opt))
        if packer.add_all(_ANSWER, answer) and packer.add_all(_AUTHORITY, authority):
            for rrset in rrsets(additional) if additional else ():
                if not packer.add_all(_ADDITIONAL, rrset):
                    break
            else:
                if isinstance(packer, ArrangingPacker) and keep is not None:
                    keep.append(packer)
            return packer.finish(tail=opt, tail_count=1 if opt else 0)
        packer = Packer(msg_id, reply_flags | _TC, question, limit=limit, reserve=len(opt))
        return packer.finish(tail=opt, tail_count=1 if opt else 0)


_OF_ONE_SERVICE = (names.ServiceName, names.TargetName, names.TargetParent)
"""Routes to names of one service (a tuple: ``isinstance`` is slower with a union)."""


def _scope(catalog: Catalog, route: names.Route, answer: Answer, now: float) -> _Scope | None:
    """What an answer at ``route`` depends on.  A positive answer about one service
    depends on that service alone (negative answers carry the SOA serial, so they are
    the whole snapshot's); ``_tcp``-style parents look at every service: not cached."""
    if isinstance(route, _OF_ONE_SERVICE):
        service = route.service
        until = cache.service_horizon(catalog.get_service(service), now)
        if answer.outcome is Outcome.SUCCESS:
            return catalog, service, until
        return catalog, None, until
    if isinstance(route, names.ProtocolParent):
        return None
    return catalog, None, cache.FOREVER


def _labels(text: str) -> tuple[bytes, ...]:
    return tuple(label.encode() for label in text.rstrip(".").split(".") if label)


def _rcode(reply: bytes, query: Query) -> int:
    """The rcode of a packed ``reply`` to ``query``: the header's four bits, or BADVERS
    (whose upper bits live in the OPT record) for an EDNS version we do not speak."""
    rcode = reply[3] & 0x0F
    if rcode == RCODE.NOERROR and query.edns is not None and query.edns.version > 0:
        return BADVERS
    return rcode


def _opcode(flags: int) -> int:
    return (flags & _OPCODE) >> 11


def _reply_flags(query_flags: int, rcode: int, *, aa: bool) -> int:
    """QR set; opcode, RD and CD copied (RFC 1035 §4.1.1, RFC 6840 §5.9); RA clear."""
    flags = _QR | (query_flags & (_OPCODE | _RD | _CD)) | (rcode & 0xF)
    return flags | _AA if aa else flags
