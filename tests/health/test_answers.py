"""Health in DNS answers: critical never, warning with its own weight (not at all with
only_passing), and every instance while a zone's panic threshold is crossed."""

from __future__ import annotations

from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype

from srvdns.catalog import Catalog, CatalogHolder, in_panic
from srvdns.config import parse
from srvdns.model import Instance, Service, Status
from srvdns.nameserver.handler import Handler

NOW = 1_700_000_000.0
P, W, C = Status.PASSING, Status.WARNING, Status.CRITICAL


def web(n: int, status: Status, **kw: Any) -> Instance:
    kw.setdefault("weight", 10)
    kw.setdefault("warning_weight", 2)
    return Instance(
        service="web", id=f"web-{n}", address=f"10.0.0.{n}", port=80, status=status, **kw
    )


def ask(instances: list[Instance], qname: str, rdtype: str = "SRV", **zone: Any):
    config = parse({"zone": [{"name": "service.local", **zone}]})
    holder = CatalogHolder(Catalog.build([Service("web", tuple(instances))], index=1))
    handler = Handler(config.zone, holder, clock=lambda: NOW)
    query = dns.message.make_query(qname, dns.rdatatype.from_text(rdtype))
    reply = dns.message.from_wire(handler.handle(query.to_wire(), tcp=True))
    return reply.rcode(), sorted(rr.to_text() for rrset in reply.answer for rr in rrset)


def test_critical_never_warning_with_its_weight() -> None:
    rcode, answer = ask([web(1, P), web(2, W), web(3, C)], "web.service.local")
    assert rcode == dns.rcode.NOERROR
    assert answer == [
        "0 10 80 web-1.instance.web.service.local.",
        "0 2 80 web-2.instance.web.service.local.",
    ]
    _, addresses = ask([web(1, P), web(2, W), web(3, C)], "web.service.local", "A")
    assert addresses == ["10.0.0.1", "10.0.0.2"]
    rcode, _ = ask([web(1, P), web(3, C)], "web-3.instance.web.service.local", "A")
    assert rcode == dns.rcode.NXDOMAIN


def test_a_lapsed_lease_is_critical() -> None:
    lapsed = web(2, P, ttl=10, last_heartbeat=NOW - 10)
    _, answer = ask([web(1, P), lapsed], "web.service.local", "A")
    assert answer == ["10.0.0.1"]


def test_only_passing() -> None:
    instances = [web(1, P), web(2, W), web(3, C)]
    _, answer = ask(instances, "web.service.local", "A", only_passing=True)
    assert answer == ["10.0.0.1"]
    rcode, _ = ask(instances, "web-2.instance.web.service.local", "A", only_passing=True)
    assert rcode == dns.rcode.NXDOMAIN
    rcode, _ = ask([web(2, W)], "web.service.local", "A", only_passing=True)
    assert rcode == dns.rcode.NXDOMAIN
    rcode, _ = ask([web(2, W)], "_tcp.service.local", "A", only_passing=True)
    assert rcode == dns.rcode.NXDOMAIN


def test_panic_threshold() -> None:
    three_of_four = [web(1, P), web(2, C), web(3, C), web(4, C, ttl=5, last_heartbeat=NOW - 9)]
    panic = {"panic_threshold": 0.5}
    _, answer = ask(three_of_four, "web.service.local", "A", **panic)
    assert answer == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]  # all of them
    rcode, _ = ask(three_of_four, "web-3.instance.web.service.local", "A", **panic)
    assert rcode == dns.rcode.NOERROR
    # off by default
    _, answer = ask(three_of_four, "web.service.local", "A")
    assert answer == ["10.0.0.1"]
    # exactly half critical is not more than half
    _, answer = ask([web(1, P), web(2, P), web(3, C), web(4, C)], "web.service.local", "A", **panic)
    assert answer == ["10.0.0.1", "10.0.0.2"]
    # too few instances for the threshold to apply
    _, answer = ask([web(1, P), web(2, C)], "web.service.local", "A", **panic)
    assert answer == ["10.0.0.1"]
    rcode, _ = ask([web(1, C), web(2, C)], "web.service.local", "A", **panic)
    assert rcode == dns.rcode.NXDOMAIN
    _, answer = ask(
        [web(1, C), web(2, C)], "web.service.local", "A", panic_min_instances=2, **panic
    )
    assert answer == ["10.0.0.1", "10.0.0.2"]


def test_in_panic_without_a_policy() -> None:
    assert not in_panic([web(1, C)] * 5, NOW, None)
