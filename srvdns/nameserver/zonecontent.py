"""Every RRset of a zone at ``now``, found by asking the answer logic itself; pure.

A zone export (and, later, AXFR) must hold exactly what queries get, so nothing here
decides what a name answers: each name a zone can hold is routed with
``names.route`` and looked up with ``authority.lookup``, as a query would be, and
every successful answer becomes one RRset.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dnslib import QTYPE, RR, DNSBuffer, DNSLabel  # type: ignore[import-untyped]

from srvdns.catalog import TARGET_PARENT_LABEL, Catalog
from srvdns.config import ZoneConfig
from srvdns.nameserver import names, records
from srvdns.nameserver.authority import Outcome, lookup

RDTYPES = (QTYPE.SOA, QTYPE.NS, QTYPE.A, QTYPE.TXT, QTYPE.AAAA, QTYPE.SRV)
"""Every type srvdns has data of; any other type at any name is NODATA."""


@dataclass(frozen=True, slots=True)
class RRset:
    """The records of one owner name and type, with their one TTL (RFC 2181 §5.2)."""

    owner: DNSLabel
    """Absolute and lower-case."""
    rdtype: int
    ttl: int
    records: tuple[RR, ...]


def owner_names(zone: ZoneConfig, catalog: Catalog) -> list[names.Labels]:
    """Every name (labels relative to the origin) that may hold data, in no order.

    The apex; each in-zone name server host; for every service ``<service>``,
    ``_<service>._tcp`` and ``_<service>._udp``; for each of its tags ``<tag>.<service>``
    and ``_<service>._<tag>``; for each instance its SRV target
    ``<label>.instance.<service>``.  These are all the spellings ``names.route`` gives
    data to, so no name that answers is missed; a name whose instances are all
    unhealthy is routed and looked up like the others and simply gets no RRset.
    Empty non-terminals (``_tcp``, ``instance.<service>``) need no entry: in a zone
    file they exist because names below them do.
    """
    suffix = "." + zone.name
    found: dict[names.Labels, None] = {(): None}
    for server in zone.ns:
        if server.name.endswith(suffix):
            found[tuple(server.name[: -len(suffix)].split("."))] = None
    for view in catalog.services.values():
        service = view.name
        spellings = [(service,), (f"_{service}", "_tcp"), (f"_{service}", "_udp")]
        for tag in sorted({tag for instance in view.instances for tag in instance.tags}):
            spellings += [(tag, service), (f"_{service}", f"_{tag}")]
        spellings += [(label, TARGET_PARENT_LABEL, service) for label in view.targets]
        found.update(dict.fromkeys(spellings))
    return list(found)


def zone_rrsets(
    zone: ZoneConfig,
    catalog: Catalog,
    now: float,
    *,
    other_zones: Iterable[ZoneConfig] = (),
) -> tuple[RRset, ...]:
    """Every RRset of ``zone`` that queries get at ``now``: the SOA first, then the rest in
    DNSSEC canonical order (RFC 4034 §6.1), each RRset's records sorted.

    ``other_zones`` are the zones served alongside this one.  A zone nested inside this one
    answers every name at or below its apex, so those names are left out; in their place
    the file delegates to it (RFC 1034 §4.2.1): its NS RRset at the cut, with glue for
    name servers below the cut, as that zone answers them.
    """
    origin = _labels(zone.name)
    nested = {
        relative: other
        for other in other_zones
        if (relative := names.relative_to(_labels(other.name), origin))
    }
    cuts = [cut for cut in nested if not any(_below(cut, other) for other in nested)]
    found: list[tuple[names.Labels, RRset]] = []
    for relative in owner_names(zone, catalog):
        if any(_below(relative, cut) or relative == cut for cut in cuts):
            continue
        owner = records.name(".".join((*relative, zone.name)))
        if records.fits(owner):  # a longer name can neither be asked nor stored
            route = names.route(relative, zone.reserved_labels)
            found += [(relative, rrset) for rrset in _rrsets_at(zone, catalog, now, route, owner)]
    for cut in cuts:
        for rrset in _delegation(nested[cut], catalog, now):
            found.append((_labels(rrset.owner)[: -len(origin) or None], rrset))
    found.sort(key=lambda entry: (_canonical(entry[0]), _type_order(entry[1].rdtype)))
    return tuple(rrset for _, rrset in found)


def _delegation(child: ZoneConfig, catalog: Catalog, now: float) -> Iterator[RRset]:
    """The NS RRset of ``child``'s apex and the addresses of its name servers below it."""
    apex = records.name(child.name)
    yield from _rrsets_at(child, catalog, now, names.Apex(), apex, (QTYPE.NS,))
    for host in sorted(child.reserved_labels):
        owner = records.name(f"{host}.{child.name}")
        route = names.NameServer(host)
        yield from _rrsets_at(child, catalog, now, route, owner, (QTYPE.A, QTYPE.AAAA))


def _rrsets_at(
    zone: ZoneConfig,
    catalog: Catalog,
    now: float,
    route: names.Route,
    owner: DNSLabel,
    rdtypes: Iterable[int] = RDTYPES,
) -> Iterator[RRset]:
    for rdtype in rdtypes:
        answer = lookup(zone, catalog, route, rdtype, owner=owner, now=now, rng=random.Random(0))
        if answer.outcome is not Outcome.SUCCESS or not answer.answer:
            continue
        rrs = sorted(answer.answer, key=_rdata_wire)
        ttls = {rr.ttl for rr in rrs}
        if len(ttls) != 1 or any(rr.rtype != rdtype or rr.rname != owner for rr in rrs):
            raise AssertionError(f"{owner} {QTYPE[rdtype]}: the answer is not one RRset")
        yield RRset(owner, rdtype, ttls.pop(), tuple(rrs))


def _rdata_wire(rr: RR) -> bytes:
    """The record's RDATA as packed: a stable order for the records of an RRset."""
    buffer = DNSBuffer()
    rr.rdata.pack(buffer)
    return bytes(buffer.data)


def _labels(name: str | DNSLabel) -> names.Labels:
    label = records.name(name) if isinstance(name, str) else name
    return names.lower_labels(label.label)


def _below(name: names.Labels, ancestor: names.Labels) -> bool:
    return len(name) > len(ancestor) and name[len(name) - len(ancestor) :] == ancestor


def _type_order(rdtype: int) -> tuple[int, int]:
    """SOA first, then NS, then the others by number."""
    return (0 if rdtype == QTYPE.SOA else 1 if rdtype == QTYPE.NS else 2, rdtype)


def _canonical(relative: names.Labels) -> tuple[bytes, ...]:
    """RFC 4034 §6.1: labels compared right to left as lower-case octets; the apex first."""
    return tuple(label.encode("latin-1") for label in reversed(relative))
