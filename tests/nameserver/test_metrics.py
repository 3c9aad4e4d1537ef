"""DNS counters (stats.DnsStats) as the handler keeps them, and their Prometheus view."""

from __future__ import annotations

import gc
import random

import dns.edns
import dns.message
import dns.rdatatype
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from srvdns.catalog import Catalog, CatalogHolder
from srvdns.config import ZoneConfig
from srvdns.model import Instance, Service
from srvdns.nameserver import cache
from srvdns.nameserver.handler import Handler
from srvdns.nameserver.metrics import DnsCollector
from srvdns.nameserver.stats import LATENCY_SHIFT, OTHER, DnsStats, latency_bound, qtype_name

NOW = 1_700_000_000.0


def snapshot() -> Catalog:
    web = [Instance(service="web", id=f"w{n}", address=f"10.0.0.{n}", port=80) for n in (1, 2)]
    return Catalog.build([Service("web", tuple(web))], index=7)


def handler(stats: DnsStats, holder: CatalogHolder | None = None, **options: object) -> Handler:
    return Handler(
        [ZoneConfig(name="service.local")],
        holder or CatalogHolder(snapshot()),
        clock=lambda: NOW,
        rng=random.Random(1),
        stats=stats,
        **options,  # type: ignore[arg-type]
    )


def wire(name: str, rdtype: str = "A", *, msg_id: int = 1, **options: object) -> bytes:
    query = dns.message.make_query(name, dns.rdatatype.from_text(rdtype), **options)  # type: ignore[arg-type]
    query.id = msg_id
    return query.to_wire()


def scrape(stats: DnsStats) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the collector, by (sample name, sorted labels)."""
    registry = CollectorRegistry()
    registry.register(DnsCollector(stats))
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def queries(samples: dict, transport: str, qtype: str, rcode: str) -> float:
    key = (
        "srvdns_dns_queries_total",
        (("qtype", qtype), ("rcode", rcode), ("transport", transport)),
    )
    return samples.get(key, 0.0)


def cache_counts(samples: dict, transport: str) -> tuple[float, float]:
    labels = (("transport", transport),)
    return (
        samples[("srvdns_dns_cache_hits_total", labels)],
        samples[("srvdns_dns_cache_misses_total", labels)],
    )


def test_hits_and_misses_by_kind_and_transport() -> None:
    stats = DnsStats()
    answer = handler(stats)
    for msg_id in range(5):
        assert answer.handle(wire("web.service.local", msg_id=msg_id)) is not None
    for _ in range(2):
        answer.handle(wire("nope.service.local"))
    answer.handle(wire("example.org"))
    answer.handle(wire("web.service.local", "SRV"), tcp=True)
    answer.handle(wire("web.service.local", "SRV"), tcp=True)
    samples = scrape(stats)
    assert queries(samples, "udp", "A", "NOERROR") == 5
    assert queries(samples, "udp", "A", "NXDOMAIN") == 2
    assert queries(samples, "udp", "A", "REFUSED") == 1
    assert queries(samples, "tcp", "SRV", "NOERROR") == 2
    assert cache_counts(samples, "udp") == (5, 3)  # one miss per distinct question
    assert cache_counts(samples, "tcp") == (1, 1)


def test_errors_badvers_ignored_and_other_types() -> None:
    stats = DnsStats()
    answer = handler(stats)
    answer.handle(wire("web.service.local", "TYPE65280"))
    answer.handle(wire("web.service.local", "NULL"))
    answer.handle(wire("web.service.local", use_edns=1))
    query = bytearray(wire("web.service.local"))
    query[5] = 2  # QDCOUNT 2: FORMERR, and no question is read
    answer.handle(bytes(query))
    answer.handle(b"\x00\x01\x80\x00" + bytes(8))  # a response: no reply
    answer.handle(b"\x00")  # a runt: no reply
    samples = scrape(stats)
    assert queries(samples, "udp", "OTHER", "NOERROR") == 2
    assert queries(samples, "udp", "A", "BADVERS") == 1
    assert queries(samples, "udp", "OTHER", "FORMERR") == 1
    assert samples[("srvdns_dns_messages_ignored_total", (("transport", "udp"),))] == 2


def test_hits_survive_eviction_a_full_cache_and_the_handler_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stats = DnsStats()
    holder = CatalogHolder(snapshot())
    answer = handler(stats, holder)
    for _ in range(4):
        answer.handle(wire("web.service.local"))
    # a write to the service: the entry is stale, dropped at the next query
    holder.patch(
        [Service("web", (Instance(service="web", id="w9", address="10.9.9.9", port=1),))], index=8
    )
    answer.handle(wire("web.service.local"))
    answer.handle(wire("web.service.local"))
    assert cache_counts(scrape(stats), "udp") == (4, 2)
    monkeypatch.setattr(cache, "MAX_ENTRIES", 1)  # every new question empties the store
    answer.handle(wire("other.service.local"))
    answer.handle(wire("other.service.local"))
    assert cache_counts(scrape(stats), "udp") == (5, 3)
    del answer  # a reload drops the handler and its stores
    gc.collect()
    assert not stats.live
    replacement = handler(stats, holder)
    replacement.handle(wire("web.service.local"))
    samples = scrape(stats)
    assert cache_counts(samples, "udp") == (5, 4)
    assert queries(samples, "udp", "A", "NOERROR") == 7
    assert queries(samples, "udp", "A", "NXDOMAIN") == 2


def test_without_answer_cache_every_query_is_a_miss() -> None:
    stats = DnsStats()
    answer = handler(stats, answer_cache=False)
    for _ in range(3):
        answer.handle(wire("web.service.local"))
    samples = scrape(stats)
    assert cache_counts(samples, "udp") == (0, 3)
    assert queries(samples, "udp", "A", "NOERROR") == 3


def test_a_forwarded_query_moves_to_its_final_rcode() -> None:
    stats = DnsStats()
    answer = handler(stats)
    answer.handle(wire("example.org"))
    answer.handle(wire("example.org"))
    stats.move(False, dns.rdatatype.A, 5, 0)  # the upstream answered NOERROR
    stats.move(False, dns.rdatatype.A, 5, None)  # dropped: no reply at all
    samples = scrape(stats)
    assert queries(samples, "udp", "A", "REFUSED") == 0
    assert queries(samples, "udp", "A", "NOERROR") == 1


def test_latency_buckets_are_powers_of_two() -> None:
    stats = DnsStats()
    for ns in (0, 8191, 8192, 100_000, 10**12):
        stats.observe_ns(ns)
    assert latency_bound(0) == pytest.approx(2**LATENCY_SHIFT / 1e9)
    samples = scrape(stats)
    bucket = "srvdns_dns_answer_seconds_bucket"
    assert samples[(bucket, (("le", repr(latency_bound(0))),))] == 2
    assert samples[(bucket, (("le", repr(latency_bound(1))),))] == 3
    assert samples[(bucket, (("le", repr(latency_bound(4))),))] == 4  # 100 us < 131 us
    assert samples[(bucket, (("le", repr(latency_bound(14))),))] == 4
    assert samples[(bucket, (("le", "+Inf"),))] == 5
    assert samples[("srvdns_dns_answer_seconds_count", ())] == 5
    assert samples[("srvdns_dns_answer_seconds_sum", ())] == pytest.approx(
        (8191 + 8192 + 100_000 + 10**12) / 1e9
    )


def test_forwarder_counters_and_type_folding() -> None:
    stats = DnsStats()
    stats.forwarded[1] += 2
    stats.forward_cache_hits += 1
    stats.forward_failures += 1
    stats.upstream_failed("127.0.0.1:53", "timeout")
    stats.upstream_failed("127.0.0.1:53", "timeout")
    samples = scrape(stats)
    assert samples[("srvdns_dns_forwarded_queries_total", (("transport", "tcp"),))] == 2
    assert samples[("srvdns_dns_forward_cache_hits_total", ())] == 1
    assert samples[("srvdns_dns_forward_failures_total", ())] == 1
    key = (("reason", "timeout"), ("upstream", "127.0.0.1:53"))
    assert samples[("srvdns_dns_upstream_failures_total", key)] == 2
    assert qtype_name(OTHER) == qtype_name(65280) == "OTHER"
    assert qtype_name(65280, fold=False) == "TYPE65280"
    assert stats.slot(False, 65280, 0) == stats.slot(False, 65281, 0)
