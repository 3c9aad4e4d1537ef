"""The endpoints of the registration API: register, deregister, heartbeat, list, health, metrics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import AfterValidator

from srvdns.api.auth import require_writer
from srvdns.api.blocking import block, index_headers, parse_wait
from srvdns.api.schemas import (
    ErrorOut,
    Health,
    InstanceOut,
    InvalidField,
    Readiness,
    RegisterRequest,
    ServiceDetail,
    ServiceList,
    ServiceSummary,
    instance_id,
    service_name,
)
from srvdns.errors import StoreUnavailableError
from srvdns.model import Check
from srvdns.registry.registry import Registry


async def get_registry(request: Request) -> Registry:
    """The registry ``create_app`` was given (a coroutine: FastAPI runs a plain function
    dependency in a worker thread, a hop that cost more than the whole heartbeat)."""
    registry: Registry = request.app.state.registry
    return registry


def _invalid(field: str, message: str, value: object) -> RequestValidationError:
    error = {"type": "value_error", "loc": ("body", *field.split(".")), "msg": message}
    return RequestValidationError([{**error, "input": value}])


RegistryDep = Annotated[Registry, Depends(get_registry)]
ServiceName = Annotated[
    str, Path(description="a DNS label; matched case-insensitively"), AfterValidator(service_name)
]
InstanceId = Annotated[
    str,
    Path(alias="id", description="1-64 of letters, digits, '-', '_', '.'"),
    AfterValidator(instance_id),
]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorOut} for code in codes}


_WRITE_ERRORS = _errors(400, 401, 403, 413, 415, 422, 503)

router = APIRouter()
write_router = APIRouter(dependencies=[Depends(require_writer)], tags=["write"])


@write_router.put(
    "/v1/services/{service}/instances/{id}",
    response_model=InstanceOut,
    responses={201: {"model": InstanceOut}, **_WRITE_ERRORS, **_errors(409)},
    summary="Register or replace an instance",
)
async def register(
    service: ServiceName,
    instance: InstanceId,
    body: RegisterRequest,
    registry: RegistryDep,
    request: Request,
    response: Response,
) -> InstanceOut:
    """Create the instance, or replace it wholesale; 201 when it did not exist before."""
    if service in request.app.state.reserved_names:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("path", "service"),
                    "msg": f"service name {service!r} is reserved for the zone's name server",
                    "input": service,
                }
            ]
        )
    try:
        wanted = body.to_instance(service, instance, request.app.state.health_defaults)
    except InvalidField as exc:
        raise _invalid(exc.field, exc.message, None) from None
    existed = has_instance(registry, service, instance)
    stored = await registry.register(wanted)
    if not existed:
        response.status_code = status.HTTP_201_CREATED
    return InstanceOut.of(stored, registry.now(), _live(request, stored.service, stored.id))


@write_router.delete(
    "/v1/services/{service}/instances/{id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={**_WRITE_ERRORS, **_errors(404, 409)},
    summary="Deregister an instance",
)
async def deregister(service: ServiceName, instance: InstanceId, registry: RegistryDep) -> None:
    """Remove the instance; a service left without instances disappears."""
    await registry.deregister(service, instance)


@write_router.put(
    "/v1/services/{service}/instances/{id}/heartbeat",
    response_model=InstanceOut,
    responses={**_WRITE_ERRORS, **_errors(404, 409)},
    summary="Renew an instance's TTL lease",
)
async def heartbeat(
    service: ServiceName, instance: InstanceId, registry: RegistryDep, request: Request
) -> InstanceOut:
    """Start a new lease of the instance's ``ttl`` (its ttl check passes); 409 when it was
    registered without one."""
    renewed = await registry.heartbeat(service, instance)
    return InstanceOut.of(renewed, registry.now(), _live(request, renewed.service, renewed.id))


IndexParam = Annotated[
    int | None,
    Query(
        ge=0,
        description="blocking query: answer once the registry's index is above this one "
        "(the X-Consul-Index or `index` of an earlier answer), or after `wait`",
    ),
]
WaitParam = Annotated[
    str | None,
    Query(description="how long a blocking query may wait: '30s', '5m' (default 5m, at most 10m)"),
]


async def _blocking_read(
    registry: Registry, index: int | None, wait: str | None, response: Response
) -> int:
    """Wait as a blocking query asks (see ``blocking``); set the index headers."""
    try:
        seconds = parse_wait(wait)
    except ValueError as exc:
        error = {"type": "value_error", "loc": ("query", "wait"), "msg": str(exc)}
        raise RequestValidationError([{**error, "input": wait}]) from None
    await block(registry, index, seconds)
    current = registry.holder.current.index
    response.headers.update(index_headers(current))
    return current


@router.get(
    "/v1/services", response_model=ServiceList, responses=_errors(422), summary="List services"
)
async def list_services(
    registry: RegistryDep, response: Response, index: IndexParam = None, wait: WaitParam = None
) -> ServiceList:
    """Every service with its instance count and how many DNS hands out now.

    With ``?index=N`` a blocking query: answers once the registry's index is above N, or
    after ``wait``."""
    current = await _blocking_read(registry, index, wait, response)
    now = registry.now()
    return ServiceList(
        index=current,
        services=[
            ServiceSummary(
                name=s.name,
                instances=len(s.instances),
                healthy=sum(i.is_answerable(now) for i in s.instances),
            )
            for s in registry.services()
        ],
    )


@router.get(
    "/v1/services/{service}",
    response_model=ServiceDetail,
    responses=_errors(404, 422),
    summary="One service's instances",
)
async def get_service(
    service: ServiceName,
    registry: RegistryDep,
    request: Request,
    response: Response,
    index: IndexParam = None,
    wait: WaitParam = None,
) -> ServiceDetail:
    """Every instance of the service, healthy or not, sorted by id, with its checks; and
    whether a zone answers the service in panic mode (too many instances critical).

    With ``?index=N`` a watch: answers once the registry's index is above N (any write,
    health changes included), or after ``wait``; ``index`` and ``X-Consul-Index`` give
    the index to pass next."""
    current = await _blocking_read(registry, index, wait, response)
    found = registry.find_service(service)
    now = registry.now()
    instances = sorted(found.instances, key=lambda i: i.id)
    health = request.app.state.health
    zones = [] if health is None else health.panic_zones(found.name)
    return ServiceDetail(
        index=current,
        name=found.name,
        panic=bool(zones),
        panic_zones=zones,
        instances=[InstanceOut.of(i, now, _live(request, found.name, i.id)) for i in instances],
    )


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> Health:
    """The API is up."""
    return Health()


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness}},
    summary="Readiness",
)
async def readyz(request: Request, response: Response) -> Readiness:
    """Ready to serve: the DNS and API listeners are bound, the catalog snapshot is
    loaded, and the database takes a write (an empty commit); 503 naming each check that
    fails otherwise, e.g. ``"database": "error: database is locked"``."""
    state = request.app.state
    registry: Registry = state.registry
    checks = {
        "listeners": state.listeners,
        "snapshot": "ok" if registry.holder.current is not None else "not loaded",
    }
    try:
        await registry.ping(write=True)
        checks["database"] = "ok"
    except StoreUnavailableError as exc:
        checks["database"] = str(exc)
    ready = all(value == "ok" for value in checks.values())
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Readiness(status="ready" if ready else "not ready", checks=checks)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    summary="Prometheus metrics",
)
async def metrics(request: Request) -> Response:
    """The Prometheus text exposition of srvdns's metrics (event loop lag, checks, ...)."""
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)


def _live(request: Request, service: str, instance_id: str) -> dict[str, Check] | None:
    health = request.app.state.health
    return None if health is None else health.states(service, instance_id)


def has_instance(registry: Registry, service: str, instance: str) -> bool:
    """Whether the catalog holds the instance (a registration of it answers 200, else 201)."""
    view = registry.holder.current.get_service(service.lower())
    return view is not None and instance in view.target_of
