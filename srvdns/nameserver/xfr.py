"""Zone transfers out: AXFR (RFC 5936) and IXFR (RFC 1995), with TSIG (RFC 8945).

srvdns is a hidden primary: secondaries in a zone's ``transfer_to`` pull the zone and
serve it.  Each zone with transfer peers or notify targets keeps a journal of its
versions (``journal.Journal``), recorded whenever a transfer or a NOTIFY round looks at
the catalog; IXFR answers from it, AXFR (and IXFR from a serial it no longer holds)
sends everything.  Signed queries of any kind (a secondary's SOA check with its key)
are checked and their replies signed here too; the ordinary answer logic makes them.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.renderer
import dns.rrset

from srvdns.catalog import CatalogHolder
from srvdns.config import ZoneConfig
from srvdns.nameserver.authority import serial as catalog_serial
from srvdns.nameserver.journal import MAX_DELTAS, MAX_RECORDS, Journal, Recorded
from srvdns.nameserver.transfercontent import Record, ZoneContent
from srvdns.nameserver.tsig import Keyring, Signed, Signer, Verdict

log = logging.getLogger(__name__)

MESSAGE_SIZE = 65535 - 512
"""Octets of records per transfer message: a TCP message's limit, less room for TSIG."""

UDP_SIZE = 1232
"""The largest IXFR reply sent over UDP (the EDNS ceiling srvdns uses by default)."""

_QDCOUNT_OFFSET = 4
_ARCOUNT_OFFSET = 10
_TRANSFER_TYPES = (dns.rdatatype.AXFR, dns.rdatatype.IXFR)
_TSIG_TAIL = struct.pack("!HH", dns.rdatatype.TSIG, dns.rdataclass.ANY)

_Renderer: Any = dns.renderer.Renderer  # dnspython's renderer is untyped

Answerer = Callable[[bytes], "bytes | None"]
"""The ordinary answer logic for one unsigned query (``Handler.handle`` bound to a
transport)."""


@dataclass
class Version:
    """One version of a zone as transferred: serial, SOA, the other records."""

    serial: int
    soa: dns.rdtypes.ANY.SOA.SOA
    soa_ttl: int
    records: frozenset[Record]
    _packed: list[bytes] | None = field(default=None, repr=False)

    def packed(self) -> list[bytes]:
        """The records packed, RRsets together, in a stable order (once per version)."""
        if self._packed is None:
            self._packed = _packed(self.records)
        return self._packed


@dataclass
class _ZoneState:
    zone: ZoneConfig
    origin: dns.name.Name
    journal: Journal[Record]
    content: ZoneContent
    version: Version | None = None
    built_from: object = None
    """The catalog the version was built from; with ``until``, when to build again."""
    until: float | None = None


class Transfers:
    """Answers AXFR, IXFR and TSIG-signed queries for ``zones``, from ``holder``.

    ``secrets`` maps key names to (algorithm, secret); ``clock`` is wall-clock seconds;
    ``on_conflict`` is called when a zone's contents changed but its serial did not (a
    config reload, a lease that lapsed before the health loop recorded it): the caller
    moves the serial, and until then the journalled version is served.
    """

    def __init__(
        self,
        zones: Sequence[ZoneConfig],
        holder: CatalogHolder,
        secrets: dict[str, tuple[str, bytes]] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        on_conflict: Callable[[], None] | None = None,
        max_deltas: int = MAX_DELTAS,
        max_records: int = MAX_RECORDS,
    ) -> None:
        self._zones = tuple(zones)
        self._holder = holder
        self._keyring = Keyring(secrets or {})
        self._clock = clock
        self._on_conflict = on_conflict
        self._lock = threading.Lock()
        self._states = {
            dns.name.from_text(zone.name): _ZoneState(
                zone,
                dns.name.from_text(zone.name),
                Journal(max_deltas=max_deltas, max_records=max_records),
                ZoneContent(zone, zones),
            )
            for zone in zones
            if zone.transfer_to or zone.notify
        }

    @property
    def zones(self) -> list[ZoneConfig]:
        """The zones that are transferred or notified."""
        return [state.zone for state in self._states.values()]

    def current(self, zone: str) -> Version:
        """The zone's version now, journalled (a KeyError for a zone not transferred)."""
        return self._version(self._states[dns.name.from_text(zone)])

    def soa(self, zone: str) -> dns.rrset.RRset:
        """The SOA RRset of the zone's current version (see ``current``)."""
        state = self._states[dns.name.from_text(zone)]
        version = self._version(state)
        soa = version.soa.replace(serial=version.serial)
        return dns.rrset.from_rdata(state.origin, version.soa_ttl, soa)

    def is_transfer(self, wire: bytes) -> bool:
        """Whether ``wire`` asks for AXFR or IXFR (read from its octets, unchecked)."""
        if len(wire) < 12 or wire[_QDCOUNT_OFFSET : _QDCOUNT_OFFSET + 2] != b"\x00\x01":
            return False
        end = _name_end(wire, 12)
        if end is None or end + 2 > len(wire):
            return False
        return struct.unpack_from("!H", wire, end)[0] in _TRANSFER_TYPES

    def wants(self, wire: bytes) -> bool:
        """Cheap test on a query's octets: a transfer, or a TSIG-signed message, which
        ``respond`` answers instead of the ordinary answer logic."""
        if self.is_transfer(wire):
            return True
        return (
            len(wire) >= 12
            and wire[_ARCOUNT_OFFSET : _ARCOUNT_OFFSET + 2] != b"\x00\x00"
            and _TSIG_TAIL in wire
        )

    def respond(
        self, wire: bytes, peer: str, *, tcp: bool, answer: Answerer | None
    ) -> list[bytes] | None:
        """The reply messages to ``wire`` from ``peer`` (none: no reply).

        ``answer`` makes the ordinary answers (to an unsigned query that is no transfer,
        or one that does not parse); without it, such a query gets None: the caller
        answers it.  A transfer needs no ``answer``, so it can be made on another thread
        (the zone is built and packed there, off the event loop).

        RFC 8945 §5.2: a signature that fails gets NOTAUTH with the TSIG error (BADKEY,
        BADSIG, BADTIME) and no answer.  A transfer of a name that is no zone here gets
        NOTAUTH (RFC 5936 §2.2.1); one from an address not in the zone's ``transfer_to``,
        or without the key its entry names, REFUSED.  AXFR over UDP gets TC (RFC 5936
        §4.2: TCP only).  IXFR without the client's SOA is FORMERR (RFC 1995 §3).
        """
        try:
            signed = self._keyring.read(wire)
        except dns.exception.DNSException:  # the ordinary path answers FORMERR and the like
            return None if answer is None else _maybe(answer(wire))
        query = signed.message
        if query.flags & dns.flags.QR:
            return []
        signer = Signer(signed)
        if signed.verdict not in (Verdict.UNSIGNED, Verdict.VALID):
            log.info("zone transfer or signed query from %s: TSIG %s", peer, signed.verdict.value)
            return [signer.sign(_header_reply(query, dns.rcode.NOTAUTH))]
        question = query.question[0] if len(query.question) == 1 else None
        if question is None or question.rdtype not in _TRANSFER_TYPES:
            if answer is None:
                return None
            if signed.verdict is Verdict.UNSIGNED:
                return _maybe(answer(wire))
            reply = answer(_strip_tsig(wire, query))
            return [] if reply is None else [signer.sign(reply)]
        if query.opcode() != dns.opcode.QUERY or question.rdclass != dns.rdataclass.IN:
            return [signer.sign(_header_reply(query, dns.rcode.REFUSED))]
        state = self._states.get(question.name.canonicalize())  # None: no transfer_to
        if state is None and not any(
            dns.name.from_text(z.name) == question.name.canonicalize() for z in self._zones
        ):
            return [signer.sign(_header_reply(query, dns.rcode.NOTAUTH))]
        if state is None or not _allowed(state.zone, peer, signed):
            log.info(
                "zone transfer of %s refused to %s%s",
                question.name.to_text(omit_final_dot=True),
                peer,
                f" (key {signed.key_name})" if signed.key_name else " (unsigned)",
            )
            return [signer.sign(_header_reply(query, dns.rcode.REFUSED))]
        if question.rdtype == dns.rdatatype.AXFR:
            if not tcp:
                return [signer.sign(_header_reply(query, dns.rcode.NOERROR, tc=True))]
            version = self._version(state)
            return _render(query, signer, _axfr(state.origin, version))
        client = _client_serial(query, state.origin)
        if client is None:
            return [signer.sign(_header_reply(query, dns.rcode.FORMERR))]
        version = self._version(state)
        records = _ixfr(state, version, client)
        if not tcp:  # RFC 1995 §2: the whole reply in one datagram, else the SOA alone
            udp_size = min(max(512, query.payload), UDP_SIZE) if query.edns >= 0 else 512
            single = _render(query, signer, records, limit=udp_size - 128, split=False)
            if not single:
                return _render(query, signer, [_soa(state.origin, version)])
            return single
        return _render(query, signer, records)

    def refresh(self) -> dict[str, int]:
        """Journal every zone's version now; zone name -> serial."""
        return {state.zone.name: self._version(state).serial for state in self._states.values()}

    def _version(self, state: _ZoneState) -> Version:
        """The zone's version now; any thread (transfers are packed off the loop)."""
        with self._lock:
            return self._version_locked(state)

    def _version_locked(self, state: _ZoneState) -> Version:
        catalog = self._holder.current
        now = self._clock()
        version = state.version
        if (
            version is not None
            and state.built_from is catalog
            and (state.until is None or now < state.until)
        ):
            return version
        soa, records, until = state.content.build(catalog, now)
        outcome = state.journal.record(catalog_serial(catalog), records)
        if outcome is Recorded.CONFLICT:
            log.info(
                "zone %s changed without a new serial (%d); asking for one",
                state.zone.name,
                catalog_serial(catalog),
            )
            if self._on_conflict is not None:
                self._on_conflict()
            assert version is not None
            return version
        if outcome is Recorded.RESTARTED:
            log.warning("zone %s: the serial went back; IXFR history dropped", state.zone.name)
        if version is None or outcome is not Recorded.SAME:
            soa_ttl = state.zone.soa.ttl
            assert soa_ttl is not None
            version = Version(catalog_serial(catalog), soa, soa_ttl, records)
        state.version, state.built_from, state.until = version, catalog, until
        return version


def _allowed(zone: ZoneConfig, peer: str, signed: Signed) -> bool:
    for entry in zone.transfer_to:
        if not entry.matches(peer):
            continue
        if entry.key is None or (signed.verdict is Verdict.VALID and signed.key_name == entry.key):
            return True
    return False


def _client_serial(query: dns.message.Message, origin: dns.name.Name) -> int | None:
    """RFC 1995 §3: the client's version is the SOA in the authority section."""
    for rrset in query.authority:
        if rrset.rdtype == dns.rdatatype.SOA and rrset.name.canonicalize() == origin and rrset:
            soa = rrset[0]
            assert isinstance(soa, dns.rdtypes.ANY.SOA.SOA)
            return int(soa.serial)
    return None


def _soa_rrset(origin: dns.name.Name, version: Version) -> dns.rrset.RRset:
    soa = version.soa.replace(serial=version.serial)
    return dns.rrset.from_rdata(origin, version.soa_ttl, soa)


def _soa(origin: dns.name.Name, version: Version, serial: int | None = None) -> bytes:
    """The zone's SOA record packed, with the version's serial or ``serial``."""
    soa = version.soa.replace(serial=version.serial if serial is None else serial)
    return _pack(origin.to_wire() or b"", dns.rdatatype.SOA, version.soa_ttl, soa.to_wire() or b"")


def _pack(owner: bytes, rdtype: int, ttl: int, rdata: bytes) -> bytes:
    return owner + struct.pack("!HHIH", rdtype, dns.rdataclass.IN, ttl, len(rdata)) + rdata


def _packed(records: Iterable[Record]) -> list[bytes]:
    """Records packed, sorted by owner, type, TTL and RDATA (so RRsets are together)."""
    return [_pack(owner, rdtype, ttl, rdata) for owner, rdtype, ttl, rdata in sorted(records)]


def _axfr(origin: dns.name.Name, version: Version) -> list[bytes]:
    """RFC 5936 §2.2: the SOA, every other record, the SOA again."""
    soa = _soa(origin, version)
    return [soa, *version.packed(), soa]


def _ixfr(state: _ZoneState, version: Version, client: int) -> list[bytes]:
    """RFC 1995 §4: the new SOA, then per change the old SOA, deletions, the new SOA,
    additions; the new SOA at the end.  Condensed to one change; the new SOA alone when
    the client is current; AXFR's layout when the journal does not reach its serial."""
    soa = _soa(state.origin, version)
    delta = state.journal.changes_since(client)
    if delta is None or state.journal.serial != version.serial:
        return _axfr(state.origin, version)
    if delta.old == delta.new:
        return [soa]
    old = _soa(state.origin, version, delta.old)
    return [soa, old, *_packed(delta.deleted), soa, *_packed(delta.added), soa]


def _render(
    query: dns.message.Message,
    signer: Signer,
    records: Sequence[bytes],
    *,
    limit: int | None = None,
    split: bool = True,
) -> list[bytes]:
    """The packed ``records`` as answers of as many messages as they need (RFC 5936
    §2.2: the question in the first only), each signed in sequence.  With ``split``
    False, the one message, or an empty list when it does not fit; ``limit`` defaults
    to ``MESSAGE_SIZE``.  Names are not compressed: the records go out as stored.  The
    first message carries an OPT record when the query did (RFC 6891 §7)."""
    limit = MESSAGE_SIZE if limit is None else limit
    opt = _opt(query)
    flags = dns.flags.QR | dns.flags.AA | (query.flags & dns.flags.RD)
    q = query.question[0]
    question = (q.name.to_wire() or b"") + struct.pack("!HH", q.rdtype, q.rdclass)
    messages: list[bytes] = []
    body: list[bytes] = [question]
    size, count, first = 12 + len(question) + len(opt), 0, True
    for record in records:
        if size + len(record) > limit and count:
            if not split:
                return []
            messages.append(_message(query.id, flags, first, count, body, opt, signer))
            body, size, count, first = [], 12, 0, False
        if size + len(record) > limit:
            raise ValueError("a record does not fit a message")
        body.append(record)
        size += len(record)
        count += 1
    messages.append(_message(query.id, flags, first, count, body, opt, signer))
    return messages


def _message(
    msg_id: int,
    flags: int,
    first: bool,
    count: int,
    body: list[bytes],
    opt: bytes,
    signer: Signer,
) -> bytes:
    if not first:
        opt = b""
    header = struct.pack("!6H", msg_id, flags, 1 if first else 0, count, 0, 1 if opt else 0)
    return signer.sign(header + b"".join(body) + opt)


def _opt(query: dns.message.Message) -> bytes:
    """Our OPT record (payload ``UDP_SIZE``, version 0, no options) when the query had one."""
    if query.edns < 0:
        return b""
    return b"\x00" + struct.pack("!HHIH", dns.rdatatype.OPT, UDP_SIZE, 0, 0)


def _header_reply(query: dns.message.Message, rcode: int, *, tc: bool = False) -> bytes:
    """A reply with the question only and ``rcode``."""
    flags = dns.flags.QR | (query.flags & dns.flags.RD) | (dns.flags.TC if tc else 0)
    if rcode == dns.rcode.NOERROR:
        flags |= dns.flags.AA
    renderer = _Renderer(query.id, flags | (rcode & 0xF), 512)
    for q in query.question[:1]:
        renderer.add_question(q.name, q.rdtype, q.rdclass)
    if query.edns >= 0:
        renderer.add_edns(0, 0, UDP_SIZE)
    renderer.write_header()
    wire: bytes = renderer.get_wire()
    return wire


def _strip_tsig(wire: bytes, query: dns.message.Message) -> bytes:
    """The query's octets without its TSIG record (always the last one, RFC 8945 §5.1)."""
    tsig = query.tsig
    assert tsig is not None
    rdata = tsig[0].to_wire()
    assert rdata is not None
    owner = tsig.name.to_wire()
    assert owner is not None
    size = len(owner) + 10 + len(rdata)
    (arcount,) = struct.unpack_from("!H", wire, _ARCOUNT_OFFSET)
    body = wire[: len(wire) - size]
    return body[:_ARCOUNT_OFFSET] + struct.pack("!H", arcount - 1) + body[_ARCOUNT_OFFSET + 2 :]


def _name_end(wire: bytes, offset: int) -> int | None:
    """The offset after the (uncompressed) name at ``offset``, or None."""
    while offset < len(wire):
        length = wire[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0:
            return None
        offset += length + 1
    return None


def _maybe(reply: bytes | None) -> list[bytes]:
    return [] if reply is None else [reply]
