"""The status page's endpoints: the page itself, its static files, its JSON, and history.

Everything here is read-only.  The page is one HTML shell (``/ui/`` and
``/ui/services/{service}``) whose script renders from ``/ui/api/...``; the JSON
endpoints take the same ``?index=N&wait=D`` blocking parameters as the native API, so
the page refreshes the moment the registry changes instead of polling.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse

from srvdns.api.blocking import block, index_headers, parse_wait
from srvdns.config import ZoneConfig
from srvdns.errors import NotFoundError
from srvdns.history import StatusHistory
from srvdns.registry.registry import Registry
from srvdns.ui import static, views
from srvdns.ui.schemas import HistoryOut, StatusEventOut

router = APIRouter(include_in_schema=False)
history_router = APIRouter(tags=["history"])

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
"""Headers of every page and file: nothing but this origin's own files may run or load."""

IndexParam = Annotated[int | None, Query(ge=0, description="blocking query: see /v1/services")]
WaitParam = Annotated[str | None, Query(description="how long a blocking query may wait")]


def _zones(request: Request) -> list[ZoneConfig]:
    zones: list[ZoneConfig] = getattr(request.app.state, "zones", [])
    return zones


def _history(request: Request) -> StatusHistory:
    history: StatusHistory = request.app.state.history
    return history


async def _wait(registry: Registry, index: int | None, wait: str | None) -> int:
    try:
        seconds = parse_wait(wait)
    except ValueError as exc:
        error = {"type": "value_error", "loc": ("query", "wait"), "msg": str(exc)}
        raise RequestValidationError([{**error, "input": wait}]) from None
    return await block(registry, index, seconds)


def _panic(request: Request) -> Any:
    health = request.app.state.health
    return (lambda service: []) if health is None else health.panic_zones


def _live(request: Request) -> views.LiveChecks:
    health = request.app.state.health
    return (lambda service, instance: None) if health is None else health.states


def _json(body: dict[str, Any], index: int) -> JSONResponse:
    return JSONResponse(body, headers={**index_headers(index), "Cache-Control": "no-store"})


@router.get("/")
async def root() -> RedirectResponse:
    """The listener's root leads people to the status page, as Consul's does."""
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui")
async def ui_no_slash() -> RedirectResponse:
    """``/ui`` is ``/ui/``."""
    return RedirectResponse("/ui/", status_code=307)


@router.api_route("/ui/", methods=["GET", "HEAD"])
@router.api_route("/ui/services/{service}", methods=["GET", "HEAD"])
async def page(request: Request) -> Response:
    """The page shell; its script renders the overview or a service from the path."""
    return static.response("index.html", SECURITY_HEADERS, request.headers.get("if-none-match"))


@router.api_route("/ui/static/{name}", methods=["GET", "HEAD"])
async def static_file(name: str, request: Request) -> Response:
    """One of the page's files, shipped in the package (404 for anything else)."""
    return static.response(name, SECURITY_HEADERS, request.headers.get("if-none-match"))


@router.get("/ui/api/services")
async def overview(
    request: Request, index: IndexParam = None, wait: WaitParam = None
) -> JSONResponse:
    """Every service with its status counts, tags and TTLs; the zones and DNS listeners."""
    registry: Registry = request.app.state.registry
    current = await _wait(registry, index, wait)
    now = registry.now()
    history = _history(request)
    zones = _zones(request)
    body = {
        "index": current,
        "now": now,
        "zones": [{"name": z.name, "ttl": z.ttl, "only_passing": z.only_passing} for z in zones],
        "dns": views.dig_server(_dns(request), request.url.hostname),
        "history_since": max(history.started, now - history.retention),
        "services": views.overview(
            registry.services(),
            zones,
            now,
            _panic(request),
            history.events(since=now - history.retention),
        ),
    }
    return _json(body, current)


@router.get("/ui/api/services/{service}")
async def service(
    service: str, request: Request, index: IndexParam = None, wait: WaitParam = None
) -> JSONResponse:
    """One service: its instances with checks, leases and SRV targets, the names that
    resolve to it in every zone and a ``dig`` command for each; 404 when it has none."""
    registry: Registry = request.app.state.registry
    current = await _wait(registry, index, wait)
    name = service.lower()
    now = registry.now()
    zones = _zones(request)
    try:
        found = registry.find_service(name)
    except NotFoundError:
        body = {"index": current, "error": f"no service {name!r}", "name": name}
        return JSONResponse(body, status_code=404, headers=index_headers(current))
    view = registry.holder.current.get_service(name)
    live = _live(request)
    instances = sorted(found.instances, key=lambda i: i.id)
    tags = sorted({tag for i in instances for tag in i.tags})
    server = views.dig_server(_dns(request), request.url.hostname)
    names = views.dns_names(name, tags, zones)
    for zone in names:
        for entry in zone["names"]:
            entry["dig"] = views.dig_command(server, entry["name"], entry["types"][0])
    body = {
        "index": current,
        "now": now,
        "name": name,
        "counts": views.status_counts(instances, now),
        "tags": views.tag_counts(instances),
        "ttl": views.service_ttls(name, zones),
        "panic_zones": _panic(request)(name),
        "dns": server,
        "names": names,
        "instances": [views.instance_row(i, view, zones, now, live(name, i.id)) for i in instances],
    }
    return _json(body, current)


def _dns(request: Request) -> list[tuple[str, int]]:
    addresses: list[tuple[str, int]] = getattr(request.app.state, "dns_addresses", [])
    return addresses


@history_router.get(
    "/v1/history", response_model=HistoryOut, summary="Status changes of the last hour"
)
async def history(
    request: Request,
    response: Response,
    service: Annotated[str | None, Query(description="only this service's changes")] = None,
    since: Annotated[
        float | None, Query(description="only changes after this Unix time (seconds)")
    ] = None,
) -> HistoryOut:
    """Every instance status change the process saw in the last hour, oldest first:
    registrations (``from`` null), deregistrations (``to`` null) and health changes,
    each with the checks that moved and their output.  Kept in memory: a restart starts
    a new record (``started``)."""
    registry: Registry = request.app.state.registry
    record = _history(request)
    events = record.events(None if service is None else service.lower(), since)
    response.headers["Cache-Control"] = "no-store"
    return HistoryOut(
        now=registry.now(),
        started=record.started,
        retention=record.retention,
        events=[StatusEventOut.of(event) for event in events],
    )
