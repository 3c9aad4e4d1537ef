"""Prometheus metrics of the health loop, on a registry the API's ``/metrics`` serves."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge

from srvdns.model import CheckKind, Status


class HealthMetrics:
    """The health loop's gauges and counters, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.lag = Gauge(
            "srvdns_event_loop_lag_seconds",
            "How late the event loop ran a timer at the latest sample.",
            registry=r,
        )
        self.lag_max = Gauge(
            "srvdns_event_loop_lag_max_seconds",
            "The largest event loop lag of the last 10 seconds.",
            registry=r,
        )
        self.checks_run = Counter(
            "srvdns_health_checks",
            "Check results by kind and status (timeouts count as critical).",
            ["kind", "status"],
            registry=r,
        )
        self.timeouts = Counter(
            "srvdns_health_check_timeouts",
            "Checks cancelled for overrunning their timeout.",
            ["kind"],
            registry=r,
        )
        self.inconclusive = Counter(
            "srvdns_health_checks_inconclusive",
            "Timeouts not counted because the event loop itself stalled meanwhile.",
            registry=r,
        )
        self.changes = Counter(
            "srvdns_health_status_changes",
            "Check status changes, by the new status.",
            ["status"],
            registry=r,
        )
        self.deregistrations = Counter(
            "srvdns_health_deregistrations",
            "Instances removed after being critical for deregister_critical_after.",
            registry=r,
        )
        self.writes = Counter(
            "srvdns_health_registry_writes",
            "Registry transactions the health loop committed.",
            registry=r,
        )
        self.checks = Gauge("srvdns_health_checks_scheduled", "Checks the loop runs.", registry=r)
        self.queued = Gauge(
            "srvdns_health_checks_queued", "Due checks waiting for a free slot.", registry=r
        )
        self.running = Gauge("srvdns_health_checks_running", "Checks in flight.", registry=r)
        self.schedule_lag = Gauge(
            "srvdns_health_schedule_lag_seconds",
            "How late after its due time the latest check started.",
            registry=r,
        )
        self.panic = Gauge(
            "srvdns_health_services_in_panic",
            "Services answered in panic mode (all instances), over all zones.",
            registry=r,
        )
        self._results = {
            (kind, status): self.checks_run.labels(kind.value, status.value)
            for kind in CheckKind
            for status in Status
        }
        self._timeouts = {kind: self.timeouts.labels(kind.value) for kind in CheckKind}

    def result(self, kind: CheckKind, status: Status) -> None:
        """Count one check result."""
        self._results[kind, status].inc()

    def add_results(self, counts: Mapping[tuple[CheckKind, Status], int]) -> None:
        """Count check results tallied by kind and status: one increment (and one take
        of the counter's lock) per kind and status, not per result."""
        for key, count in counts.items():
            self._results[key].inc(count)

    def timeout(self, kind: CheckKind) -> None:
        """Count one timeout."""
        self._timeouts[kind].inc()
