"""CPU per answer-cache hit while writes swap the snapshot, against none.

    python bench/hit_cost_under_writes.py [--every 650] [--queries 200000] [--repeat 3]

In process, no sockets: a handler over 1,000 services x 3 instances answers SRV and A
questions about random services from a warm cache (the handler's CPU alone, process CPU
time per query), first with the snapshot left alone, then with one service patched every
``--every`` queries (650: 200 writes/s at 130,000 queries/s, the churn benchmark's mix).
The difference, per write, is what a write costs the DNS side: its service's answers
built and packed again, and whatever every other hit pays because the snapshot changed.
Medians of ``--repeat`` rounds, the two cases alternating.  To compare two trees, run it
with each on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import dns.message

from srvdns.catalog import Catalog, CatalogHolder
from srvdns.config import ZoneConfig
from srvdns.model import Instance, Service
from srvdns.nameserver.handler import Handler

ZONE = "service.local"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=int, default=650, help="queries per write")
    parser.add_argument("--queries", type=int, default=200_000, help="queries per round")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per case (median)")
    args = parser.parse_args()
    services = [
        Service(
            f"svc-{s}",
            tuple(
                Instance(
                    service=f"svc-{s}",
                    id=f"i{n}",
                    address=f"10.{s // 250}.{s % 250}.{n + 1}",
                    port=9000,
                )
                for n in range(3)
            ),
        )
        for s in range(1000)
    ]
    holder = CatalogHolder(Catalog.build(services, index=1))
    handler = Handler([ZoneConfig(name=ZONE)], holder)
    wires = [
        dns.message.make_query(f"svc-{s}.{ZONE}", qtype, use_edns=0, payload=1232).to_wire()
        for s in range(1000)
        for qtype in ("SRV", "A")
    ]
    rng = random.Random(1)
    order = [rng.choice(wires) for _ in range(args.queries)]
    for _ in range(5):  # every question asked until its answer orders are all packed
        for wire in wires:
            handler.handle(wire)

    def round_ns(every: int) -> float:
        index = holder.current.index
        started = time.process_time()
        for n, wire in enumerate(order):
            if every and n % every == 0:
                index += 1
                holder.patch([services[rng.randrange(len(services))]], index=index)
            handler.handle(wire)
        return (time.process_time() - started) / len(order) * 1e9

    quiet: list[float] = []
    busy: list[float] = []
    for _ in range(args.repeat):
        quiet.append(round_ns(0))
        busy.append(round_ns(args.every))
    still, written = statistics.median(quiet), statistics.median(busy)
    per_write = (written - still) * args.every / 1000
    rounds = ", ".join(f"{ns:.0f}" for ns in quiet)
    print(f"no writes:              {still:6.0f} ns per query (rounds: {rounds})")
    rounds = ", ".join(f"{ns:.0f}" for ns in busy)
    print(f"a write every {args.every:>5} queries: {written:6.0f} ns per query (rounds: {rounds})")
    print(f"per write: {per_write:.0f} us of handler CPU")


if __name__ == "__main__":
    main()
