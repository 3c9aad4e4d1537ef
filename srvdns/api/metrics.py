"""Request counts and latency of the HTTP API, labelled by route template.

The label is the matched route's path template (``/v1/services/{service}``), never the
raw path, so a client asking for many names cannot grow the number of series; a path
no route matches counts as ``unmatched`` and a method outside the standard ones as
``OTHER``.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})

UNMATCHED = "unmatched"

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
"""Seconds: most requests take about a millisecond; blocking queries wait up to minutes."""


class RequestMetrics:
    """The request counter and latency histogram, registered once on ``registry``; the
    middleware and the fast paths (``api.fastpath``, ``api.fastregister``) count in them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "srvdns_api_requests",
            "HTTP API requests by method, route template and status code.",
            ["method", "route", "code"],
            registry=registry,
        )
        self.seconds = Histogram(
            "srvdns_api_request_seconds",
            "HTTP API request latency by method and route template.",
            ["method", "route"],
            buckets=BUCKETS,
            registry=registry,
        )
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        """(method, route, status) -> its two series: ``labels()`` takes a lock and
        builds a key on every call, a few microseconds of every request.  As bounded as
        the series themselves (route templates, standard methods, status codes)."""

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request answered with ``status`` after ``seconds``."""
        method = method if method in METHODS else "OTHER"
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (
                self.requests.labels(method, route, str(status)),
                self.seconds.labels(method, route),
            )
        series[0].inc()
        series[1].observe(seconds)


class ApiMetrics:
    """ASGI middleware counting every HTTP request in ``metrics``."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self.metrics.observe(
                scope.get("method", ""), _template(scope), status, time.perf_counter() - started
            )


def _template(scope: Scope) -> str:
    """The path template of the route the router matched (it records it in the scope)."""
    route = scope.get("route")
    if isinstance(route, BaseRoute):
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
    return UNMATCHED
