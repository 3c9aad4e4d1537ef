"""Self-registration: register, renew the TTL lease in the background, deregister on exit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import httpx

from srvdns.api.client import _error_of, _instance_path, registration_body
from srvdns.cafile import verify
from srvdns.client.backoff import Backoff
from srvdns.client.effects import Effect, Http, Policy, Sleep, arun, run
from srvdns.client.errors import ClientError, RegistrationError
from srvdns.client.signals import SignalHook
from srvdns.durations import parse_duration

log = logging.getLogger("srvdns.client")

DEFAULT_API = "http://127.0.0.1:8054"
API_ENV = "SRVDNS_API"
TOKEN_ENV = "SRVDNS_TOKEN"


class Lease:
    """The registration policy; sans-I/O.

    Register; then, with a lease, heartbeat every third of its TTL, so that a lost
    heartbeat leaves time for retries before the lease lapses.  A failure (srvdns
    unreachable, a 5xx, or a 4xx, which is also logged as an error) is retried after
    ``backoff`` - exponential, with jitter, never longer than the heartbeat interval -
    until one works.  A 404 on
    a heartbeat means srvdns forgot the instance (it was deregistered, or its database
    was reset): register again at once.  ``deregister`` ends all of it, once.
    """

    def __init__(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        ttl: float | None,
        backoff: Backoff,
        rng: random.Random,
    ) -> None:
        self.path = path
        self.body = dict(body)
        self.interval = None if ttl is None else ttl / 3
        self.backoff = backoff
        self.rng = rng
        self.registered = False
        self.closed = False
        self.failures = 0
        self._deregistered = False

    def register(self, *, strict: bool = False) -> Policy[bool]:
        """One attempt to register; True when srvdns stored the instance.  ``strict``: a 4xx
        answer (a bad field, a missing or wrong token) raises RegistrationError."""
        try:
            response: httpx.Response = yield Http("PUT", self.path, {"json": self.body})
        except httpx.HTTPError as exc:
            self._failed("registration", repr(exc))
            return False
        if response.status_code >= 300:
            error = _error_of(response)
            if strict and response.status_code < 500:
                raise RegistrationError(f"{self.path}: {error.message}", response.status_code)
            self._failed("registration", error.message, loud=response.status_code < 500)
            return False
        self.registered = True
        self.failures = 0
        if self._deregistered:  # deregistered (on a signal) while this was on its way
            yield from self._delete()
        return True

    def keep_alive(self) -> Policy[None]:
        """Heartbeat, retry and re-register until ``close`` or ``deregister``."""
        while not self.closed:
            yield Sleep(self._next_delay())
            if self.closed:
                break
            if self.registered:
                yield from self._heartbeat()
            else:
                yield from self.register()

    def close(self) -> None:
        """Stop ``keep_alive`` at its next step."""
        self.closed = True

    def deregister(self) -> Policy[None]:
        """Stop, and remove the instance from srvdns (once; a 404 is fine).  A failure is
        logged, not raised: the lease, if any, lapses anyway."""
        self.closed = True
        if self._deregistered:
            return
        self._deregistered = True
        yield from self._delete()

    def _delete(self) -> Policy[None]:
        try:
            response: httpx.Response = yield Http("DELETE", self.path)
        except httpx.HTTPError as exc:
            log.warning("could not deregister %s: %r", self.path, exc)
            return
        self.registered = False
        if response.status_code >= 300 and response.status_code != 404:
            log.warning("could not deregister %s: %s", self.path, _error_of(response).message)

    def _heartbeat(self) -> Policy[None]:
        try:
            response: httpx.Response = yield Http("PUT", self.path + "/heartbeat")
        except httpx.HTTPError as exc:
            self._failed("heartbeat", repr(exc))
            return
        if response.status_code == 404:
            log.warning("srvdns forgot %s; registering it again", self.path)
            self.registered = False
            self.failures = 0
        elif response.status_code >= 300:
            error = _error_of(response).message
            self._failed("heartbeat", error, loud=response.status_code < 500)
        else:
            self.failures = 0

    def _failed(self, what: str, error: str, *, loud: bool = False) -> None:
        self.failures += 1
        level = logging.ERROR if loud else logging.WARNING
        log.log(level, "%s of %s failed: %s", what, self.path, error)

    def _next_delay(self) -> float | None:
        if self.failures:
            return self.backoff.delay(self.failures - 1, self.rng, cap=self.interval)
        if not self.registered:
            return 0.0  # srvdns forgot the instance
        return self.interval  # None without a lease: wait until closed


def lease_seconds(
    ttl: str | float | None, checks: Sequence[Mapping[str, Any]] | None
) -> float | None:
    """The lease to renew: ``ttl``, else the shortest ``ttl`` check, else None."""
    leases = [c["ttl"] for c in checks or () if c.get("ttl") is not None]
    if ttl is not None:
        leases.append(ttl)
    try:
        seconds = [parse_duration(lease) for lease in leases]
    except ValueError as exc:
        raise ClientError(f"ttl: {exc}") from None
    return min(seconds) if seconds else None


def _send(http: httpx.Client, effect: Effect) -> httpx.Response:
    if not isinstance(effect, Http):
        raise TypeError(f"cannot perform {effect!r} here")
    return http.request(effect.method, effect.url, **effect.options)


class Registration:
    """Registers one instance with srvdns for as long as it is entered, blocking
    (``with``, a heartbeat thread) or under asyncio (``async with``, a heartbeat task).

    Entering registers the instance (a 4xx answer raises RegistrationError; when srvdns
    is unreachable the registration is retried in the background) and renews its lease
    as ``Lease`` describes; leaving deregisters it.  With ``deregister_on_signal`` it is
    also deregistered on SIGTERM and SIGINT, before the signal goes on to the handler
    that was there before (see ``SignalHook``); enter it on the main thread then.

    ``api`` defaults to ``$SRVDNS_API``, else http://127.0.0.1:8054; ``token`` to
    ``$SRVDNS_TOKEN``; an https ``api`` is verified against ``ca`` (a CA file, else
    ``$SRVDNS_CA``, else the system's CAs).  ``ttl`` is the heartbeat lease (None: no
    lease, no heartbeats); ``checks`` are passed on as they are (a ``ttl`` check among
    them is renewed too).
    """

    def __init__(
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
        ttl: str | float | None = "10s",
        checks: Sequence[Mapping[str, Any]] | None = None,
        api: str | None = None,
        token: str | None = None,
        ca: str | None = None,
        deregister_on_signal: bool = False,
        timeout: float = 5.0,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.service = service
        self.id = id
        self.api = (api or os.environ.get(API_ENV) or DEFAULT_API).rstrip("/")
        token = token if token is not None else os.environ.get(TOKEN_ENV)
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._verify = verify(ca)
        self.timeout = timeout
        body = registration_body(
            address=address,
            port=port,
            tags=tags,
            meta=meta,
            weight=weight,
            priority=priority,
            ttl=ttl,
            checks=checks,
        )
        self.lease = Lease(
            _instance_path(service, id),
            body,
            ttl=lease_seconds(ttl, checks),
            backoff=backoff or Backoff(),
            rng=rng or random.Random(),
        )
        self._signals = SignalHook(self._on_signal) if deregister_on_signal else None
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._http: httpx.Client | None = None
        self._awake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._ahttp: httpx.AsyncClient | None = None

    @property
    def registered(self) -> bool:
        """Whether srvdns acknowledged the registration (and has not lost it since)."""
        return self.lease.registered

    def _client(self, timeout: float) -> httpx.Client:
        return httpx.Client(
            base_url=self.api, headers=self._headers, timeout=timeout, verify=self._verify
        )

    # blocking

    def start(self) -> None:
        """Register, then start the heartbeat thread (what ``with`` does)."""
        self._install_signals()
        self._http = http = self._client(self.timeout)
        try:
            run(self.lease.register(strict=True), self._perform)
        except BaseException:
            self._uninstall_signals()
            http.close()
            raise
        self._thread = threading.Thread(
            target=run,
            args=(self.lease.keep_alive(), self._perform),
            name=f"srvdns-lease-{self.service}-{self.id}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the heartbeats and deregister (what leaving ``with`` does)."""
        self._uninstall_signals()
        self.lease.close()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 1)
        if self._http is not None:
            run(self.lease.deregister(), self._perform)
            self._http.close()

    def _perform(self, effect: Effect) -> Any:
        if isinstance(effect, Sleep):
            self._wake.wait(effect.seconds)
            return None
        assert self._http is not None
        return _send(self._http, effect)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # asyncio

    async def astart(self) -> None:
        """Register, then start the heartbeat task (what ``async with`` does)."""
        self._loop = asyncio.get_running_loop()
        self._awake = asyncio.Event()
        self._ahttp = http = httpx.AsyncClient(
            base_url=self.api, headers=self._headers, timeout=self.timeout, verify=self._verify
        )
        self._install_signals()
        try:
            await arun(self.lease.register(strict=True), self._aperform)
        except BaseException:
            self._uninstall_signals()
            await http.aclose()
            raise
        self._task = asyncio.create_task(arun(self.lease.keep_alive(), self._aperform))

    async def astop(self) -> None:
        """Stop the heartbeats and deregister (what leaving ``async with`` does)."""
        self._uninstall_signals()
        self.lease.close()
        if self._awake is not None:
            self._awake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, self.timeout + 1)
            except Exception:
                log.exception("the heartbeat task of %s failed", self.lease.path)
        if self._ahttp is not None:
            await arun(self.lease.deregister(), self._aperform)
            await self._ahttp.aclose()

    async def _aperform(self, effect: Effect) -> Any:
        if isinstance(effect, Sleep):
            assert self._awake is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._awake.wait(), effect.seconds)
            return None
        assert self._ahttp is not None
        assert isinstance(effect, Http)
        return await self._ahttp.request(effect.method, effect.url, **effect.options)

    async def __aenter__(self) -> Self:
        await self.astart()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.astop()

    # signals

    def _install_signals(self) -> None:
        # first thing, so that a registration off the main thread fails before it starts
        if self._signals is not None:
            self._signals.install()

    def _uninstall_signals(self) -> None:
        if self._signals is not None:
            self._signals.uninstall()

    def _on_signal(self) -> None:
        """SIGTERM or SIGINT: deregister now, blocking (the process may end right after),
        then wake the heartbeat thread or task so that it ends."""
        self.lease.close()
        with self._client(min(self.timeout, 2.0)) as http:
            run(self.lease.deregister(), lambda effect: _send(http, effect))
        self._wake.set()
        if self._loop is not None and self._awake is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed already
                self._loop.call_soon_threadsafe(self._awake.set)
