"""A small synchronous client of the registration API, used by the ``srvdns`` commands."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from srvdns.cafile import verify
from srvdns.errors import ApiClientError


class ApiError(ApiClientError):
    """The srvdns HTTP API refused a request or could not be reached.

    ``status`` is the HTTP status, or None when no response arrived; ``errors`` are
    the server's ``{"field", "message"}`` entries of a bad request.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        errors: Sequence[Mapping[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.errors = tuple(errors)


def registration_body(
    *,
    address: str,
    port: int,
    tags: Sequence[str] = (),
    meta: Mapping[str, str] | None = None,
    weight: int | None = None,
    priority: int | None = None,
    ttl: str | float | None = None,
    checks: Sequence[Mapping[str, Any]] | None = None,
    weights: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The JSON body of ``PUT /v1/services/{service}/instances/{id}``; unset fields are left
    out, so srvdns applies its defaults."""
    body: dict[str, Any] = {"address": address, "port": port}
    optional = {
        "tags": list(tags) or None,
        "meta": dict(meta) if meta else None,
        "weight": weight,
        "priority": priority,
        "ttl": ttl,
        "checks": [dict(c) for c in checks] if checks else None,
        "weights": dict(weights) if weights is not None else None,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    return body


class ApiClient:
    """Calls the API at ``base_url``; writes carry ``token`` as a bearer token.  An https
    URL is verified against ``ca`` (else ``$SRVDNS_CA``, else the system's CAs).

    Every method raises ``ApiError`` (an ``ApiClientError``) with the server's message
    on a 4xx or 5xx answer, and on a connection failure or timeout.
    """

    def __init__(
        self, base_url: str, token: str | None, timeout: float = 5.0, *, ca: str | None = None
    ) -> None:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, verify=verify(ca)
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def register(
        self,
        service: str,
        id: str,
        *,
        address: str,
        port: int,
        tags: Sequence[str] = (),
        meta: Mapping[str, str] | None = None,
        weight: int | None = None,
        priority: int | None = None,
        ttl: str | float | None = None,
        checks: Sequence[Mapping[str, Any]] = (),
        weights: Mapping[str, int] | None = None,
    ) -> dict[str, Any]:
        """Create or replace an instance; returns the stored instance.

        ``checks`` are health checks as the API takes them (``{"http": "/health"}``,
        ``{"tcp": "host:port", "interval": "5s"}``, ...); ``weights`` the SRV weights by
        health (``{"passing": 10, "warning": 1}``).
        """
        body = registration_body(
            address=address,
            port=port,
            tags=tags,
            meta=meta,
            weight=weight,
            priority=priority,
            ttl=ttl,
            checks=checks,
            weights=weights,
        )
        return self._object("PUT", _instance_path(service, id), json=body)

    def deregister(self, service: str, id: str) -> None:
        """Remove an instance."""
        self._request("DELETE", _instance_path(service, id))

    def heartbeat(self, service: str, id: str) -> dict[str, Any]:
        """Renew an instance's TTL lease; returns the instance with its new expiry."""
        return self._object("PUT", _instance_path(service, id) + "/heartbeat")

    def list_services(self) -> list[dict[str, Any]]:
        """Every service: ``{"name", "instances", "healthy"}``."""
        services = self._object("GET", "/v1/services").get("services")
        if not isinstance(services, list):
            raise ApiError(f"{self.base_url}: unexpected answer to GET /v1/services")
        return services

    def get_service(self, service: str) -> dict[str, Any]:
        """One service: ``{"name", "instances": [...]}``."""
        return self._object("GET", f"/v1/services/{_segment(service)}")

    def _object(self, method: str, path: str, json: Any = None) -> dict[str, Any]:
        response = self._request(method, path, json=json)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ApiError(
                f"{self.base_url}: {method} {path}: the answer is not a JSON object",
                status=response.status_code,
            )
        return body

    def _request(self, method: str, path: str, json: Any = None) -> httpx.Response:
        try:
            response = self._http.request(method, path, json=json)
        except httpx.TimeoutException:
            raise ApiError(f"{self.base_url}: no answer within the timeout") from None
        except httpx.HTTPError as exc:
            raise ApiError(f"{self.base_url}: cannot connect: {exc}") from None
        if response.status_code >= 400:
            raise _error_of(response)
        return response


def _error_of(response: httpx.Response) -> ApiError:
    """The server's ``{"error", "errors"}`` body as an exception; any other body as text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    errors: list[dict[str, str]] = []
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        message = body["error"]
        for entry in body.get("errors") or ():
            if isinstance(entry, dict):
                errors.append(
                    {"field": str(entry.get("field")), "message": str(entry.get("message"))}
                )
    else:
        message = response.text.strip()[:200] or response.reason_phrase
    details = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    text = f"{message} ({details})" if details else message
    status = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    return ApiError(f"{status}: {text}", status=response.status_code, errors=errors)


def _instance_path(service: str, instance_id: str) -> str:
    return f"/v1/services/{_segment(service)}/instances/{_segment(instance_id)}"


def _segment(value: str) -> str:
    """One percent-encoded path segment; '.' and '..' are encoded so no one folds them away."""
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return quote(value, safe="")
