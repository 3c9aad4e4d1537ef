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

import functools
from collections.abc import Iterable
from dataclasses import replace
from types import MappingProxyType

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
from dnslib import QTYPE, RR, DNSBuffer  # type: ignore[import-untyped]

from srvdns.catalog import Catalog, ServiceView
from srvdns.config import ZoneConfig
from srvdns.model import Service, Status
from srvdns.nameserver.zonecontent import zone_rrsets

Record = tuple[bytes, int, int, bytes]
"""One resource record of class IN, packed: owner name (uncompressed wire form), type,
TTL, RDATA.  Plain octets hash and compare fast, and a transfer sends them as they are.
The RDATA of every type srvdns serves except SOA holds no compressed name (dnslib packs
SRV targets in full, and an NS RDATA is one name); the SOA is read apart."""


def _without_leases(view: ServiceView, now: float) -> tuple[ServiceView, float | None]:
    """``view`` with each instance's health as at ``now`` and no lease; with the soonest
    moment after ``now`` one of its leases lapses (None: none)."""
    if all(instance.ttl is None for instance in view.instances):
        return view, None
    horizon: float | None = None
    instances = []
    for instance in view.instances:
        expires = instance.lease_expires
        if expires is not None and expires > now:
            horizon = expires if horizon is None else min(horizon, expires)
        instances.append(replace(instance, ttl=None, status=instance.effective_status(now)))
    return ServiceView.build(Service(name=view.name, instances=tuple(instances))), horizon


def _statuses(view: ServiceView, now: float) -> tuple[Status, ...]:
    return tuple(instance.effective_status(now) for instance in view.instances)


class ZoneContent:
    """Builds a zone's transferred contents, service by service, reusing the records of
    every service whose view and health did not change since the last build.

    No answer at a service's names depends on another service, so the zone is the apex
    records plus each service's own; a snapshot patched by one write shares every other
    service's view object with the one before, so a change costs one service's records.
    """

    def __init__(self, zone: ZoneConfig, other_zones: Iterable[ZoneConfig] = ()) -> None:
        self.zone = zone
        self._other_zones = tuple(other_zones)
        self._services: dict[str, tuple[ServiceView, tuple[Status, ...], frozenset[Record]]] = {}

    def build(
        self, catalog: Catalog, now: float
    ) -> tuple[dns.rdtypes.ANY.SOA.SOA, frozenset[Record], float | None]:
        """(the SOA RDATA, every other record, when this stops holding: the next lease
        lapse) of the zone as transferred at ``now`` (see the module docstring)."""
        soa, base = self._records(Catalog(generation=catalog.generation, index=catalog.index), now)
        horizon: float | None = None
        parts = [base]
        for name, view in catalog.services.items():
            statuses = _statuses(view, now)
            cached = self._services.get(name)
            if cached is not None and cached[0] is view and cached[1] == statuses:
                records = cached[2]
            else:
                frozen, _ = _without_leases(view, now)
                _, everything = self._records(
                    Catalog(index=catalog.index, services=MappingProxyType({name: frozen})), now
                )
                records = everything - base
                self._services[name] = (view, statuses, records)
            parts.append(records)
            for instance in view.instances:
                expires = instance.lease_expires
                if expires is not None and expires > now:
                    horizon = expires if horizon is None else min(horizon, expires)
        for name in [name for name in self._services if name not in catalog.services]:
            del self._services[name]
        return soa, frozenset().union(*parts), horizon

    def _records(
        self, catalog: Catalog, now: float
    ) -> tuple[dns.rdtypes.ANY.SOA.SOA, frozenset[Record]]:
        soa: dns.rdtypes.ANY.SOA.SOA | None = None
        records: list[Record] = []
        for rrset in zone_rrsets(self.zone, catalog, now, other_zones=self._other_zones):
            for rr in rrset.records:
                record = convert(rr)
                if rrset.rdtype == QTYPE.SOA:
                    soa = soa_of(record)
                else:
                    records.append(record)
        if soa is None:
            raise AssertionError(f"zone {self.zone.name} has no SOA")
        return soa, frozenset(records)


def zone_records(
    zone: ZoneConfig, catalog: Catalog, now: float, *, other_zones: Iterable[ZoneConfig] = ()
) -> tuple[dns.rdtypes.ANY.SOA.SOA, frozenset[Record], float | None]:
    """``ZoneContent(zone, other_zones).build(catalog, now)``, without reuse."""
    return ZoneContent(zone, other_zones).build(catalog, now)


def convert(rr: RR) -> Record:
    """A dnslib record as packed octets: owner, type, TTL, RDATA (names in it in full)."""
    buffer = DNSBuffer()
    rr.rdata.pack(buffer)
    return _owner(rr.rname.label), int(rr.rtype), int(rr.ttl), bytes(buffer.data)


@functools.lru_cache(maxsize=65536)
def _owner(labels: tuple[bytes, ...]) -> bytes:
    """Owner names repeat (one per record of a name): pack each once."""
    return b"".join(bytes((len(label),)) + label for label in labels) + b"\x00"


def soa_of(record: Record) -> dns.rdtypes.ANY.SOA.SOA:
    """The SOA RDATA of a packed SOA record."""
    _, _, _, data = record
    soa = dns.rdata.from_wire(dns.rdataclass.IN, dns.rdatatype.SOA, data, 0, len(data))
    assert isinstance(soa, dns.rdtypes.ANY.SOA.SOA)
    return soa
