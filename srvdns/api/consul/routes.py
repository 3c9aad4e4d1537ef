"""The Consul-compatible endpoints, on the same listener as the native API.

Agent: register, deregister, list and read services; pass, warn, fail and update TTL
checks.  Health and catalog: a service's instances with their checks, every service
with its tags.  Reads are blocking queries (``?index=&wait=``, see ``blocking``) and
send ``X-Consul-Index``; writes need the API token when one is set (``X-Consul-Token``,
``Authorization: Bearer`` or ``?token=``; 403 otherwise, as Consul answers).  Errors are
Consul's plain-text bodies (``errors.ConsulRoute``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from srvdns.api.auth import permit_consul, require_consul_writer
from srvdns.api.blocking import block, index_headers, parse_index, parse_wait
from srvdns.api.consul import openapi
from srvdns.api.consul.definitions import parse_registration
from srvdns.api.consul.errors import ConsulError, ConsulRoute, bad_request, documented
from srvdns.api.consul.keys import fields, folded, text
from srvdns.api.consul.views import (
    DATACENTER,
    Node,
    agent_service,
    catalog_entry,
    check_status,
    checks_with_id,
    health_entry,
    instances_with_id,
)
from srvdns.api.decoding import loads
from srvdns.health.damping import clip_output
from srvdns.health.definitions import MAX_CHECKS
from srvdns.model import Check, CheckKind, Instance, Status
from srvdns.registry.registry import Registry

router = APIRouter(route_class=ConsulRoute, tags=["consul"])
write_router = APIRouter(
    route_class=ConsulRoute, tags=["consul"], dependencies=[Depends(require_consul_writer)]
)

_UNSUPPORTED_PARAMS = (
    "filter",
    "near",
    "node-meta",
    "peer",
    "ns",
    "partition",
    "sg",
    "merge-central-config",
    "hash",
)
_UPDATE = folded(("Status", "Output"))
_READ_ERRORS = documented(400)
_WRITE_ERRORS = documented(400, 403, 404, 409, 413, 503)
_STATUSES = {status.value: status for status in Status}


def _registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


def _node(request: Request) -> Node:
    node: Node = request.app.state.consul_node
    return node


def _live(request: Request, instance: Instance) -> dict[str, Check]:
    health = request.app.state.health
    return {} if health is None else dict(health.states(instance.service, instance.id))


def _flag(request: Request, name: str) -> bool:
    """A Consul flag parameter: present (``?passing``, ``?passing=1``) unless ``false``/``0``."""
    if name not in request.query_params:
        return False
    return request.query_params[name].lower() not in ("false", "0")


async def _read(request: Request) -> int:
    """Check a read's parameters and wait as its blocking query asks; return the index."""
    params = request.query_params
    for name in _UNSUPPORTED_PARAMS:
        if name in params:
            raise bad_request(f"srvdns does not support the {name!r} parameter")
    if params.get("dc", DATACENTER) != DATACENTER:
        raise bad_request(f"srvdns has one datacenter, {DATACENTER!r}, not {params['dc']!r}")
    try:
        index = parse_index(params["index"]) if "index" in params else None
    except ValueError:
        raise bad_request("Invalid index") from None
    try:
        wait = parse_wait(params.get("wait"))
    except ValueError:
        raise bad_request("Invalid wait time") from None
    return await block(_registry(request), index, wait)


def _reply(data: Any, index: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(data, headers={**index_headers(index), **(headers or {})})


async def _body(request: Request) -> object:
    raw = await request.body()
    if not raw.strip():
        raise bad_request("Request decode failed: the body is empty")
    try:
        return loads(raw)
    except ValueError as exc:
        raise bad_request(f"Request decode failed: {exc}") from None


def _one_instance(request: Request, service_id: str, unknown: str) -> Instance:
    found = instances_with_id(_registry(request).holder.current, service_id)
    if not found:
        raise ConsulError(404, unknown)
    if len(found) > 1:
        services = ", ".join(sorted(i.service for i in found))
        raise ConsulError(
            409,
            f"service ID {service_id!r} is ambiguous: instances of {services} have it "
            "(registered through the native API); use /v1/services/{service}/instances/{id}",
        )
    return found[0]


# -- agent: services ---------------------------------------------------------------------


@write_router.put(
    "/v1/agent/service/register",
    summary="Consul: register a service",
    response_class=Response,
    openapi_extra=openapi.merged(
        openapi.body(openapi.SERVICE), openapi.query(flags=("replace-existing-checks",))
    ),
    responses={200: {"description": "Registered (empty body)"}, **_WRITE_ERRORS},
)
async def register(request: Request) -> Response:
    """Consul's ``PUT /v1/agent/service/register``: create or replace an instance.

    "If the service (ID) already exists, it is updated"; its checks missing from the
    request stay unless ``?replace-existing-checks`` ("Missing health checks from the
    request will be deleted from the agent").  A service ID another service already has
    is refused with 409 (Consul ids are unique per agent).  Without ``Address`` the
    instance gets the address the request came from (Consul: "the address of the
    agent").
    """
    state = request.app.state
    registration = parse_registration(
        await _body(request),
        default_address=request.client.host if request.client else None,
        defaults=state.health_defaults,
        reserved_names=state.reserved_names,
    )
    instance = registration.instance
    permit_consul(request, instance.service)
    registry = _registry(request)
    catalog = registry.holder.current
    for consul_id in registration.explicit_check_ids:
        for other, _ in checks_with_id(catalog, consul_id):
            if (other.service, other.id) != (instance.service, instance.id):
                raise ConsulError(409, f"CheckID {consul_id!r} is taken by service ID {other.id!r}")
    if not _flag(request, "replace-existing-checks"):
        instance = _keep_checks(registry, instance)
    await registry.register(instance, exclusive_id=True)
    return Response(status_code=200)


def _keep_checks(registry: Registry, instance: Instance) -> Instance:
    """``instance`` with the checks its stored self has and the request does not name."""
    view = registry.holder.current.get_service(instance.service)
    label = None if view is None else view.target_of.get(instance.id)
    if view is None or label is None:
        return instance
    given = {check.id for check in instance.checks}
    kept = [
        Check(spec=check.spec, status=check.spec.initial_status)
        for check in view.targets[label].checks
        if check.id not in given
    ]
    if not kept:
        return instance
    merged = (*instance.checks, *kept)
    hint = "; register with ?replace-existing-checks to drop the old ones"
    if len(merged) > MAX_CHECKS:
        raise bad_request(f"Checks: an instance has at most {MAX_CHECKS} checks{hint}")
    if sum(1 for check in merged if check.spec.kind is CheckKind.TTL) > 1:
        raise bad_request(f"Checks: an instance has at most one TTL check{hint}")
    return replace(instance, checks=merged)


@write_router.put(
    "/v1/agent/service/deregister/{service_id}",
    summary="Consul: deregister a service",
    response_class=Response,
    responses={200: {"description": "Deregistered (empty body)"}, **_WRITE_ERRORS},
)
async def deregister(service_id: str, request: Request) -> Response:
    """Consul's ``PUT /v1/agent/service/deregister/:service_id``: remove the instance with
    that id, whatever its service; 404 when no instance has it."""
    instance = _one_instance(
        request,
        service_id,
        f'Unknown service ID "{service_id}". Ensure that the service ID is passed, not '
        "the service name.",
    )
    permit_consul(request, instance.service)
    await _registry(request).deregister(instance.service, instance.id)
    return Response(status_code=200)


@router.get(
    "/v1/agent/services",
    summary="Consul: every service instance",
    responses=_READ_ERRORS,
    openapi_extra=openapi.READ,
)
async def agent_services(request: Request) -> JSONResponse:
    """Consul's ``GET /v1/agent/services``: ``{ID: service}`` for every instance.  An id
    that several services have (possible only through the native API) is keyed
    ``<service>:<id>``."""
    await _read(request)
    catalog = _registry(request).holder.current
    instances = [i for view in catalog.services.values() for i in view.instances]
    counts: dict[str, int] = {}
    for instance in instances:
        counts[instance.id] = counts.get(instance.id, 0) + 1
    out = {}
    for instance in sorted(instances, key=lambda i: (i.id, i.service)):
        key = instance.id if counts[instance.id] == 1 else f"{instance.service}:{instance.id}"
        out[key] = agent_service(instance)
    return _reply(out, catalog.index)


@router.get(
    "/v1/agent/service/{service_id}",
    summary="Consul: one service instance",
    responses={**_READ_ERRORS, **documented(404, 409)},
    openapi_extra=openapi.READ,
)
async def agent_service_by_id(service_id: str, request: Request) -> JSONResponse:
    """Consul's ``GET /v1/agent/service/:service_id``; 404 for an unknown id."""
    await _read(request)
    index = _registry(request).holder.current.index
    instance = _one_instance(request, service_id, f"unknown service ID: {service_id}")
    body = agent_service(instance)
    content_hash = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    body["ContentHash"] = content_hash
    return _reply(body, index, {"X-Consul-ContentHash": content_hash})


# -- agent: TTL checks -------------------------------------------------------------------


async def _update_ttl(request: Request, check_id: str, status: Status, output: str) -> Response:
    """Set a TTL check's status and output and restart its TTL, as Consul does."""
    registry = _registry(request)
    found = checks_with_id(registry.holder.current, check_id)
    if not found:
        raise ConsulError(404, f'Unknown check ID "{check_id}"')
    if len(found) > 1:
        owners = ", ".join(sorted(f"{i.service}/{i.id}" for i, _ in found))
        raise ConsulError(409, f"CheckID {check_id!r} is ambiguous: {owners} have it")
    instance, check = found[0]
    permit_consul(request, instance.service)
    if check.spec.kind is not CheckKind.TTL:
        raise bad_request(f'CheckID "{check_id}" does not have associated TTL')
    await registry.heartbeat(instance.service, instance.id, status=status, output=output)
    return Response(status_code=200)


@write_router.put(
    "/v1/agent/check/pass/{check_id}",
    summary="Consul: pass a TTL check",
    response_class=Response,
    openapi_extra=openapi.query("note"),
    responses={200: {"description": "Updated (empty body)"}, **_WRITE_ERRORS},
)
async def check_pass(check_id: str, request: Request) -> Response:
    """Consul: "sets the status of the check to passing and resets the TTL clock";
    ``?note=`` becomes its output."""
    note = clip_output(request.query_params.get("note", ""))
    return await _update_ttl(request, check_id, Status.PASSING, note)


@write_router.put(
    "/v1/agent/check/warn/{check_id}",
    summary="Consul: warn a TTL check",
    response_class=Response,
    openapi_extra=openapi.query("note"),
    responses={200: {"description": "Updated (empty body)"}, **_WRITE_ERRORS},
)
async def check_warn(check_id: str, request: Request) -> Response:
    """Consul: "sets the status of the check to warning and resets the TTL clock"; the
    warning lasts until the next pass or until the TTL runs out (then critical)."""
    note = clip_output(request.query_params.get("note", ""))
    return await _update_ttl(request, check_id, Status.WARNING, note)


@write_router.put(
    "/v1/agent/check/fail/{check_id}",
    summary="Consul: fail a TTL check",
    response_class=Response,
    openapi_extra=openapi.query("note"),
    responses={200: {"description": "Updated (empty body)"}, **_WRITE_ERRORS},
)
async def check_fail(check_id: str, request: Request) -> Response:
    """Consul: "sets the status of the check to critical and resets the TTL clock"."""
    note = clip_output(request.query_params.get("note", ""))
    return await _update_ttl(request, check_id, Status.CRITICAL, note)


@write_router.put(
    "/v1/agent/check/update/{check_id}",
    summary="Consul: update a TTL check",
    response_class=Response,
    openapi_extra=openapi.body(openapi.CHECK_UPDATE),
    responses={200: {"description": "Updated (empty body)"}, **_WRITE_ERRORS},
)
async def check_update(check_id: str, request: Request) -> Response:
    """Consul's ``PUT /v1/agent/check/update/:check_id`` with ``{"Status", "Output"}``:
    like pass, warn and fail, with the status in the body."""
    body = fields(await _body(request), "", _UPDATE, {})
    given = text(body.get("Status", ""), "Status")
    status = _STATUSES.get(given)
    if status is None:
        raise bad_request(f"Invalid check status: '{given}'")
    output = clip_output(text(body.get("Output", ""), "Output"))
    return await _update_ttl(request, check_id, status, output)


# -- health and catalog ------------------------------------------------------------------


def _tags(request: Request) -> set[str]:
    return {tag.lower() for tag in request.query_params.getlist("tag")}


def _instances(request: Request, service: str) -> list[Instance]:
    view = _registry(request).holder.current.get_service(service.lower())
    tags = _tags(request)
    if view is None:
        return []
    found = [i for i in view.instances if tags <= set(i.tags)]
    return sorted(found, key=lambda i: i.id)


@router.get(
    "/v1/health/service/{service}",
    summary="Consul: a service's health",
    responses=_READ_ERRORS,
    openapi_extra=openapi.merged(
        openapi.READ, openapi.query(flags=("passing",), repeated=("tag",))
    ),
)
async def health_service(service: str, request: Request) -> JSONResponse:
    """Consul's ``GET /v1/health/service/:service``: ``[{Node, Service, Checks}]``, every
    instance (``?passing``: "only nodes with all checks in the passing state"; ``?tag``,
    repeatable: only instances with every tag); ``[]`` for an unknown service."""
    await _read(request)
    registry = _registry(request)
    index, now, node = registry.holder.current.index, registry.now(), _node(request)
    passing = _flag(request, "passing")
    entries = []
    for instance in _instances(request, service):
        statuses = [check_status(instance, c, now) for c in instance.checks]
        if passing and any(status is not Status.PASSING for status in statuses):
            continue
        entries.append(health_entry(node, instance, now, index, _live(request, instance)))
    return _reply(entries, index)


@router.get(
    "/v1/catalog/services",
    summary="Consul: every service and its tags",
    responses=_READ_ERRORS,
    openapi_extra=openapi.READ,
)
async def catalog_services(request: Request) -> JSONResponse:
    """Consul's ``GET /v1/catalog/services``: ``{name: [tags of its instances]}``."""
    await _read(request)
    catalog = _registry(request).holder.current
    services = {
        name: sorted({tag for i in view.instances for tag in i.tags})
        for name, view in sorted(catalog.services.items())
    }
    return _reply(services, catalog.index)


@router.get(
    "/v1/catalog/service/{service}",
    summary="Consul: a service's instances",
    responses=_READ_ERRORS,
    openapi_extra=openapi.merged(openapi.READ, openapi.query(repeated=("tag",))),
)
async def catalog_service(service: str, request: Request) -> JSONResponse:
    """Consul's ``GET /v1/catalog/service/:service``: every instance, healthy or not
    (``?tag``, repeatable: only instances with every tag); ``[]`` when unknown."""
    await _read(request)
    registry = _registry(request)
    index, node = registry.holder.current.index, _node(request)
    return _reply([catalog_entry(node, i, index) for i in _instances(request, service)], index)
