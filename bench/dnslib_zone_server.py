"""dnslib's stock DNSServer serving a zone file: the baseline of bench/dns_throughput.py.

    python bench/dnslib_zone_server.py ZONEFILE PORT [quiet]

A resolver class answers from the zone's records by (lower-case name, type), with AA
set, NXDOMAIN for names the zone does not have and NODATA otherwise, SOA in authority.
It is as simple as dnslib's own examples: the figure measures dnslib's server loop,
with its default logger (a line per request and reply, to stdout), or none with "quiet".
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from pathlib import Path

from dnslib import QTYPE, RCODE, RR, DNSRecord  # type: ignore[import-untyped]
from dnslib.server import BaseResolver, DNSLogger, DNSServer  # type: ignore[import-untyped]


class ZoneResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, text: str) -> None:
        self.records: dict[tuple[str, int], list[RR]] = defaultdict(list)
        self.names: set[str] = set()
        self.soa: RR | None = None
        for rr in RR.fromZone(text):
            name = str(rr.rname).lower()
            self.records[(name, rr.rtype)].append(rr)
            self.names.add(name)
            if rr.rtype == QTYPE.SOA:
                self.soa = rr

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).lower()
        found = self.records.get((name, request.q.qtype))
        if found:
            for rr in found:
                reply.add_answer(rr)
        else:
            if name not in self.names:
                reply.header.rcode = RCODE.NXDOMAIN
            if self.soa is not None:
                reply.add_auth(self.soa)
        return reply


def main() -> None:
    zone, port = Path(sys.argv[1]), int(sys.argv[2])
    resolver = ZoneResolver(zone.read_text())
    quiet = sys.argv[3:] == ["quiet"]
    logger = DNSLogger("-request,-reply,-truncated,-error") if quiet else None
    server = DNSServer(resolver, port=port, address="127.0.0.1", logger=logger)
    server.start_thread()
    print(f"dnslib serving {zone} on 127.0.0.1:{port}", flush=True)
    while server.isAlive():
        time.sleep(0.5)


if __name__ == "__main__":
    main()
