"""The registration API's application factory and its one JSON error shape."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from email.message import Message as MimeHeader
from http import HTTPStatus
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi import HTTPException as FastApiHTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from srvdns import __version__, ui
from srvdns.api.consul import routes as consul
from srvdns.api.consul.errors import is_consul_path, text_error
from srvdns.api.consul.views import Node
from srvdns.api.decoding import FASTAPI_PARSE_ERROR, decode_failure
from srvdns.api.metrics import ApiMetrics, RequestMetrics
from srvdns.api.routes import router, write_router
from srvdns.config import HealthConfig
from srvdns.errors import ConflictError, NotFoundError, RegistryError, StoreUnavailableError
from srvdns.model import Check
from srvdns.registry.registry import Registry

MAX_BODY_SIZE = 64 * 1024
"""Largest request body accepted, in bytes; larger ones get 413."""

_REGISTRY_STATUS: tuple[tuple[type[RegistryError], int], ...] = (
    (NotFoundError, 404),
    (ConflictError, 409),
    (StoreUnavailableError, 503),
)
"""HTTP status of each registry error; any other RegistryError is a 500."""


class HealthView(Protocol):
    """What the API shows of the health loop (``HealthLoop`` is one)."""

    def states(self, service: str, instance_id: str) -> dict[str, Check]:
        """The live state of each check of an instance."""
        ...

    def panic_zones(self, service: str) -> list[str]:
        """The zones that answer ``service`` in panic mode now."""
        ...


def create_app(
    registry: Registry,
    *,
    token: str | None,
    reserved_names: frozenset[str] = frozenset(),
    health_defaults: HealthConfig | None = None,
    health: HealthView | None = None,
    metrics: CollectorRegistry | None = None,
    node_name: str | None = None,
    node_address: str = "127.0.0.1",
) -> FastAPI:
    """The HTTP API over ``registry``.

    With a ``token``, every write (PUT, DELETE) needs ``Authorization: Bearer <token>``;
    reads are open.  ``reserved_names`` are service names no registration may take
    (the zone's in-zone name-server hosts).  ``health_defaults`` (the config's
    ``[health]``) fill in what a registered check leaves out; ``health`` is the running
    health loop, whose live check state and panic modes the reads show; ``/metrics``
    serves ``metrics``.  Every error is JSON: ``{"error": message}``, plus
    ``"errors": [{"field", "message"}, ...]`` for a bad request; except on the Consul
    endpoints (``srvdns.api.consul``), which answer as Consul does.  There srvdns is one
    Consul node called ``node_name`` (default: the host name) at ``node_address``.
    """
    app = FastAPI(
        title="srvdns",
        version=__version__,
        summary="Service registration for the srvdns authoritative DNS server.",
        redoc_url=None,
    )
    metrics = metrics if metrics is not None else CollectorRegistry()
    app.add_middleware(BodyLimit, max_body_size=MAX_BODY_SIZE)
    app.state.request_metrics = RequestMetrics(metrics)
    app.add_middleware(ApiMetrics, metrics=app.state.request_metrics)  # outermost: counts 413s too
    app.state.registry = registry
    app.state.listeners = "ok"  # the runtime says otherwise until bound, and at shutdown
    app.state.token = token
    app.state.reserved_names = frozenset(name.lower() for name in reserved_names)
    app.state.health_defaults = health_defaults or HealthConfig()
    app.state.health = health
    app.state.metrics = metrics
    app.state.consul_node = Node(node_name or socket.gethostname(), node_address)
    app.include_router(write_router)
    app.include_router(router)
    app.include_router(consul.write_router)
    app.include_router(consul.router)
    ui.install(app, registry)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RegistryError, _registry_error)
    app.add_exception_handler(Exception, _internal_error)
    return app


def error_response(
    status: int,
    message: str,
    errors: Sequence[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The one shape of every error body."""
    body: dict[str, Any] = {"error": message}
    if errors is not None:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, HTTPException):
        raise exc
    message = str(exc.detail)
    if exc.status_code == 400 and message == FASTAPI_PARSE_ERROR and exc.__cause__ is not None:
        field = {"field": "body", "message": f"not valid JSON: {decode_failure(exc.__cause__)}"}
        return error_response(400, "the body is not valid JSON", [field])
    try:
        if message == HTTPStatus(exc.status_code).phrase:
            message = message.lower()
    except ValueError:
        pass
    return error_response(exc.status_code, message, headers=exc.headers)


async def _registry_error(request: Request, exc: Exception) -> JSONResponse:
    return registry_error_response(exc)


def registry_error_response(exc: Exception) -> JSONResponse:
    """The answer to a ``RegistryError`` (its status by kind, its message), shared with
    the registration fast path (``api.fastregister``) so that both answer alike."""
    status = next((code for kind, code in _REGISTRY_STATUS if isinstance(exc, kind)), 500)
    message = str(exc) or (type(exc).__doc__ or "registry error").splitlines()[0]
    return error_response(status, message)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug: answer in the error shape; Starlette re-raises it so the server logs it once."""
    return error_response(500, "internal server error")


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):
        raise exc
    errors = list(exc.errors())
    for error in errors:
        if error.get("type") == "json_invalid":
            detail = error.get("ctx", {}).get("error", "")
            field = {"field": "body", "message": f"not valid JSON: {detail}".rstrip(": ")}
            return error_response(400, "the body is not valid JSON", [field])
    fields = [_field_error(error) for error in errors]
    if not _is_json(request) and any(
        tuple(e.get("loc", ())) == ("body",) and e.get("type") != "missing" for e in errors
    ):
        return error_response(415, "the body must be JSON (Content-Type: application/json)")
    return error_response(422, "invalid request", fields)


_MAX_FIELD_PART = 256
"""Longest part of a field path echoed in an error (a meta key can be any length)."""


def _field_error(error: dict[str, Any]) -> dict[str, str]:
    loc = [
        part if len(part) <= _MAX_FIELD_PART else part[: _MAX_FIELD_PART - 3] + "..."
        for part in (str(part) for part in error.get("loc", ()) if part != "[key]")
    ]
    if loc and loc[0] in ("body", "path", "query", "header"):
        where, loc = loc[0], loc[1:]
    else:
        where = "body"
    kind = error.get("type", "")
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        message = "unknown field"
    elif kind == "missing":
        message = "a JSON object is required" if not loc else "required"
    elif not loc and where == "body":
        message = "the body must be a JSON object"
    return {"field": ".".join(loc) or where, "message": message}


def _is_json(request: Request) -> bool:
    content_type = request.headers.get("content-type")
    if not content_type:
        return False
    message = MimeHeader()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


class BodyLimit:
    """Refuse request bodies over ``max_body_size`` bytes with a JSON 413.

    A declared Content-Length is checked before the application runs; a chunked
    body is counted as it is read.
    """

    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.app = app
        self.max_body_size = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_size
        too_large = f"the request body is larger than {limit // 1024} KiB"
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                if is_consul_path(scope["path"]):
                    await text_error(413, too_large)(scope, receive, send)
                else:
                    await error_response(413, too_large)(scope, receive, send)
                return
        received = 0

        async def receive_with_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise FastApiHTTPException(413, too_large)
            return message

        await self.app(scope, receive_with_limit, send)
