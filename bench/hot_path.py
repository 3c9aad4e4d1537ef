"""CPU per query of srvdns's UDP hot path (answer-cache hits), without dnsperf's noise.

    python bench/hot_path.py [--rounds 2000] [--repeat 5]

Builds a ``Handler`` over one service with three instances, binds a UDP socket on
loopback, and for each round sends a batch of 64 cached queries (A and SRV) from a
client socket, then times one call of the listener's reader callback (``recvfrom_into``,
``handle``, ``sendto`` for each datagram: everything srvdns does per query), then reads
the replies.  Prints the median over ``--repeat`` runs of the CPU nanoseconds per query,
in the listener alone and in ``Handler.handle`` alone.  With ``--entries N``, also the
time one ``/metrics`` scrape of the DNS counters takes with N answer-cache entries.

To compare two trees (e.g. before and after a change), run it with each on PYTHONPATH:
``PYTHONPATH=/path/to/other/tree python bench/hot_path.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import socket
import statistics
import time

import dns.message
import dns.rdatatype

from srvdns.catalog import Catalog, CatalogHolder
from srvdns.config import ZoneConfig
from srvdns.model import Instance, Service
from srvdns.nameserver import server
from srvdns.nameserver.handler import Handler

BATCH = 64


def _handler() -> Handler:
    instances = [
        Instance(service="web", id=f"web-{n}", address=f"10.0.0.{n}", port=8080)
        for n in range(1, 4)
    ]
    catalog = Catalog.build([Service("web", tuple(instances))], index=1)
    return Handler([ZoneConfig(name="service.local")], CatalogHolder(catalog))


def _queries() -> list[bytes]:
    out = []
    for n in range(BATCH):
        rdtype = dns.rdatatype.A if n % 2 else dns.rdatatype.SRV
        name = "web.service.local" if rdtype == dns.rdatatype.A else "_web._tcp.service.local"
        out.append(dns.message.make_query(name, rdtype, id=n).to_wire())
    return out


async def _listener_ns(handler: Handler, rounds: int) -> float:
    """CPU ns per query of the reader callback."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    client.settimeout(2)
    target = sock.getsockname()
    params = inspect.signature(server._UdpListener).parameters
    args: list[object] = [handler, sock]
    if "stats" in params:
        args.append(getattr(handler, "stats", None))
    listener = server._UdpListener(*args)  # type: ignore[arg-type]
    asyncio.get_running_loop().remove_reader(sock.fileno())  # driven by hand below
    queries = _queries()
    for wire in queries * 4:  # fill the answer cache, every record order
        handler.handle(wire)
    spent = 0
    for _ in range(rounds):
        for wire in queries:
            client.sendto(wire, target)
        started = time.process_time_ns()
        listener._ready()
        spent += time.process_time_ns() - started
        for _ in range(BATCH):
            client.recv(4096)
    sock.close()
    client.close()
    return spent / (rounds * BATCH)


def _handle_ns(handler: Handler, rounds: int) -> float:
    """CPU ns per call of ``Handler.handle`` on a cache hit."""
    queries = _queries()
    handle = handler.handle
    started = time.process_time_ns()
    for _ in range(rounds):
        for wire in queries:
            handle(wire, tcp=False)
    return (time.process_time_ns() - started) / (rounds * BATCH)


def _scrape_ms(entries: int) -> float:
    """Milliseconds to render the DNS metrics with ``entries`` cached answers."""
    from prometheus_client import CollectorRegistry, generate_latest

    from srvdns.nameserver.metrics import DnsCollector

    handler = _handler()
    header = dns.message.make_query("x.service.local", dns.rdatatype.A).to_wire()[:12]
    for n in range(entries):  # distinct names: each answer (NXDOMAIN) its own entry
        label = f"n{n}".encode()
        wire = header + bytes((len(label),)) + label + b"\x07service\x05local\x00\x00\x01\x00\x01"
        handler.handle(wire)
        handler.handle(wire)
    assert handler.stats.cache_totals(tcp=False) == (entries, entries)
    registry = CollectorRegistry()
    registry.register(DnsCollector(handler.stats))
    started = time.perf_counter()
    generate_latest(registry)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000, help="batches of 64 per run")
    parser.add_argument("--repeat", type=int, default=5, help="runs; the median is shown")
    parser.add_argument("--entries", type=int, default=0, help="time a scrape with this many")
    args = parser.parse_args()
    listener, handle = [], []
    for _ in range(args.repeat):
        handler = _handler()
        listener.append(asyncio.run(_listener_ns(handler, args.rounds)))
        handle.append(_handle_ns(handler, args.rounds))
    print(f"srvdns from {server.__file__}")
    print(
        f"listener: {statistics.median(listener):.0f} ns/query "
        f"(runs: {', '.join(f'{v:.0f}' for v in listener)})"
    )
    print(
        f"handle:   {statistics.median(handle):.0f} ns/query "
        f"(runs: {', '.join(f'{v:.0f}' for v in handle)})"
    )
    if args.entries:
        print(f"scrape:   {_scrape_ms(args.entries):.1f} ms with {args.entries} cache entries")


if __name__ == "__main__":
    main()
