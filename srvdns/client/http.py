"""HTTP calls to discovered instances: ``Client`` (blocking) and ``AsyncClient`` (asyncio)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from srvdns.client.discovery import Discovery
from srvdns.client.effects import Effect, Http, Policy, arun, run
from srvdns.client.errors import CallError
from srvdns.client.resolver import AsyncResolver, Resolver

log = logging.getLogger("srvdns.client")


class CallPolicy:
    """The retry plan of a call; sans-I/O.

    The instances whose circuit is not open are tried in RFC 2782 order, each at most
    once, at most ``attempts`` of them.  A connection error, a timeout or a 5xx answer
    moves on to the next instance; every outcome is reported to the breaker (a 4xx is a
    success: the instance answered).  The call returns the first answer below 500, else the
    last 5xx answer; it raises CallError when no instance answered at all.
    """

    def __init__(self, discovery: Discovery, *, scheme: str = "http", attempts: int = 3) -> None:
        if attempts < 1:
            raise ValueError("a call needs at least one attempt")
        self.discovery = discovery
        self.scheme = scheme
        self.attempts = attempts

    def call(
        self, service: str, path: str, method: str, tag: str | None, options: Mapping[str, Any]
    ) -> Policy[httpx.Response]:
        """Send ``method path`` to an instance of ``service``, failing over as above."""
        found = yield from self.discovery.lookup(service, tag)
        failures: list[tuple[str, Exception]] = []
        last: httpx.Response | None = None
        tried = 0
        for instance in self.discovery.usable(found):
            if tried == self.attempts:
                break
            if not self.discovery.breakers.acquire(instance.key):
                continue  # another call took the half-open circuit's trial meanwhile
            tried += 1
            url = instance.url(path, self.scheme)
            try:
                response: httpx.Response = yield Http(method, url, options)
            except httpx.TransportError as exc:
                self.discovery.report(instance, ok=False)
                failures.append((url, exc))
                log.info("%s %s failed: %s", method, url, exc)
                continue
            ok = response.status_code < 500
            self.discovery.report(instance, ok)
            if ok:
                return response
            log.info("%s %s answered %d", method, url, response.status_code)
            last = response
        if last is not None:
            return last
        if not failures:
            raise self.discovery.no_instances(found, service)
        raise CallError(
            f"{method} {path} on {service}: no answer from {len(failures)} instance(s); "
            f"last: {failures[-1][1]!r}",
            failures,
        ) from failures[-1][1]


class Client:
    """Calls services found through DNS, blocking; safe to share between threads.

    ``resolver`` defaults to ``Resolver()``; ``http`` to an ``httpx.Client`` with
    ``timeout``.  Closing the client closes an ``http`` client it created.
    """

    def __init__(
        self,
        resolver: Resolver | None = None,
        *,
        scheme: str = "http",
        attempts: int = 3,
        timeout: float = 5.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.resolver = resolver if resolver is not None else Resolver()
        self.policy = CallPolicy(self.resolver.core, scheme=scheme, attempts=attempts)
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)

    def call(
        self,
        service: str,
        path: str,
        method: str = "GET",
        *,
        tag: str | None = None,
        **options: Any,
    ) -> httpx.Response:
        """``method path`` on an instance of ``service`` (carrying ``tag``), retried on
        another instance on a connection error or a 5xx answer (see ``CallPolicy``).
        ``options`` (``params``, ``json``, ``headers``, ``timeout``, ...) go to httpx."""
        return run(self.policy.call(service, path, method, tag, options), self._perform)

    def _perform(self, effect: Effect) -> Any:
        if isinstance(effect, Http):
            return self._http.request(effect.method, effect.url, **effect.options)
        return self.resolver.perform(effect)

    def close(self) -> None:
        """Close the HTTP connection pool if this client created it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient:
    """``Client`` for asyncio: ``resolver`` defaults to ``AsyncResolver()``, ``http`` to an
    ``httpx.AsyncClient``."""

    def __init__(
        self,
        resolver: AsyncResolver | None = None,
        *,
        scheme: str = "http",
        attempts: int = 3,
        timeout: float = 5.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.resolver = resolver if resolver is not None else AsyncResolver()
        self.policy = CallPolicy(self.resolver.core, scheme=scheme, attempts=attempts)
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)

    async def call(
        self,
        service: str,
        path: str,
        method: str = "GET",
        *,
        tag: str | None = None,
        **options: Any,
    ) -> httpx.Response:
        """See ``Client.call``."""
        return await arun(self.policy.call(service, path, method, tag, options), self._perform)

    async def _perform(self, effect: Effect) -> Any:
        if isinstance(effect, Http):
            return await self._http.request(effect.method, effect.url, **effect.options)
        return await self.resolver.perform(effect)

    async def aclose(self) -> None:
        """Close the HTTP connection pool if this client created it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
