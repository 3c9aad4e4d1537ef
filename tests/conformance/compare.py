"""Ask a server, reduce its reply to comparable sets, and explain the known differences.

A reply becomes rcode, AA, TC, EDNS presence and its three sections as sets of records
(owner, type, TTL, RDATA): record order is ignored, because srvdns shuffles.  Where
srvdns and a reference server differ, ``explain`` applies the short table ``ALLOWED``:
each entry removes one kind of divergence that is right for srvdns, and only when its
predicate holds; whatever remains is a mismatch.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
from conformance.dataset import LEASED_SERVICE, Question

Record = tuple[str, str, int, str]
"""(owner, type, TTL, RDATA) in presentation format; the owner lower-cased."""

EDNS_CEILING = 1232
"""The largest UDP reply each server sends (srvdns's edns_udp_size, NSD's and Knot's default)."""


@dataclass(frozen=True, slots=True)
class Transport:
    """How a question is sent: UDP or TCP, with an EDNS buffer size or without EDNS."""

    name: str

    @property
    def tcp(self) -> bool:
        return self.name.startswith("tcp")

    @property
    def payload(self) -> int | None:
        _, _, size = self.name.partition("-")
        return int(size) if size else None

    @property
    def limit(self) -> int:
        """The largest reply the servers may send."""
        if self.tcp:
            return 65535
        if self.payload is None:
            return 512
        return max(512, min(self.payload, EDNS_CEILING))


@dataclass(frozen=True, slots=True)
class Reply:
    rcode: str
    aa: bool
    tc: bool
    edns: bool
    answer: frozenset[Record]
    authority: frozenset[Record]
    additional: frozenset[Record]
    message: dns.message.Message = field(compare=False, repr=False)
    size: int = field(compare=False, default=0)

    def sections(self) -> dict[str, frozenset[Record]]:
        return {"answer": self.answer, "authority": self.authority, "additional": self.additional}


def records(section: Iterable[dns.rrset.RRset]) -> frozenset[Record]:
    """Names compared without case (RFC 4343): servers that compress against the question
    write names inside RDATA (SOA, NS, SRV) in the question's case."""
    return frozenset(
        (
            rrset.name.to_text().lower(),
            dns.rdatatype.to_text(rrset.rdtype),
            rrset.ttl,
            _rdata_text(rrset.rdtype, rdata),
        )
        for rrset in section
        for rdata in rrset
    )


def _rdata_text(rdtype: int, rdata: dns.rdata.Rdata) -> str:
    text = rdata.to_text()
    return text if rdtype == dns.rdatatype.TXT else text.lower()


def exchange(host: str, port: int, query: dns.message.Message, *, tcp: bool) -> bytes:
    """One query and its reply as wire bytes (the size of the reply is part of the test)."""
    wire = query.to_wire()
    if tcp:
        with socket.create_connection((host, port), timeout=3) as sock:
            sock.sendall(struct.pack("!H", len(wire)) + wire)
            (length,) = struct.unpack("!H", _read(sock, 2))
            return _read(sock, length)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.5)
        for attempt in (1, 2, 3):  # UDP may drop a datagram under load
            sock.sendto(wire, (host, port))
            try:
                while True:
                    reply, _ = sock.recvfrom(65535)
                    if reply[:2] == wire[:2]:
                        return reply
            except TimeoutError:
                if attempt == 3:
                    raise
    raise AssertionError("unreachable")


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk
    return data


def ask(host: str, port: int, question: Question, transport: Transport) -> Reply:
    """Send ``question`` without RD, as a resolver asks an authority, and reduce the reply."""
    payload = transport.payload
    query = dns.message.make_query(
        question.qname,
        dns.rdatatype.from_text(question.qtype),
        use_edns=0 if payload is not None else False,
        payload=payload or 0,
    )
    query.flags &= ~dns.flags.RD
    wire = exchange(host, port, query, tcp=transport.tcp)
    message = dns.message.from_wire(wire, one_rr_per_rrset=True)
    return Reply(
        rcode=dns.rcode.to_text(message.rcode()),
        aa=bool(message.flags & dns.flags.AA),
        tc=bool(message.flags & dns.flags.TC),
        edns=message.edns >= 0,
        answer=records(message.answer),
        authority=records(message.authority),
        additional=records(message.additional),
        message=message,
        size=len(wire),
    )


# -- what the exported zone holds ------------------------------------------------------


@dataclass
class Zones:
    """The exported zone files as parsed by dnspython: the third reading of the export."""

    records: dict[tuple[str, str], frozenset[Record]] = field(default_factory=dict)
    """(owner, type) -> the RRset's records."""
    apex_ns: frozenset[Record] = frozenset()
    """Every zone's apex NS records."""
    ns_hosts: frozenset[str] = frozenset()
    origins: frozenset[str] = frozenset()
    exported_at: float = 0.0

    @classmethod
    def load(cls, files: dict[str, str], exported_at: float) -> Zones:
        out = cls(exported_at=exported_at, origins=frozenset(f"{o}." for o in files))
        apex_ns: set[Record] = set()
        hosts: set[str] = set()
        for origin, text in files.items():
            zone = dns.zone.from_text(text, origin=origin, relativize=False)
            for name, node in zone.nodes.items():
                for rdataset in node.rdatasets:
                    rrset = dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset))
                    found = records([rrset])
                    rdtype = dns.rdatatype.to_text(rdataset.rdtype)
                    out.records[(name.to_text().lower(), rdtype)] = found
                    if rdtype == "NS" and name == zone.origin:
                        apex_ns |= found
                        hosts |= {rr[3].lower() for rr in found}
        out.apex_ns = frozenset(apex_ns)
        out.ns_hosts = frozenset(hosts)
        return out


# -- the differences that are right for srvdns ------------------------------------------


@dataclass(frozen=True, slots=True)
class Context:
    question: Question
    transport: Transport
    referee: str
    zones: Zones


Normalizer = Callable[[Context, Reply, Reply], tuple[Reply, Reply] | None]
"""Given (context, srvdns's reply, the referee's reply): the two replies with one allowed
divergence removed, or None when it does not apply."""


@dataclass(frozen=True, slots=True)
class Allowed:
    name: str
    referees: frozenset[str]
    normalize: Normalizer
    reason: str


def _is_leased(owner: str) -> bool:
    labels = owner.rstrip(".").split(".")
    return LEASED_SERVICE in labels[:4] or f"_{LEASED_SERVICE}" in labels[:2]


def _lease_ttl(ctx: Context, ours: Reply, theirs: Reply) -> tuple[Reply, Reply] | None:
    """srvdns's TTL of a lease-capped RRset has counted down since the export: at most by
    the seconds elapsed (plus one for rounding), never up."""
    elapsed = time.time() - ctx.zones.exported_at + 1
    changed = False

    def fix(section: frozenset[Record]) -> frozenset[Record]:
        nonlocal changed
        out = set()
        for owner, rdtype, ttl, rdata in section:
            zone = ctx.zones.records.get((owner, rdtype), frozenset())
            frozen = {z[2] for z in zone if z[3] == rdata}
            if _is_leased(owner) and len(frozen) == 1:
                (zone_ttl,) = frozen
                if zone_ttl - elapsed <= ttl < zone_ttl:
                    changed = True
                    ttl = zone_ttl
            out.add((owner, rdtype, ttl, rdata))
        return frozenset(out)

    fixed = replace(
        ours,
        answer=fix(ours.answer),
        authority=fix(ours.authority),
        additional=fix(ours.additional),
    )
    return (fixed, theirs) if changed else None


def _nsd_authority_ns(ctx: Context, ours: Reply, theirs: Reply) -> tuple[Reply, Reply] | None:
    """NSD adds the apex NS RRset to the authority section of a positive answer, and the
    addresses of in-zone name servers to the additional section."""
    zone_ns = {rr for rr in ctx.zones.apex_ns if rr in theirs.authority}
    if not theirs.answer or theirs.rcode != "NOERROR" or not zone_ns or ours.authority:
        return None
    extra = {
        rr for rr in theirs.additional if rr[0] in ctx.zones.ns_hosts and rr not in ours.additional
    }
    return ours, replace(
        theirs, authority=theirs.authority - zone_ns, additional=theirs.additional - extra
    )


def _complete_rrsets(zones: Zones, owner: str, section: frozenset[Record]) -> bool:
    """Whether ``section`` is one or more whole RRsets of ``owner`` as the zone holds them."""
    if not section or any(rr[0] != owner for rr in section):
        return False
    kinds = {rr[1] for rr in section}
    return all(
        zones.records.get((owner, kind)) == {rr for rr in section if rr[1] == kind}
        for kind in kinds
    )


def _addresses(zones: Zones, section: frozenset[Record]) -> bool:
    return all(
        rr[1] in ("A", "AAAA") and rr in zones.records.get((rr[0], rr[1]), frozenset())
        for rr in section
    )


def _any(ctx: Context, ours: Reply, theirs: Reply) -> tuple[Reply, Reply] | None:
    """RFC 8482: each answers ANY with whole RRsets of the name as the zone holds them, or,
    over UDP, srvdns sets TC because its pick (the SRV set) does not fit where theirs does."""
    question = ctx.question
    if question.qtype != "ANY" or ours.rcode != "NOERROR" or theirs.rcode != "NOERROR":
        return None
    owner = question.qname.lower().rstrip(".") + "."
    if theirs.tc or not _complete_rrsets(ctx.zones, owner, theirs.answer):
        return None
    if not _addresses(ctx.zones, theirs.additional):
        return None
    empty: frozenset[Record] = frozenset()
    if ours.tc:
        srv = ctx.zones.records.get((owner, "SRV"), frozenset())
        if ctx.transport.tcp or ours.answer or not srv:
            return None
        # the SRV set at its smallest: owner a pointer to the question, targets uncompressed
        smallest = sum(
            2 + 10 + 6 + len(dns.name.from_text(rr[3].split()[-1]).to_wire()) for rr in srv
        )
        if ours.size + smallest <= ctx.transport.limit:
            return None
        return ours, replace(theirs, tc=True, answer=empty, authority=empty, additional=empty)
    if ours.answer == theirs.answer or not _complete_rrsets(ctx.zones, owner, ours.answer):
        return None
    if not _addresses(ctx.zones, ours.additional):
        return None
    return ours, replace(theirs, answer=ours.answer, additional=ours.additional)


def _ds_at_cut(ctx: Context, ours: Reply, theirs: Reply) -> tuple[Reply, Reply] | None:
    """DS at the apex of a zone nested in another served zone: NSD and Knot answer from the
    parent side of the cut, srvdns from the child; both say there is none."""
    owner = ctx.question.qname.lower().rstrip(".") + "."
    parents = [z for z in ctx.zones.origins if owner.endswith("." + z) and owner != z]
    if ctx.question.qtype != "DS" or owner not in ctx.zones.origins or not parents:
        return None
    if ours.answer or theirs.answer or ours.rcode != "NOERROR" or theirs.rcode != "NOERROR":
        return None
    if {(rr[0], rr[1]) for rr in ours.authority} != {(owner, "SOA")}:
        return None
    parent = max(parents, key=len)
    if {(rr[0], rr[1]) for rr in theirs.authority} != {(parent, "SOA")}:
        return None
    return ours, replace(theirs, authority=ours.authority)


def _axfr_refused(ctx: Context, ours: Reply, theirs: Reply) -> tuple[Reply, Reply] | None:
    """Nobody may transfer the zone: srvdns (like NSD) says REFUSED, Knot NOTAUTH."""
    if ctx.question.qtype != "AXFR" or (ours.rcode, theirs.rcode) != ("REFUSED", "NOTAUTH"):
        return None
    return ours, replace(theirs, rcode="REFUSED")


def _would_not_fit(reply: Reply, missing: frozenset[Record], limit: int) -> bool:
    """Whether each record in ``missing`` is too large for what is left of ``limit``, even
    at its smallest (owner name compressed to a pointer)."""
    for _, rdtype, _, rdata in missing:
        rdlength = len(dns.rdata.from_text(dns.rdataclass.IN, rdtype, rdata).to_wire())
        if reply.size + 2 + 10 + rdlength <= limit:
            return False
    return True


def _additional_fit(ctx: Context, ours: Reply, theirs: Reply) -> tuple[Reply, Reply] | None:
    """Over UDP each leaves out of the additional section what does not fit (RFC 2181 §9)."""
    if ctx.transport.tcp or ours.tc or theirs.tc or ours.additional == theirs.additional:
        return None
    if ours.answer != theirs.answer or not _addresses(
        ctx.zones, ours.additional | theirs.additional
    ):
        return None
    limit = ctx.transport.limit
    if not (
        _would_not_fit(ours, theirs.additional - ours.additional, limit)
        and _would_not_fit(theirs, ours.additional - theirs.additional, limit)
    ):
        return None
    return ours, replace(theirs, additional=ours.additional)


ALLOWED: tuple[Allowed, ...] = (
    Allowed(
        "lease-ttl",
        frozenset({"nsd", "knot"}),
        _lease_ttl,
        "srvdns's dynamic TTLs: an RRset holding an instance with a heartbeat lease gets "
        "the seconds left on the lease, counted down on every query; the zone file froze "
        "the value of the moment of the export",
    ),
    Allowed(
        "nsd-authority-ns",
        frozenset({"nsd"}),
        _nsd_authority_ns,
        "NSD (minimal-responses: no, its default) puts the apex NS RRset in the authority "
        "section of positive answers and the name servers' addresses in the additional "
        "section, ahead of the SRV targets' addresses; that data is optional, and srvdns "
        "and Knot send minimal responses, which resolvers handle the same",
    ),
    Allowed(
        "any-rfc8482",
        frozenset({"nsd", "knot"}),
        _any,
        "RFC 8482 §4.1 lets an ANY answer be any one RRset of the name: srvdns picks the "
        "one a service-discovery client wants (SRV, with the targets' addresses), NSD and "
        "Knot the first RRset they store (A, or SOA/NS at the apex); over UDP srvdns's pick "
        "may not fit and set TC where theirs fits; all are whole RRsets of the zone",
    ),
    Allowed(
        "ds-at-nested-apex",
        frozenset({"nsd", "knot"}),
        _ds_at_cut,
        "DS at the apex of a zone nested in another served zone: NSD and Knot answer from "
        "the parent side of the cut (RFC 4035 §3.1.4.1), srvdns, which is not DNSSEC-aware "
        "and has no zone cuts, from the zone the name is in; both say NODATA",
    ),
    Allowed(
        "axfr-refused",
        frozenset({"knot"}),
        _axfr_refused,
        "a zone transfer nobody is allowed: srvdns and NSD answer REFUSED, Knot NOTAUTH "
        "(no ACL allows it); RFC 5936 §2.2.1 allows either",
    ),
    Allowed(
        "additional-fit",
        frozenset({"nsd", "knot"}),
        _additional_fit,
        "over UDP each server leaves out of the additional section whatever does not fit, "
        "without TC (RFC 2181 §9); which target addresses fit depends on record order "
        "(srvdns shuffles) and name compression",
    ),
)


def explain(ctx: Context, ours: Reply, theirs: Reply) -> tuple[list[str], list[str]]:
    """(names of the allowed differences that applied, what still differs)."""
    used = []
    for allowed in ALLOWED:
        if ctx.referee not in allowed.referees or ours == theirs:
            continue
        result = allowed.normalize(ctx, ours, theirs)
        if result is not None:
            ours, theirs = result
            used.append(allowed.name)
    problems = []
    for what in ("rcode", "aa", "tc", "edns"):
        if getattr(ours, what) != getattr(theirs, what):
            problems.append(
                f"{what}: srvdns {getattr(ours, what)}, {ctx.referee} {getattr(theirs, what)}"
            )
    for what, mine in ours.sections().items():
        other = theirs.sections()[what]
        if mine != other:
            only_ours, only_theirs = sorted(mine - other), sorted(other - mine)
            problems.append(f"{what}: only srvdns {only_ours}; only {ctx.referee} {only_theirs}")
    return used, problems
