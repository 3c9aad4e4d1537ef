"""CPU of a registration amid DNS answers, against the same registration alone.

    python bench/write_cost_in_mix.py [--services 1000] [--every 750] [--rounds 5]

In process, no sockets, so that a run repeats to within a few percent: a SQLite
registry in a temporary directory (its database thread, as ``srvdns serve`` opens it),
the API application as ``srvdns serve`` wraps it, called as ASGI on uvloop (the body
``bench/lone_registration_cost.py`` sends), and the name server's handler over the
registry's own snapshot.  ``--services`` services of 3 instances are registered, plus
one more instance in each (the ones the registrations below replace), and every SRV and
A question about them is answered until its answer cache holds every record order.

Then, for each round, ``--every`` times 200 answers to random questions about those
services (the answer-cache hits of a server under load), three ways, each from a warm
cache: with nothing else; with a registration after every ``--every`` answers (750:
200 writes/s at 150,000 answers/s, the churn benchmark's mix); and the registrations
alone.  The difference between the first two, per registration, is what a write costs
a serving process (its database thread too): the write itself, and whatever the answers
around it pay because it ran between them.  Printed, as medians over ``--rounds``:

- ``unasked``: registrations to services nobody asks about (they change no cached
  answer): the write and the caches it evicts;
- ``asked``: registrations to the services asked about: also the answers each one
  drops, built and packed again by the next questions (misses, then further orders).

Then one more ``asked`` pass times each answer: how many were misses, the median miss,
and the mean of the 50 hits after each write against the later ones.

A registration costs a serving process two to three times what it costs alone: code
that runs a few hundred times a second finds none of itself in the CPU's caches, and
leaves the answers' code and data to be fetched again.  This is the figure to watch for
the churn target of ``bench/dns_throughput.py --churn``, whose runs move by several
percent: here a change of 10 µs per write shows.  To compare two trees, run it with
``PYTHONPATH`` set to each in turn.  Installs nothing; no network.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import dns.message

sys.path.insert(0, str(Path(__file__).parent))
from registration_loop_cost import register, requests, served

from srvdns.config import ZoneConfig
from srvdns.nameserver.handler import Handler
from srvdns.registry.registry import Registry

ZONE = "service.local"
ANSWERS = 200
"""Registrations per timed pass (``--every`` answers each)."""


class Mix:
    """The registry, the API application and the handler, and the timed passes."""

    def __init__(self, registry: Registry, services: int, every: int) -> None:
        self.registry = registry
        self.app = served(registry)
        self.handler = Handler([ZoneConfig(name=ZONE)], registry.holder)
        self.every = every
        self.services = services
        self.wires = [
            dns.message.make_query(f"svc-{s}.{ZONE}", qtype, use_edns=0, payload=1232).to_wire()
            for s in range(services)
            for qtype in ("SRV", "A")
        ]
        rng = random.Random(1)
        self.order = [rng.choice(self.wires) for _ in range(every * ANSWERS)]

    async def fill(self) -> None:
        """Register the services and the instances the passes replace."""
        for s in range(self.services):
            for i in range(3):
                data = f'{{"address": "10.{s // 250}.{s % 250}.{i + 1}", "port": 9000}}'
                await register(self.app, f"/v1/services/svc-{s}/instances/i{i}", data.encode())
        for prefix in ("svc", "unasked"):
            for path, body in requests(prefix, self.services):
                await register(self.app, path, body)

    def warm(self) -> None:
        """Every question asked until its answer holds every record order."""
        for _ in range(5):
            for wire in self.wires:
                self.handler.handle(wire)

    async def answers(self, writes: list[tuple[str, bytes]] | None) -> float:
        """CPU seconds of one pass of answers, with a registration every ``every``."""
        self.warm()
        started = time.process_time()
        for n, wire in enumerate(self.order):
            if writes is not None and n % self.every == 0:
                await register(self.app, *writes[n // self.every % len(writes)])
            self.handler.handle(wire)
        return time.process_time() - started

    async def alone(self, writes: list[tuple[str, bytes]]) -> float:
        """CPU seconds of a pass's registrations without the answers."""
        started = time.process_time()
        for n in range(ANSWERS):
            await register(self.app, *writes[n % len(writes)])
        return time.process_time() - started

    async def probe(self, writes: list[tuple[str, bytes]]) -> str:
        """One pass with each answer timed: misses, and hits just after a write (the
        hits that pack a further order among them)."""
        self.warm()
        store = self.handler._udp_cache
        assert store is not None
        clock = time.perf_counter_ns
        misses: list[int] = []
        near: list[int] = []
        far: list[int] = []
        since = 0
        for n, wire in enumerate(self.order):
            if n % self.every == 0:
                await register(self.app, *writes[n // self.every % len(writes)])
                since = 0
            before = store.get(wire[2:])
            started = clock()
            self.handler.handle(wire)
            took = clock() - started
            since += 1
            miss = store.get(wire[2:]) is not before  # a new entry: the answer was built
            (misses if miss else near if since <= 50 else far).append(took)
        miss_us = statistics.median(misses) / 1000
        near_ns, far_ns = statistics.mean(near), statistics.mean(far)
        return (
            f"{len(misses) / ANSWERS:.1f} misses per write, median {miss_us:.1f} us "
            f"({sum(misses) / ANSWERS / 1000:.0f} us per write); hits: the 50 after a write "
            f"{near_ns:.0f} ns on average, the later ones {far_ns:.0f} ns"
        )


async def measure(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="srvdns-mix-") as tmp:
        registry = Registry.open(f"sqlite:///{tmp}/registry.db")
        try:
            mix = Mix(registry, args.services, args.every)
            await mix.fill()
            gc.collect()
            gc.freeze()
            try:  # the garbage collection of a serving process (a tree that sets none: CPython's)
                from srvdns.collection import collect_while_serving
            except ImportError:
                pass
            else:
                collect_while_serving()
            cases: dict[str, list[tuple[str, bytes]]] = {
                "unasked": requests("unasked", args.services),
                "asked": requests("svc", args.services),
            }
            print(
                f"{args.services} services x 4 instances; a registration every {args.every} "
                f"answers; medians of {args.rounds} rounds:"
            )
            for name, writes in cases.items():
                mixed, alone, hits = [], [], []
                for _ in range(args.rounds):
                    quiet = await mix.answers(None)
                    busy = await mix.answers(writes)
                    mixed.append((busy - quiet) / ANSWERS * 1e6)
                    alone.append(await mix.alone(writes) / ANSWERS * 1e6)
                    hits.append(quiet / len(mix.order) * 1e9)
                print(
                    f"  {name:<8} per registration: in the mix {statistics.median(mixed):4.0f} us, "
                    f"alone {statistics.median(alone):4.0f} us "
                    f"(rounds in the mix: {', '.join(f'{us:.0f}' for us in mixed)}; "
                    f"a hit without writes {statistics.median(hits):.0f} ns)",
                    flush=True,
                )
            print(f"  asked, each answer timed: {await mix.probe(cases['asked'])}")
        finally:
            registry.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--every", type=int, default=750, help="answers per registration")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # asyncio's own loop, as srvdns serve falls back to
        asyncio.run(measure(args))
    else:
        uvloop.run(measure(args))


if __name__ == "__main__":
    main()
