"""CPU cost of an answer-cache miss: building a service answer's reply from the catalog.

    python bench/answer_miss_cost.py [--repeat 5] [--sizes 1,4,16]

Under write churn every registration drops the cached answers of one service, and the
next queries about it are misses: the records are built from the snapshot and packed,
then packed again in a few more record orders (``cache.ORDERS``) by the hits that
follow.  For SRV, A, AAAA and TXT questions (with EDNS, 1232 octets: no answer here is
truncated) about a service of 1, 4 and 16 instances this prints the median over
``--repeat`` runs of the process CPU microseconds

- per miss (a handler without answer cache: every query is built and packed), and
- per miss plus its further orders (a handler with the cache, emptied before each
  question, asked ``ORDERS`` times: the miss, then the hits that pack other orders).

To compare two trees (e.g. before and after a change), run it with each on PYTHONPATH:
``PYTHONPATH=/path/to/other/tree python bench/answer_miss_cost.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import dns.message
import dns.rdatatype

from srvdns.catalog import Catalog, CatalogHolder
from srvdns.config import ZoneConfig
from srvdns.model import Instance, Service
from srvdns.nameserver import cache
from srvdns.nameserver.handler import Handler

ZONE = "service.local"
QTYPES = ("SRV", "A", "AAAA", "TXT")


def _catalog(size: int) -> Catalog:
    """Service ``v4`` with ``size`` IPv4 instances carrying metadata, ``v6`` with IPv6 ones."""
    v4 = tuple(
        Instance(
            service="v4",
            id=f"v4-{n}",
            address=f"10.0.{n // 256}.{n % 256}",
            port=8000 + n,
            meta=(("version", f"1.{n}"), ("zone", "a")),
        )
        for n in range(1, size + 1)
    )
    v6 = tuple(
        Instance(service="v6", id=f"v6-{n}", address=f"2001:db8::{n:x}", port=8000 + n)
        for n in range(1, size + 1)
    )
    return Catalog.build([Service("v4", v4), Service("v6", v6)], index=1)


def _query(qtype: str) -> bytes:
    service = "v6" if qtype == "AAAA" else "v4"
    rdtype = dns.rdatatype.from_text(qtype)
    query = dns.message.make_query(f"{service}.{ZONE}", rdtype, id=1, use_edns=0, payload=1232)
    return query.to_wire()


def _median_us(run: Callable[[], None], count: int, repeat: int) -> float:
    """Median over ``repeat`` runs of the process CPU time of one ``run``, in us."""
    samples = []
    for _ in range(repeat):
        start = time.process_time()
        for _ in range(count):
            run()
        samples.append((time.process_time() - start) / count * 1e6)
    return statistics.median(samples)


def measure(size: int, qtype: str, *, repeat: int, count: int) -> tuple[float, float]:
    """(us per miss, us per miss and its further orders) for one question."""
    catalog = _catalog(size)
    wire = _query(qtype)
    uncached = Handler([ZoneConfig(name=ZONE)], CatalogHolder(catalog), answer_cache=False)
    cached = Handler([ZoneConfig(name=ZONE)], CatalogHolder(catalog))
    assert uncached.handle(wire) is not None
    store = cached._udp_cache
    assert store is not None

    def miss() -> None:
        uncached.handle(wire)

    def miss_and_orders() -> None:
        store.clear()
        store.size = 0
        for _ in range(cache.ORDERS):
            cached.handle(wire)

    return _median_us(miss, count, repeat), _median_us(miss_and_orders, count // 2, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--sizes", default="1,4,16", help="instances per service")
    parser.add_argument("--count", type=int, default=2000, help="misses per run")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"{'qtype':<6}{'instances':>10}{'us/miss':>10}{'us/miss+orders':>16}")
    for qtype in QTYPES:
        for size in sizes:
            count = max(200, args.count // max(1, size // 4))
            miss, orders = measure(size, qtype, repeat=args.repeat, count=count)
            print(f"{qtype:<6}{size:>10}{miss:>10.1f}{orders:>16.1f}")


if __name__ == "__main__":
    main()
