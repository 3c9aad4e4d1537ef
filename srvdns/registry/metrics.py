"""Prometheus view of the registry: the snapshot DNS answers from, instance health, and
the latency and errors of writes.  Everything is read at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from srvdns.catalog import CatalogHolder
from srvdns.histogram import add_histogram
from srvdns.model import Status
from srvdns.registry.stats import RegistryStats


class RegistryCollector(Collector):
    """Exposes ``holder``'s current snapshot and ``stats``; ``clock`` is the registry's
    (an instance's status counts its heartbeat lease at that moment)."""

    def __init__(
        self, holder: CatalogHolder, stats: RegistryStats, clock: Callable[[], float]
    ) -> None:
        self._holder = holder
        self._stats = stats
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        """The families, from the snapshot current at the scrape."""
        catalog = self._holder.current
        yield GaugeMetricFamily(
            "srvdns_snapshot_generation",
            "Snapshots published by this process (each write that changed DNS adds one).",
            value=catalog.generation,
        )
        yield GaugeMetricFamily(
            "srvdns_snapshot_index",
            "The registry's change index in the snapshot (the SOA serial).",
            value=catalog.index,
        )
        yield GaugeMetricFamily(
            "srvdns_snapshot_services",
            "Services in the snapshot (ones with at least one instance).",
            value=len(catalog.services),
        )
        now = self._clock()
        by_status = dict.fromkeys(Status, 0)
        for view in catalog.services.values():
            for instance in view.instances:
                by_status[instance.effective_status(now)] += 1
        yield GaugeMetricFamily(
            "srvdns_snapshot_instances",
            "Instances in the snapshot, whatever their health.",
            value=sum(by_status.values()),
        )
        instances = GaugeMetricFamily(
            "srvdns_instances",
            "Instances by health status now (a lapsed heartbeat lease counts as critical).",
            labels=["status"],
        )
        for status, count in by_status.items():
            instances.add_metric([status.value], count)
        yield instances

        stats = self._stats
        snapshots = HistogramMetricFamily(
            "srvdns_snapshot_seconds",
            "Time to make a snapshot: build (the whole registry, at start) or patch "
            "(the services a write changed).",
            labels=["kind"],
        )
        for kind, hist in sorted(stats.snapshots.items()):
            add_histogram(snapshots, [kind], hist)
        yield snapshots

        writes = HistogramMetricFamily(
            "srvdns_registry_write_seconds",
            "Registry writes from the call until the committed change is published, "
            "by operation (failed ones included).",
            labels=["operation"],
        )
        for operation, hist in sorted(stats.writes.items()):
            add_histogram(writes, [operation], hist)
        yield writes

        failed = CounterMetricFamily(
            "srvdns_registry_write_errors",
            "Registry writes that failed, by operation and error.",
            labels=["operation", "error"],
        )
        for (operation, error), count in sorted(stats.errors.items()):
            failed.add_metric([operation, error], count)
        yield failed
