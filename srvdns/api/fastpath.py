"""A short path for the API's most frequent request: a heartbeat that renews a running lease.

``PUT /v1/services/{service}/instances/{id}/heartbeat`` without a body is by far the
most frequent request a registry serves (every instance, every few seconds).  Through
FastAPI's middleware, routing and dependency resolution it costs several times the
renewal itself, so this plain ASGI wrapper answers the common case directly: valid
names, the request authorized, and a renewal ``Registry.renew_lease`` can make in memory.
Anything else (a bad name, a missing token, a body, an unknown instance, a lapsed lease)
goes to the application unchanged, which answers it exactly as before; so does every
other request.  The answer is the same ``InstanceOut`` JSON the route sends.
"""

from __future__ import annotations

import re
import time

from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from srvdns.api.auth import accepted_tokens
from srvdns.api.instancejson import instance_json
from srvdns.api.schemas import instance_id, service_name
from srvdns.model import Instance

ROUTE = "/v1/services/{service}/instances/{id}/heartbeat"
"""The heartbeat route's template, the label its requests are counted under."""

_HEARTBEAT = re.compile(r"/v1/services/([^/]+)/instances/([^/]+)/heartbeat")


class HeartbeatFastPath:
    """Wraps the API application (``create_app``'s), whose ``state`` it reads."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state = getattr(app, "state")  # noqa: B009 (an ASGIApp has no declared state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "PUT":
            match = _HEARTBEAT.fullmatch(scope["path"])
            if match is not None:
                started = time.perf_counter()
                if await self._renew(scope, match, send):
                    self.state.request_metrics.observe(
                        "PUT", ROUTE, 200, time.perf_counter() - started
                    )
                    return
        await self.app(scope, receive, send)

    async def _renew(self, scope: Scope, match: re.Match[str], send: Send) -> bool:
        """Answer the heartbeat if it is the common case; False to leave it to the app."""
        authorization: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is not None:  # which one counts is the app's business
                    return False
                authorization = value
            elif name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
                return False
        try:
            service, instance = service_name(match[1]), instance_id(match[2])
        except ValueError:
            return False
        if not self._authorized(authorization or b"", service):
            return False
        renewed = await self.state.registry.renew_lease(service, instance)
        if renewed is None:
            return False
        await send_instance(self.state, renewed, 200, send)
        return True

    def _authorized(self, authorization: bytes, service: str) -> bool:
        return authorized(self.state, authorization, service)


async def send_instance(state: State, instance: Instance, status: int, send: Send) -> None:
    """Answer ``status`` with the route's ``InstanceOut`` JSON of ``instance`` (with the
    health loop's live check states), as the fast paths (this one and
    ``api.fastregister``) answer."""
    values = state._state  # the attributes' dict: ``State.__getattr__`` costs 0.6 us a read
    health = values["health"]
    live = None  # the live states of its checks: an instance without any has none to read
    if health is not None and instance.checks:
        live = health.states(instance.service, instance.id)
    body = instance_json(instance, values["registry"].now(), live)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-length", str(len(body)).encode()),
                (b"content-type", b"application/json"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def authorized(state: State, authorization: bytes, service: str) -> bool:
    """Whether ``auth.require_writer`` lets a request with this ``Authorization`` header
    through (the same rule: no tokens configured, or ``Authorization: Bearer <token>``
    whose grant covers ``service``); a refusal goes to the app, which answers 401 or 403.
    The fast paths (this one and ``api.fastregister``) share it."""
    tokens = accepted_tokens(state)
    if tokens is None:
        return True
    scheme, _, given = authorization.partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    try:
        grant = tokens.find(given.decode("ascii"))
    except UnicodeDecodeError:
        return False
    return grant is not None and grant.may_write(service)
