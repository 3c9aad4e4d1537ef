"""The read-only status page served at ``/ui/`` by the API listener, and the status history."""

from __future__ import annotations

from fastapi import FastAPI

from srvdns.history import StatusHistory
from srvdns.model import Service
from srvdns.registry.registry import Registry
from srvdns.ui.routes import history_router, router


def install(app: FastAPI, registry: Registry) -> None:
    """Serve the status page and ``/v1/history`` on ``app``, and start recording the
    registry's status changes (from what it holds now on)."""
    history = StatusHistory(clock=registry.now)
    views = registry.holder.current.services
    history.seed(Service(name, view.instances) for name, view in views.items())
    # a health-only change's keys name only removed instances, not the status changes
    registry.add_listener(
        lambda change: history.observe(change.services, None if change.health_only else change.keys)
    )
    app.state.history = history
    app.include_router(router)
    app.include_router(history_router)
