"""Time to build, journal and pack a zone for transfer, in process, by zone size.

    python bench/transfer_build.py [--instances 10000] [--per-service 10]

Builds a catalog of ``--instances`` instances (``--per-service`` per service, each with a
tag), then times: the first build of the transferred zone (every service's records), an
AXFR packed from it (first time: sorting and packing the records; again: from the packed
records kept per version), and the rebuild plus IXFR after one service changed (only that
service's records are made again).  Prints seconds and sizes.
"""

from __future__ import annotations

import argparse
import time

import dns.message
import dns.rrset

from srvdns.catalog import Catalog, CatalogHolder
from srvdns.config import parse
from srvdns.model import Instance, Service
from srvdns.nameserver.xfr import Transfers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--per-service", type=int, default=10)
    args = parser.parse_args()
    services = []
    for s in range(max(1, args.instances // args.per_service)):
        instances = tuple(
            Instance(
                service=f"svc{s}",
                id=f"i{n}",
                address=f"10.{s % 250}.{n // 250}.{n % 250}",
                port=8080,
                tags=("blue",),
            )
            for n in range(args.per_service)
        )
        services.append(Service(f"svc{s}", instances))
    holder = CatalogHolder(Catalog.build(services, index=1))
    zones = parse({"zone": [{"name": "service.local", "transfer_to": ["127.0.0.1"]}]}).zone
    transfers = Transfers(zones, holder)

    def axfr() -> tuple[float, int, int]:
        query = dns.message.make_query("service.local.", "AXFR")
        start = time.perf_counter()
        messages = transfers.respond(query.to_wire(), "127.0.0.1", tcp=True, answer=None)
        assert messages is not None
        return time.perf_counter() - start, len(messages), sum(map(len, messages))

    start = time.perf_counter()
    transfers.refresh()
    built = time.perf_counter() - start
    records = len(transfers.current("service.local").records)
    first, messages, octets = axfr()
    again, _, _ = axfr()
    holder.swap(holder.current.patched([Service("svc1", services[1].instances[1:])], index=2))
    start = time.perf_counter()
    transfers.refresh()
    rebuilt = time.perf_counter() - start
    query = dns.message.make_query("service.local.", "IXFR")
    query.authority.append(dns.rrset.from_text("service.local.", 0, "IN", "SOA", ". . 1 0 0 0 0"))
    start = time.perf_counter()
    ixfr = transfers.respond(query.to_wire(), "127.0.0.1", tcp=True, answer=None)
    ixfr_time = time.perf_counter() - start
    assert ixfr is not None
    print(f"{args.instances} instances, {len(services)} services: {records} records")
    print(f"first build          {built:8.3f} s")
    print(f"AXFR packed (first)  {first:8.3f} s  {messages} messages, {octets} octets")
    print(f"AXFR packed (again)  {again:8.3f} s")
    print(f"rebuild, 1 change    {rebuilt:8.3f} s")
    print(f"IXFR, 1 change       {ixfr_time:8.3f} s  {sum(map(len, ixfr))} octets")


if __name__ == "__main__":
    main()
