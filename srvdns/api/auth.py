"""Bearer-token authorization of API writes; reads stay open."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_bearer = HTTPBearer(
    auto_error=False,
    description="The token of the server's api_token_file; needed for writes when set.",
)

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="srvdns"'}


async def require_writer(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Let a write through when the server has no token or the request carries it.

    No ``Authorization: Bearer`` header: 401 with a ``WWW-Authenticate: Bearer``
    challenge (RFC 6750 section 3).  A different token: 403.  The comparison takes
    the same time wherever the tokens differ.
    """
    token: str | None = request.app.state.token
    if token is None:
        return
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "this request needs 'Authorization: Bearer <token>'", CHALLENGE)
    if not secrets.compare_digest(credentials.credentials.encode(), token.encode()):
        raise HTTPException(403, "the bearer token is not valid")


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
    token: str | None = request.app.state.token
    if token is None:
        return
    given = consul_token(request)
    if given is None:
        raise HTTPException(
            403,
            "Permission denied: this write needs a token "
            "(X-Consul-Token header, Authorization: Bearer or ?token=)",
        )
    if not secrets.compare_digest(given.encode(), token.encode()):
        raise HTTPException(403, "ACL not found")
