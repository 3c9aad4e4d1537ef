"""One hash over many replies of a seeded handler, to show two trees answer alike.

    python bench/reply_digest.py
    PYTHONPATH=/path/to/other/tree python bench/reply_digest.py

A change meant to make answers cheaper must not change a single octet of them.  This
asks a handler whose random order comes from a fixed seed about services of 1 to 40
instances (IPv4 and IPv6, tags, metadata, weights, priorities, a heartbeat lease) in two
zones: 13 names in two spellings, 8 types, without EDNS and with two payload sizes,
over UDP and TCP, five times each, with and without the answer cache and
``udp_answer_limit``.  It prints how many replies it hashed and their SHA-256: the same
figures from two trees mean the same replies, records in the same order.
"""

from __future__ import annotations

import hashlib
import random

import dns.message

from srvdns.catalog import Catalog, CatalogHolder
from srvdns.config import ZoneConfig
from srvdns.model import Instance, Service
from srvdns.nameserver.handler import Handler

NOW = 1010.5
NAMES = (
    "s1",
    "s2",
    "S4",
    "s16",
    "s40",
    "web.s4",
    "_web._tcp.s16",
    "i-1.instance.s4",
    "I-3.instance.s16",
    "nope",
    "",
    "instance.s16",
    "_tcp",
)
TYPES = ("SRV", "A", "AAAA", "TXT", "ANY", "NS", "SOA", "MX")


def _instance(service: str, n: int) -> Instance:
    return Instance(
        service=service,
        id=f"I-{n}",
        address=f"10.1.{n // 256}.{n % 256}" if n % 3 else f"2001:db8::{n:x}",
        port=1000 + n,
        tags=("web", "instance") if n % 2 else (),
        meta=(("k", "v" * n),) if n % 2 else (),
        weight=n % 4,
        priority=n % 3,
        ttl=30 if n == 2 else None,
        last_heartbeat=1000.0,
    )


def _catalog() -> Catalog:
    services = [
        Service(f"s{size}", tuple(_instance(f"s{size}", n) for n in range(1, size + 1)))
        for size in (1, 2, 4, 16, 40)
    ]
    return Catalog.build(services, index=7)


def digest() -> tuple[int, str]:
    """(replies hashed, their SHA-256)."""
    catalog = _catalog()
    zones = [ZoneConfig(name="service.local"), ZoneConfig(name="Other.Example")]
    out = hashlib.sha256()
    count = 0
    for cached in (False, True):
        for limit in (None, 3):
            handler = Handler(
                zones,
                CatalogHolder(catalog),
                clock=lambda: NOW,
                rng=random.Random(5),
                answer_cache=cached,
                udp_answer_limit=limit,
            )
            for name in NAMES:
                for zone in ("service.local", "other.example"):
                    qname = f"{name}.{zone}" if name else zone
                    for rdtype in TYPES:
                        for payload in (None, 1232, 4096):
                            query = dns.message.make_query(
                                qname,
                                rdtype,
                                id=77,
                                use_edns=None if payload is None else 0,
                                payload=payload or 1232,
                            )
                            wire = query.to_wire()
                            for tcp in (False, True):
                                for _ in range(5):
                                    reply = handler.handle(wire, tcp=tcp)
                                    out.update(b"-" if reply is None else reply)
                                    count += 1
    return count, out.hexdigest()


def main() -> None:
    count, hexdigest = digest()
    print(f"{count} replies, sha256 {hexdigest}")


if __name__ == "__main__":
    main()
