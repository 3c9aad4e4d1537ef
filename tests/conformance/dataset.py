"""The registrations and the query corpus that srvdns, NSD and Knot are compared on."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from srvdns.catalog import target_label

ZONE = "service.local"
OTHER_ZONES = ("service.consul", "local")
"""Exported and served too: a second name for the catalog, and a zone around ``ZONE``."""

LEASED_SERVICE = "leased"
"""Its instance's heartbeat lease caps its TTLs, which srvdns counts down second by second."""

CONFIG = """\
[[zone]]
name = "service.local"
ttl = 5
negative_ttl = 3
service_ttl = { postgres = "30s", leased = "1h" }

[zone.soa]
ttl = "1m"
rname = "hostmaster.example.org"

[[zone.ns]]
name = "ns1.service.local"
address = ["127.0.0.1", "::1"]

[[zone.ns]]
name = "ns2.service.local"
address = ["127.0.0.2"]

[[zone.ns]]
name = "ns.example.net"

[[zone.service]]
name = "postgres"

[[zone.service.instances]]
id = "pg-primary"
address = "10.1.0.1"
port = 5432
tags = ["primary"]
meta = { version = "16", note = 'say "hi"; back\\slash', city = "Zürich" }

[[zone.service.instances]]
id = "pg-replica"
address = "10.1.0.2"
port = 5432
tags = ["replica"]
weight = 2

[[zone.service.instances]]
id = "pg-far"
address = "2001:db8:1::3"
port = 5432
tags = ["replica", "far"]
priority = 5

[[zone.service]]
name = "cache"
instances = [
    { address = "10.1.1.1", port = 6379, tags = ["redis"] },
    { address = "::1", port = 6379, tags = ["redis"], priority = 1 },
]

[[zone]]
name = "service.consul"
ttl = 10

[[zone]]
name = "local"
ttl = 7
"""

Body = dict[str, Any]


def _v4(n: int) -> str:
    return str(ipaddress.IPv4Address("10.20.0.0") + n)


def _v6(n: int) -> str:
    return str(ipaddress.IPv6Address("2001:db8:20::") + n)


# fmt: off
def registrations() -> list[tuple[str, str, Body]]:
    """(service, instance id, API body) of every instance registered over HTTP: services of
    1 to 200 instances, IPv4, IPv6 and IPv4-mapped, tags, meta that needs escaping or is
    split in 255-octet strings, weights and priorities, ids that are no host names."""
    out: list[tuple[str, str, Body]] = [
        ("web", "web-1", {"address": "10.0.0.1", "port": 8080, "tags": ["v1", "primary", "tcp"],
                          "meta": {"version": "1.2", "zone": "a"}, "weight": 10}),
        ("web", "web-2", {"address": "10.0.0.2", "port": 8080, "tags": ["v2", "canary"],
                          "meta": {"version": "1.3"}, "ttl": "1h"}),
        ("web", "web-3", {"address": "2001:db8::3", "port": 8443, "tags": ["v2"], "weight": 0,
                          "priority": 2}),
        ("web", "Web_4.x", {"address": "10.0.0.4", "port": 8080, "tags": ["v1"],
                            "meta": {"empty": ""}}),
        ("web", "web-5", {"address": "10.0.0.1", "port": 8081, "tags": ["primary"],
                          "meta": {"version": "1.2", "zone": "a"}}),
        ("solo", "solo", {"address": "192.0.2.7", "port": 1}),
        ("v6only", "a", {"address": "2001:db8:6::a", "port": 443, "tags": ["tls"]}),
        ("v6only", "b", {"address": "2001:DB8:6::B", "port": 443, "tags": ["tls"], "weight": 3}),
        ("mapped", "m-1", {"address": "::ffff:192.0.2.33", "port": 80}),
        ("meta", "long", {"address": "10.3.0.1", "port": 9, "tags": ["tcp", "instance"],
                          "meta": {"blob": "x" * 300, "utf8": "é" * 200, "k": "v=w"}}),
        ("instance", "i-1", {"address": "10.4.0.1", "port": 1, "tags": ["instance", "udp"]}),
        ("tcp", "t-1", {"address": "10.5.0.1", "port": 53, "tags": ["dns"]}),
        (LEASED_SERVICE, "l-1", {"address": "10.6.0.1", "port": 7, "ttl": "300s", "tags": ["hb"],
                                 "meta": {"lease": "300s"}}),
        (LEASED_SERVICE, "l-2", {"address": "10.6.0.2", "port": 7, "tags": ["hb"]}),
    ]
    out += [
        ("mid", f"mid-{n:02d}", {"address": _v4(100 + n), "port": 9000 + n,
                                 "tags": ["even" if n % 2 == 0 else "odd"]})
        for n in range(12)
    ]
    out += [
        ("edge", f"edge-{n:02d}", {"address": _v4(200 + n), "port": 7000, "weight": n})
        for n in range(24)
    ]
    for n in range(200):
        body: Body = {"address": _v6(n) if n % 4 == 3 else _v4(1000 + n), "port": 10000 + n,
                      "weight": n % 7, "priority": n % 3}
        if n % 10 == 0:
            body["tags"] = ["tenth"]
        if n % 50 == 0:
            body["meta"] = {"n": str(n)}
        out.append(("big", f"big-{n:03d}", body))
    return out
# fmt: on


LAPSING: list[tuple[str, str, Body]] = [
    ("gone", "g-1", {"address": "10.9.0.1", "port": 1, "ttl": "1s", "tags": ["ghost"]}),
    ("web", "web-6", {"address": "10.0.0.6", "port": 8080, "ttl": "1s", "tags": ["lost", "v1"]}),
]
"""Registered with a 1 s lease that lapses before the export: no longer in DNS."""


@dataclass(frozen=True, slots=True)
class Question:
    qname: str
    qtype: str


QTYPES = (
    *("A", "AAAA", "SRV", "TXT", "ANY", "NS", "SOA", "CNAME", "MX", "PTR", "DS", "DNSKEY"),
    *("RRSIG", "NSEC", "CAA", "HTTPS", "NAPTR", "NULL", "TYPE65280", "TYPE1234"),
)
DATA_QTYPES = ("A", "AAAA", "SRV", "TXT", "ANY", "NS", "SOA")
"""The types that can make a large answer: asked with every transport and buffer size."""

TRANSPORTS = ("udp-1232", "tcp")
SIZED_TRANSPORTS = ("udp", "udp-256", "udp-512", "udp-4096", "tcp-1232")
"""UDP without EDNS, with a buffer below the 512-octet floor, at it and above our 1232."""


# fmt: off
RELATIVE_NAMES = (
    # the apex, name servers, names that do not exist
    "", "ns1", "ns2", "NS1", "x.ns1", "nonexistent", "a.b.c.deep", "*", "*.web",
    "web\\.1.instance.web", "\\200web", "x" * 63 + "." + "y" * 63 + ".web",
    # empty non-terminals and the RFC 2782 parents of tags that are gone or never were
    "_tcp", "_udp", "_primary", "_v2", "_ghost", "_lost", "_nosuch", "_hb", "_instance",
    "_dns", "_",
    # every form of one service, in mixed case too
    "web", "WEB", "wEb", "v1.web", "V2.Web", "canary.web", "primary.web", "tcp.web",
    "lost.web", "nosuch.web", "x.v1.web", "_web._tcp", "_WEB._Udp", "_web._v1",
    "_web._canary", "_web._lost", "_web._nosuch", "x._web._tcp", "web._tcp", "_web.tcp",
    "_web", "instance.web", "INSTANCE.web", "web-1.instance.web", "WEB-1.Instance.Web",
    f"{target_label('Web_4.x')}.instance.web", "web-6.instance.web", "nosuch.instance.web",
    "x.web-1.instance.web", "y.x.web-1.instance.web",
    # the other services
    "solo", "solo.instance.solo", "instance.solo",
    "v6only", "tls.v6only", "_v6only._tls", "a.instance.v6only", "b.instance.v6only",
    "mapped", "m-1.instance.mapped",
    "meta", "long.instance.meta", "tcp.meta", "instance.meta", "_meta._instance", "_meta._tcp",
    "instance", "instance.instance", "udp.instance", "_instance._udp", "_instance._instance",
    "i-1.instance.instance", "x.instance",
    "tcp", "_tcp._tcp", "dns.tcp", "_tcp._dns", "t-1.instance.tcp",
    "leased", "hb.leased", "_leased._hb", "l-1.instance.leased", "l-2.instance.leased",
    "mid", "even.mid", "_mid._odd", "mid-00.instance.mid",
    "edge", "_edge._tcp", "edge-07.instance.edge",
    "big", "tenth.big", "_big._tenth", "_big._udp", "big-000.instance.big",
    "big-003.instance.big", "big-199.instance.big", "instance.big",
    "gone", "ghost.gone", "_gone._tcp", "g-1.instance.gone", "instance.gone",
    "postgres", "primary.postgres", "replica.postgres", "far.postgres", "_postgres._tcp",
    "pg-primary.instance.postgres", "pg-far.instance.postgres",
    "cache", "redis.cache", "cache-2.instance.cache",
)

OTHER_NAMES = {
    "service.consul": ("", "web", "_web._tcp", "web-1.instance.web", "instance.web", "_tcp",
                       "nosuch", "ns1"),
    "local": ("", "web", "v1.web", "_web._tcp", "_tcp", "web-1.instance.web", "nosuch",
              "service", "ns.service", "ervice", "xservice"),
}
"""A sample of the other zones; ``service`` and below are the nested zone ``ZONE``."""
# fmt: on

OUTSIDE = ("example.org", "com", "consul", "xservice.consul", "service.local.example")
"""Not in any served zone: REFUSED by all three."""


def _absolute(name: str, zone: str) -> str:
    return f"{name}.{zone}" if name else zone


def corpus() -> list[tuple[Question, str]]:
    """(question, transport) pairs: every name of ``ZONE`` with every type over UDP (EDNS,
    1232 octets) and TCP, the types that carry data also over the sized transports; a
    sample of the other zones; names outside every zone; zone transfers."""
    out: list[tuple[Question, str]] = []
    for name in RELATIVE_NAMES:
        for qtype in QTYPES:
            sized = SIZED_TRANSPORTS if qtype in DATA_QTYPES else ()
            out += [(Question(_absolute(name, ZONE), qtype), t) for t in (*TRANSPORTS, *sized)]
    for zone, relative in OTHER_NAMES.items():
        for name in relative:
            for qtype in ("A", "SRV", "SOA", "NS", "TXT", "ANY"):
                out += [(Question(_absolute(name, zone), qtype), t) for t in TRANSPORTS]
    for qname in OUTSIDE:
        out += [(Question(qname, qtype), "udp-1232") for qtype in ("A", "SOA", "NS")]
    out += [(Question(zone, "AXFR"), "tcp") for zone in (ZONE, *OTHER_ZONES)]
    return out
