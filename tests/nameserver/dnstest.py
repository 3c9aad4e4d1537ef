"""Shared fixtures data and helpers: a hand-built catalog, zones, queries, zone-file text."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from srvdns.catalog import Catalog, CatalogHolder
from srvdns.config import ZoneConfig, parse
from srvdns.model import Instance, Service, Status
from srvdns.nameserver.handler import Handler

NOW = 1_700_000_000.0

CONFIG: dict[str, Any] = {
    "zone": [
        {
            "name": "service.local",
            "ttl": 5,
            "negative_ttl": 10,
            "service_ttl": {"api": 30},
            "soa": {"ttl": 60},
            "ns": [
                {"name": "ns.service.local", "address": ["127.0.0.1", "::1"]},
                {"name": "ns.example.net"},
            ],
        },
        {"name": "service.consul", "ttl": 5},
        {"name": "local", "ttl": 7},
    ]
}

SOA = "service.local. 60 IN SOA ns.service.local. hostmaster.service.local. 7 3600 600 86400 10"
NEGATIVE_SOA = (
    "service.local. 10 IN SOA ns.service.local. hostmaster.service.local. 7 3600 600 86400 10"
)
CONSUL_NEGATIVE_SOA = (
    "service.consul. 5 IN SOA ns.service.consul. hostmaster.service.consul. 7 3600 600 86400 5"
)


def zones(config: dict[str, Any] | None = None) -> tuple[ZoneConfig, ...]:
    """The zones of a config document (CONFIG by default)."""
    return parse(config or CONFIG).zone


def instance(service: str, id: str, address: str, port: int = 8080, **kw: Any) -> Instance:
    return Instance(service=service, id=id, address=address, port=port, **kw)


def services() -> list[Service]:
    """The fixture registry: every name form, health state and lease situation."""
    web = [
        instance(
            "web",
            "web-1",
            "10.0.0.1",
            tags=("primary",),
            weight=10,
            meta=(("zone", "a"), ("version", "1.2")),
        ),
        # a lease with 2.5 s left: every RRset holding web-2 gets TTL 2
        instance(
            "web",
            "web-2",
            "10.0.0.2",
            tags=("canary",),
            meta=(("version", "1.3"),),
            ttl=30,
            last_heartbeat=NOW - 27.5,
        ),
        instance("web", "web-3", "2001:db8::3", status=Status.WARNING),
        instance("web", "web-4", "10.0.0.4", tags=("primary",), status=Status.CRITICAL),
        # lease lapsed 10 s ago: gone from DNS although its stored status is passing
        instance("web", "web-5", "10.0.0.5", tags=("primary",), ttl=10, last_heartbeat=NOW - 20),
    ]
    return [
        Service("web", tuple(web)),
        Service("api", (instance("api", "Api.1", "10.0.1.1", 9000, weight=5, priority=1),)),
        Service("db", (instance("db", "db-1", "10.0.2.1", 5432, status=Status.CRITICAL),)),
        Service(
            "cache",
            (
                instance("cache", "cache-1", "10.0.3.1", 6379, meta=(("role", "cache"),)),
                instance("cache", "cache-2", "10.0.3.1", 6380, meta=(("role", "cache"),)),
            ),
        ),
        Service("odd", (instance("odd", "odd-1", "10.0.4.1", 1, tags=("instance",)),)),
    ]


def catalog(extra: Iterable[Service] = (), *, index: int = 7) -> Catalog:
    return Catalog.build([*services(), *extra], index=index)


def make_handler(
    snapshot: Catalog | None = None,
    *,
    config: dict[str, Any] | None = None,
    seed: int = 1,
    edns_udp_size: int = 1232,
    clock: Callable[[], float] = lambda: NOW,
) -> Handler:
    return Handler(
        zones(config),
        CatalogHolder(snapshot if snapshot is not None else catalog()),
        clock=clock,
        rng=random.Random(seed),
        edns_udp_size=edns_udp_size,
    )


def query(
    qname: str,
    rdtype: str = "A",
    *,
    rdclass: str = "IN",
    edns: int = -1,
    payload: int = 1232,
    dnssec: bool = False,
    msg_id: int = 4242,
) -> bytes:
    """A query as wire bytes (RD set, as stub resolvers send it)."""
    message = dns.message.make_query(
        qname,
        dns.rdatatype.from_text(rdtype),
        dns.rdataclass.from_text(rdclass),
        use_edns=edns,
        payload=payload,
        want_dnssec=dnssec,
        id=msg_id,
    )
    return message.to_wire()


def parse_reply(wire: bytes | None) -> dns.message.Message:
    assert wire is not None, "expected a reply"
    return dns.message.from_wire(wire, one_rr_per_rrset=True)


def ask(
    handler: Handler, qname: str, rdtype: str = "A", *, tcp: bool = False, **kw: Any
) -> dns.message.Message:
    return parse_reply(handler.handle(query(qname, rdtype, **kw), tcp=tcp))


def lines(section: Sequence[Any]) -> list[str]:
    """A response section as sorted zone-file lines, one per record, whitespace collapsed."""
    out = [" ".join(line.split()) for rrset in section for line in rrset.to_text().splitlines()]
    return sorted(out)


def zone_lines(text: Iterable[str]) -> list[str]:
    return sorted(" ".join(line.split()) for line in text)


@dataclass(frozen=True)
class Case:
    """One query and the reply it must get, written as zone-file text."""

    qname: str
    qtype: str
    rcode: str = "NOERROR"
    answer: Sequence[str] = ()
    authority: Sequence[str] = ()
    additional: Sequence[str] = ()
    aa: bool = True
    qclass: str = "IN"
    note: str = field(default="", compare=False)

    def __str__(self) -> str:
        return f"{self.qname}/{self.qtype}"

    def check(self, reply: dns.message.Message) -> None:
        assert dns.rcode.to_text(reply.rcode()) == self.rcode
        assert bool(reply.flags & dns.flags.AA) == self.aa
        assert lines(reply.answer) == zone_lines(self.answer)
        assert lines(reply.authority) == zone_lines(self.authority)
        assert lines(reply.additional) == zone_lines(self.additional)
        question = f"{self.qname}. {self.qclass} {self.qtype}"
        assert [q.to_text() for q in reply.question] == [question]
