"""A short path for registrations: ``PUT /v1/services/{service}/instances/{id}`` with JSON.

Registering is the API's most frequent write after heartbeats, and FastAPI's middleware,
routing, dependency resolution and response validation cost about as much CPU as the
write itself.  This plain ASGI wrapper answers the common case directly, doing what the
route does in the same order: the same name checks, the same authorization
(``fastpath.authorized``), the body parsed as FastAPI parses it (``json.loads``) and
validated by the very same ``RegisterRequest`` model (a body of the common fields
only by its validators without the model: ``api.simplebody``), the same registry call,
the same status (201 for a new instance, 200 for a replacement), the same
``InstanceOut`` JSON, and registry errors answered by the application's own error
function.  Anything else (a query string, another content type, a chunked or oversized
body, a body or name that does not validate, a missing or refused token, a reserved
name) goes to the application unchanged, body and all, which answers it exactly as
before; so does every other request.  Requests answered here are counted in the same
metrics, under the route's template.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from srvdns.api.app import MAX_BODY_SIZE, error_response, registry_error_response
from srvdns.api.fastpath import authorized, send_instance
from srvdns.api.routes import has_instance
from srvdns.api.schemas import InvalidField, RegisterRequest, instance_id, service_name
from srvdns.api.simplebody import simple_instance
from srvdns.errors import RegistryError

ROUTE = "/v1/services/{service}/instances/{id}"
"""The registration route's template, the label its requests are counted under."""

_REGISTRATION = re.compile(r"/v1/services/([^/]+)/instances/([^/]+)")


class _FallThrough(Exception):
    """The request is not the common case: the application answers it."""


class RegistrationFastPath:
    """Wraps the API application (``create_app``'s, or a wrapper of it with ``state``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state = getattr(app, "state")  # noqa: B009 (an ASGIApp has no declared state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "PUT"
            and not scope.get("query_string")
            and (match := _REGISTRATION.fullmatch(scope["path"])) is not None
        ):
            started = time.perf_counter()
            received: list[Message] = []
            try:
                status = await self._register(scope, match, receive, received, send)
            except _FallThrough:
                pass
            else:
                elapsed = time.perf_counter() - started
                self.state._state["request_metrics"].observe("PUT", ROUTE, status, elapsed)
                return
            if received:
                receive = _replay(received, receive)
        await self.app(scope, receive, send)

    async def _register(
        self,
        scope: Scope,
        match: re.Match[str],
        receive: Receive,
        received: list[Message],
        send: Send,
    ) -> int:
        """Answer the registration and return its status; raise _FallThrough (having
        changed nothing) to leave it to the app, with the messages read in ``received``."""
        authorization: bytes | None = None
        content_type: bytes | None = None
        length = -1
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is not None:  # which one counts is the app's business
                    raise _FallThrough
                authorization = value
            elif name == b"content-type":
                if content_type is not None:
                    raise _FallThrough
                content_type = value
            elif name == b"content-length" and value.isdigit():
                length = int(value)
            elif name == b"transfer-encoding":
                raise _FallThrough
        if content_type is None or content_type.lower() != b"application/json":
            raise _FallThrough
        if not 0 < length <= MAX_BODY_SIZE:
            raise _FallThrough
        try:
            service, instance = service_name(match[1]), instance_id(match[2])
        except ValueError:
            raise _FallThrough from None
        state = self.state
        values = state._state  # the attributes' dict: ``State.__getattr__`` costs 0.6 us a read
        reserved = values["reserved_names"]
        if service in reserved or not authorized(state, authorization or b"", service):
            raise _FallThrough
        body = await _read_body(receive, received)
        try:
            # as the route: FastAPI's json.loads, then the model's Python validation
            # (done without the model for a simple body, see ``simplebody``)
            parsed = json.loads(body)
            wanted = simple_instance(parsed, service, instance)
            if wanted is None:
                request = RegisterRequest.model_validate(parsed, from_attributes=True)
                wanted = request.to_instance(service, instance, state.health_defaults)
        except (ValueError, RecursionError, ValidationError, InvalidField):
            raise _FallThrough from None
        registry = values["registry"]
        existed = has_instance(registry, service, instance)
        try:
            stored = await registry.register(wanted)
        except RegistryError as exc:
            answer = registry_error_response(exc)
            await answer(scope, receive, send)
            return answer.status_code
        except Exception:  # a bug: answer as the app's error handler does, then raise it
            await error_response(500, "internal server error")(scope, receive, send)
            raise
        status = 200 if existed else 201
        await send_instance(state, stored, status, send)
        return status


async def _read_body(receive: Receive, received: list[Message]) -> bytes:
    """The whole request body, each message kept in ``received`` for a replay; raises
    _FallThrough on a disconnect or a body larger than ``MAX_BODY_SIZE``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        received.append(message)
        if message["type"] != "http.request":
            raise _FallThrough
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_SIZE:
            raise _FallThrough
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(received: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out the messages already read first, then reads on."""
    pending = list(received)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        message: Any = await receive()
        return message  # type: ignore[no-any-return]

    return replay
