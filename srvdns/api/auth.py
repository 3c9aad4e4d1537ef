"""Bearer-token authorization of API writes; reads stay open.

Each token has a grant (``srvdns.tokens``): admin, or the services it may write.  The
native endpoints name the service in their path and are checked here; the Consul
endpoints find the service from the body or from an instance or check id, and call
``permit_consul`` once they know it.  Tokens never appear in an error or a log line;
errors name the token by its ``name`` from the tokens file.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import State

from srvdns.api.consul.errors import ConsulError
from srvdns.tokens import Grant, Tokens

_bearer = HTTPBearer(
    auto_error=False,
    description="The token of the server's api_token_file; needed for writes when set.",
)

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="srvdns"'}


async def require_writer(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Let a write through when the server has no token, or the request carries one that
    may write the service of the path.

    No ``Authorization: Bearer`` header: 401 with a ``WWW-Authenticate: Bearer``
    challenge (RFC 6750 section 3).  An unknown token, or one whose grant does not
    cover the ``{service}`` of the path: 403.  The comparison takes the same time
    wherever the tokens differ.
    """
    tokens = accepted_tokens(request.app.state)
    if tokens is None:
        return
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "this request needs 'Authorization: Bearer <token>'", CHALLENGE)
    grant = tokens.find(credentials.credentials)
    if grant is None:
        raise HTTPException(403, "the bearer token is not valid")
    service = request.path_params.get("service")
    if not _permits(grant, service):
        raise HTTPException(403, _denied(grant, service))
    request.state.grant = grant


def accepted_tokens(state: State) -> Tokens | None:
    """The tokens writes need: ``state.tokens`` (the tokens file, reloaded on SIGHUP),
    else the one admin ``state.token``; None when writes are open."""
    # ``getattr(state, "tokens", None)`` without ``State.__getattr__`` (a Python method
    # that raises AttributeError for a missing key): every write reads it
    tokens: Tokens | None = state._state.get("tokens")
    if tokens is not None:
        return tokens
    token: str | None = state.token
    return None if token is None else Tokens.single(token)


def _permits(grant: Grant, service: str | None) -> bool:
    """A write that names no service (none does yet) is for admin tokens only."""
    return grant.admin if service is None else grant.may_write(service)


def _denied(grant: Grant, service: str | None) -> str:
    what = "this endpoint" if service is None else f"service {service.lower()!r}"
    return f"token {grant.name!r} may not write {what}"


def consul_token(request: Request) -> str | None:
    """The token of a Consul API request: ``X-Consul-Token``, else ``Authorization: Bearer``,
    else ``?token=`` (Consul reads all three, in that order)."""
    header = request.headers.get("x-consul-token")
    if header:
        return header
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.query_params.get("token") or None


async def require_consul_writer(request: Request) -> None:
    """Let a Consul API write through when the server has no token or the request carries it.

    Consul answers a write without a usable ACL token with 403: "Permission denied" when
    the request has no token (the anonymous token may not write), "ACL not found" when
    the token is unknown.  py-consul raises ``ACLPermissionDenied`` for both.
    """
    tokens = accepted_tokens(request.app.state)
    request.state.grant = None
    if tokens is None:
        return
    given = consul_token(request)
    if given is None:
        raise HTTPException(
            403,
            "Permission denied: this write needs a token "
            "(X-Consul-Token header, Authorization: Bearer or ?token=)",
        )
    grant = tokens.find(given)
    if grant is None:
        raise HTTPException(403, "ACL not found")
    request.state.grant = grant


def permit_consul(request: Request, service: str) -> None:
    """Refuse a Consul write to ``service`` whose token may not write it: 403 with
    Consul's message for a token that lacks ``service:write``."""
    grant: Grant | None = getattr(request.state, "grant", None)
    if grant is not None and not grant.may_write(service):
        raise ConsulError(
            403,
            f"Permission denied: token {grant.name!r} lacks permission "
            f"'service:write' on {service.lower()!r}",
        )
