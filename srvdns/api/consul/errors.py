"""Consul-style errors: a status code and a plain-text body, as Consul answers.

Consul's HTTP API answers an error with a status code and the message as plain text
("Missing service name", "Invalid check status: 'up'", "Permission denied"), not JSON;
clients such as py-consul map 400, 401, 403 and 404 to distinct exceptions and show the
text.  ``ConsulRoute`` gives every Consul endpoint that shape, whatever raised.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from srvdns.errors import (
    ConflictError,
    NotFoundError,
    RegistryError,
    SrvdnsError,
    StoreUnavailableError,
)


class ConsulError(SrvdnsError):
    """A Consul endpoint refused a request: ``status`` and a plain-text ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> ConsulError:
    """A 400 with ``message``."""
    return ConsulError(400, message)


def _registry_status(exc: RegistryError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, StoreUnavailableError):
        return 503
    return 500


_DESCRIPTIONS = {
    400: "Bad request (plain text, as Consul answers)",
    403: "Permission denied: a write without the API token",
    404: "Not found",
    409: "Conflict",
    413: "Request body too large",
    503: "The registry's database is unavailable",
}


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for Consul's plain-text errors with these status codes, so
    that the schema (``/openapi.json``) says what a Consul endpoint can answer."""
    content = {"text/plain": {"schema": {"type": "string"}}}
    return {code: {"description": _DESCRIPTIONS[code], "content": content} for code in codes}


CONSUL_PREFIXES = ("/v1/agent/", "/v1/health/", "/v1/catalog/")
"""Paths of the Consul endpoints, for answers given before routing (a body too large)."""


def is_consul_path(path: str) -> bool:
    """Whether ``path`` is a Consul endpoint's, whose errors are plain text."""
    return path.startswith(CONSUL_PREFIXES)


def text_error(status: int, message: str) -> PlainTextResponse:
    """The plain-text error response Consul gives."""
    return PlainTextResponse(message, status_code=status)


class ConsulRoute(APIRoute):
    """An APIRoute whose errors are Consul's plain-text responses instead of srvdns's JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler so that each error becomes a plain-text response."""
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except ConsulError as exc:
                return text_error(exc.status, exc.message)
            except RegistryError as exc:
                return text_error(_registry_status(exc), str(exc))
            except RequestValidationError as exc:
                messages = "; ".join(str(e.get("msg", "invalid")) for e in exc.errors())
                return text_error(400, messages or "invalid request")
            except HTTPException as exc:
                return text_error(exc.status_code, str(exc.detail))

        return route
