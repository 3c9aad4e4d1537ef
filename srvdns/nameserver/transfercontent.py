"""What a zone transfer carries: the zone's records at a moment, fixed so that one serial
always means one content; pure.

Queries get TTLs cut to the seconds left on a heartbeat lease, and an instance whose
lease lapsed leaves answers at once.  A secondary cannot count leases down: it serves
what it was given until the next transfer.  So the transferred zone is the zone with
every instance's health as it is at transfer time and no lease (TTLs are the zone's or
the service's own); a lapse changes the zone only when the health loop records it,
which moves the serial.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from types import MappingProxyType

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdtypes.ANY.SOA
from dnslib import QTYPE, RR, DNSBuffer  # type: ignore[import-untyped]

from srvdns.catalog import Catalog, ServiceView
from srvdns.config import ZoneConfig
from srvdns.model import Service
from srvdns.nameserver.zonecontent import zone_rrsets

Record = tuple[dns.name.Name, int, dns.rdata.Rdata]
"""One resource record: owner (absolute), TTL, RDATA (class IN)."""


def without_leases(catalog: Catalog, now: float) -> tuple[Catalog, float | None]:
    """``catalog`` with each instance's health as at ``now`` and no lease; with the
    soonest moment after ``now`` a lease lapses (None: none), when that stops holding."""
    views: dict[str, ServiceView] = {}
    horizon: float | None = None
    for name, view in catalog.services.items():
        if all(instance.ttl is None for instance in view.instances):
            views[name] = view
            continue
        instances = []
        for instance in view.instances:
            expires = instance.lease_expires
            if expires is not None and expires > now:
                horizon = expires if horizon is None else min(horizon, expires)
            status = instance.effective_status(now)
            instances.append(replace(instance, ttl=None, status=status))
        views[name] = ServiceView.build(Service(name=name, instances=tuple(instances)))
    frozen = Catalog(
        generation=catalog.generation, index=catalog.index, services=MappingProxyType(views)
    )
    return frozen, horizon


def zone_records(
    zone: ZoneConfig, catalog: Catalog, now: float, *, other_zones: Iterable[ZoneConfig] = ()
) -> tuple[dns.rdtypes.ANY.SOA.SOA, frozenset[Record], float | None]:
    """(the SOA RDATA, every other record, when this stops holding) of ``zone`` as
    transferred at ``now`` (see the module docstring)."""
    frozen, horizon = without_leases(catalog, now)
    soa: dns.rdtypes.ANY.SOA.SOA | None = None
    records: list[Record] = []
    for rrset in zone_rrsets(zone, frozen, now, other_zones=other_zones):
        for rr in rrset.records:
            record = convert(rr)
            if rrset.rdtype == QTYPE.SOA:
                assert isinstance(record[2], dns.rdtypes.ANY.SOA.SOA)
                soa = record[2]
            else:
                records.append(record)
    if soa is None:
        raise AssertionError(f"zone {zone.name} has no SOA")
    return soa, frozenset(records), horizon


def convert(rr: RR) -> Record:
    """A dnslib record as dnspython's, through its RDATA octets."""
    buffer = DNSBuffer()
    rr.rdata.pack(buffer)
    data = bytes(buffer.data)
    rdata = dns.rdata.from_wire(dns.rdataclass.IN, rr.rtype, data, 0, len(data))
    return dns.name.from_text(str(rr.rname)), int(rr.ttl), rdata
