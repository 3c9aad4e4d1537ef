"""Prometheus view of ``stats.DnsStats``: metric families built at scrape time only."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from srvdns.nameserver.stats import (
    LATENCY_BUCKETS,
    DnsStats,
    latency_bound,
    qtype_name,
    rcode_name,
)


def _transport(tcp: bool) -> str:
    return "tcp" if tcp else "udp"


class DnsCollector(Collector):
    """Exposes the DNS counters of ``stats`` (the listeners, handlers and forwarders
    of one process count there)."""

    def __init__(self, stats: DnsStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        """The families, from one pass over the counters."""
        stats = self._stats
        cache_hits = stats.all_hits()  # one pass over the answer caches
        queries = CounterMetricFamily(
            "srvdns_dns_queries",
            "DNS replies sent, by transport, query type and rcode (forwarded queries "
            "count with the rcode of the upstream's reply).",
            labels=["transport", "qtype", "rcode"],
        )
        for (tcp, qtype, rcode), count in sorted(stats.queries(cache_hits).items()):
            queries.add_metric([_transport(tcp), qtype_name(qtype), rcode_name(rcode)], count)
        yield queries

        yield _latency(stats)

        hits = CounterMetricFamily(
            "srvdns_dns_cache_hits", "Replies sent from the answer cache.", labels=["transport"]
        )
        misses = CounterMetricFamily(
            "srvdns_dns_cache_misses",
            "Replies packed for their query (the answer cache had no valid one).",
            labels=["transport"],
        )
        for tcp in (False, True):
            hit, miss = stats.cache_totals(tcp=tcp, hits=cache_hits)
            hits.add_metric([_transport(tcp)], hit)
            misses.add_metric([_transport(tcp)], miss)
        yield hits
        yield misses

        ignored = CounterMetricFamily(
            "srvdns_dns_messages_ignored",
            "Messages given no reply: responses (QR set) and ones shorter than a header.",
            labels=["transport"],
        )
        forwarded = CounterMetricFamily(
            "srvdns_dns_forwarded_queries",
            "Queries outside every zone forwarded to an upstream resolver.",
            labels=["transport"],
        )
        for tcp in (False, True):
            ignored.add_metric([_transport(tcp)], stats.ignored[tcp])
            forwarded.add_metric([_transport(tcp)], stats.forwarded[tcp])
        yield ignored
        yield forwarded
        yield CounterMetricFamily(
            "srvdns_dns_forward_cache_hits",
            "Forwarded queries answered from the forwarder's cache.",
            value=stats.forward_cache_hits,
        )
        yield CounterMetricFamily(
            "srvdns_dns_forward_failures",
            "Forwarded queries no upstream answered (the client got SERVFAIL).",
            value=stats.forward_failures,
        )
        yield CounterMetricFamily(
            "srvdns_dns_forward_dropped",
            "UDP queries to forward dropped because too many were in flight.",
            value=stats.forward_dropped,
        )
        upstream = CounterMetricFamily(
            "srvdns_dns_upstream_failures",
            "Failed attempts at an upstream resolver (the next one is tried).",
            labels=["upstream", "reason"],
        )
        for (where, reason), count in sorted(stats.upstream_failures.items()):
            upstream.add_metric([where, reason], count)
        yield upstream
        yield CounterMetricFamily(
            "srvdns_dns_udp_replies_dropped",
            "UDP replies the socket would not take (its send buffer was full).",
            value=stats.udp_send_dropped,
        )


def _latency(stats: DnsStats) -> HistogramMetricFamily:
    """``srvdns_dns_answer_seconds`` from the power-of-two buckets of ``stats``."""
    buckets: list[tuple[str, float]] = []
    cumulative = 0
    for bucket in range(LATENCY_BUCKETS):
        cumulative += stats.latency[bucket]
        buckets.append((repr(latency_bound(bucket)), cumulative))
    buckets.append(("+Inf", sum(stats.latency)))
    return HistogramMetricFamily(
        "srvdns_dns_answer_seconds",
        "Time from reading a query to its reply being ready (for forwarded queries, "
        "until the upstream's reply), in power-of-two buckets.",
        buckets=buckets,
        sum_value=stats.latency_ns / 1e9,
    )
