"""The registry's Prometheus view: snapshot gauges, instances by status, write timing."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from srvdns.errors import NotFoundError
from srvdns.histogram import Histogram
from srvdns.model import Instance, Status
from srvdns.registry.metrics import RegistryCollector
from srvdns.registry.registry import Registry


def scrape(registry: Registry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    metrics = CollectorRegistry()
    metrics.register(RegistryCollector(registry.holder, registry.stats, registry.now))
    text = generate_latest(metrics).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def web(id: str, **kw: object) -> Instance:
    return Instance(service="web", id=id, address="10.0.0.1", port=80, **kw)  # type: ignore[arg-type]


async def test_snapshot_and_instances_by_status(registry: Registry, clock) -> None:
    await registry.register(web("a"))
    await registry.register(web("b", ttl=10.0))
    await registry.register(Instance(service="db", id="c", address="10.0.0.2", port=5432))
    await registry.heartbeat("web", "b", status=Status.WARNING)
    samples = scrape(registry)
    current = registry.holder.current
    assert samples[("srvdns_snapshot_generation", ())] == current.generation
    assert samples[("srvdns_snapshot_index", ())] == current.index
    assert samples[("srvdns_snapshot_services", ())] == 2
    assert samples[("srvdns_snapshot_instances", ())] == 3
    assert samples[("srvdns_instances", (("status", "passing"),))] == 2
    assert samples[("srvdns_instances", (("status", "warning"),))] == 1
    clock.advance(11)  # b's lease lapses: critical at once, without a write
    samples = scrape(registry)
    assert samples[("srvdns_instances", (("status", "warning"),))] == 0
    assert samples[("srvdns_instances", (("status", "critical"),))] == 1
    assert samples[("srvdns_snapshot_seconds_count", (("kind", "build"),))] == 1
    assert samples[("srvdns_snapshot_seconds_count", (("kind", "patch"),))] == 4


async def test_writes_timed_and_errors_counted_by_operation(registry: Registry) -> None:
    await registry.register(web("a"))
    await registry.register(web("b"))
    await registry.deregister("web", "a")
    with pytest.raises(NotFoundError):
        await registry.deregister("web", "nope")
    samples = scrape(registry)
    count = "srvdns_registry_write_seconds_count"
    assert samples[(count, (("operation", "register"),))] == 2
    assert samples[(count, (("operation", "deregister"),))] == 2
    errors = "srvdns_registry_write_errors_total"
    assert samples[(errors, (("error", "NotFoundError"), ("operation", "deregister")))] == 1
    assert (errors, (("error", "NotFoundError"), ("operation", "register"))) not in samples
    assert samples[("srvdns_registry_write_seconds_sum", (("operation", "register"),))] > 0


def test_histogram_buckets_are_cumulative_and_inclusive() -> None:
    hist = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 2.0):
        hist.observe(value)
    assert hist.buckets() == [("0.1", 2), ("1.0", 3), ("+Inf", 4)]
    assert hist.count == 4
    assert hist.total == 2.65
