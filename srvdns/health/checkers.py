"""One ``Checker`` protocol, one small class per check kind.

A checker runs one check once and says what it found.  It does not time itself out:
the loop cancels a check that overruns its timeout and counts it critical, the same
way for every kind.

A checker whose check can start, and often end, without waiting (a TCP connect to this
host, a TTL lease) also has ``check_now`` (``StartsNow``): the loop calls it from its
timer and needs no task, no timeout and no trip through the event loop for a check
that is over at once, which is most of what a check would otherwise cost.
"""

from __future__ import annotations

import _socket
import asyncio
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from srvdns.durations import format_duration
from srvdns.health import httpwire, tcpconnect
from srvdns.health.definitions import MAX_OUTPUT
from srvdns.model import CheckKind, CheckSpec, Instance, Status


@dataclass(frozen=True, slots=True)
class Result:
    """What one run of a check found."""

    status: Status
    output: str


class Checker(Protocol):
    """Runs checks of one kind."""

    kind: CheckKind

    async def check(self, spec: CheckSpec, instance: Instance) -> Result:
        """Run ``spec`` (a check of ``instance``) once.  Never raises for a failing target:
        a refused connection or a bad answer is a critical result."""
        ...


class Unfinished(Protocol):
    """A check ``check_now`` started that waits for its target."""

    async def result(self) -> Result:
        """Wait for the target and say what the check found (cancel it to time it out)."""
        ...

    def close(self) -> None:
        """Give the check up, when ``result`` is never awaited (a loop stopping)."""
        ...


class StartsNow(Protocol):
    """A checker that can start a check without a task of its own."""

    def check_now(self, spec: CheckSpec, instance: Instance) -> Result | Unfinished | None:
        """Start ``spec`` at once: its result when known at once, an ``Unfinished`` when
        it must wait, None when it cannot start this way (``check`` runs it instead).
        Gives the same results as ``check``."""
        ...


def http_status(code: int) -> Status:
    """Consul's mapping: 2xx passing, 429 Too Many Requests warning, anything else critical."""
    if 200 <= code < 300:
        return Status.PASSING
    if code == 429:
        return Status.WARNING
    return Status.CRITICAL


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)  # asyncio's text is "Connect call failed (...)"
    return str(exc) or type(exc).__name__


class HttpChecker:
    """GET (or ``spec.method``) ``spec.target``: the status code decides (``http_status``);
    the output is the status line and the start of the body."""

    kind = CheckKind.HTTP

    def __init__(self) -> None:
        self._verify = ssl.create_default_context()
        self._no_verify = ssl.create_default_context()
        self._no_verify.check_hostname = False
        self._no_verify.verify_mode = ssl.CERT_NONE
        self._requests: dict[tuple[str, str, tuple[tuple[str, str], ...]], httpwire.Request] = {}

    def _request(self, spec: CheckSpec) -> httpwire.Request:
        key = (spec.target, spec.method, spec.headers)
        request = self._requests.get(key)
        if request is None:
            if len(self._requests) > 100_000:
                self._requests.clear()
            request = httpwire.Request.build(spec.target, spec.method, spec.headers)
            self._requests[key] = request
        return request

    async def check(self, spec: CheckSpec, instance: Instance) -> Result:
        """One request on a new connection."""
        what = f"HTTP {spec.method} {spec.target}"
        try:
            request = self._request(spec)
            context = self._no_verify if spec.tls_skip_verify else self._verify
            response = await httpwire.fetch(request, limit=MAX_OUTPUT, ssl_context=context)
        except (OSError, httpwire.HttpCheckError, ValueError) as exc:
            return Result(Status.CRITICAL, f"{what}: {_describe(exc)}")
        line = f"{response.status} {response.reason}".rstrip()
        output = f"{what}: {line}"
        if response.body:
            output += " Output: " + response.body.decode("utf-8", errors="replace")
        return Result(http_status(response.status), output)


class TcpChecker:
    """Connect to ``spec.target``: accepted is passing, anything else critical."""

    kind = CheckKind.TCP

    def __init__(self) -> None:
        self._passing: dict[str, Result] = {}
        self._connector = tcpconnect.Connector()

    async def check(self, spec: CheckSpec, instance: Instance) -> Result:
        """One connect, then an immediate reset (``tcpconnect``)."""
        try:
            await tcpconnect.connect(tcpconnect.parse_target(spec.target))
        except (OSError, ValueError) as exc:
            return _tcp_failed(spec.target, exc)
        return self.passing(spec.target)

    def check_now(self, spec: CheckSpec, instance: Instance) -> Result | Unfinished | None:
        """The connect started without the event loop, for an IP address (a host name
        needs the resolver: None)."""
        try:
            target = tcpconnect.parse_target(spec.target)
            if target.family is None or target.address is None:
                return None
            sock = self._connector.begin(target.family, target.address)
        except (OSError, ValueError) as exc:
            return _tcp_failed(spec.target, exc)
        if sock is None:
            return self.passing(spec.target)
        return _Connecting(self, spec.target, sock)

    def passing(self, target: str) -> Result:
        """The passing result of ``target``, built once (a result is immutable)."""
        result = self._passing.get(target)
        if result is None:
            if len(self._passing) > 100_000:
                self._passing.clear()
            result = Result(Status.PASSING, f"TCP connect {target}: success")
            self._passing[target] = result
        return result


def _tcp_failed(target: str, exc: BaseException) -> Result:
    return Result(Status.CRITICAL, f"TCP connect {target}: {_describe(exc)}")


class _Connecting:
    """A TCP check whose handshake goes on after ``check_now``."""

    __slots__ = ("_checker", "_sock", "_target")

    def __init__(self, checker: TcpChecker, target: str, sock: _socket.socket) -> None:
        self._checker = checker
        self._target = target
        self._sock = sock

    async def result(self) -> Result:
        """Until the handshake is over (the socket is closed either way)."""
        try:
            await tcpconnect.finish(asyncio.get_running_loop(), self._sock)
        except OSError as exc:
            return _tcp_failed(self._target, exc)
        return self._checker.passing(self._target)

    def close(self) -> None:
        """Close the socket (closing twice is harmless)."""
        self._sock.close()


class TtlChecker:
    """The heartbeat lease: while it runs, the status the last heartbeat gave (passing, or
    the warning or critical of a Consul ``warn``/``fail``); critical once it has lapsed."""

    kind = CheckKind.TTL

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    async def check(self, spec: CheckSpec, instance: Instance) -> Result:
        """Read the instance's lease at the clock's now."""
        return self.check_now(spec, instance)

    def check_now(self, spec: CheckSpec, instance: Instance) -> Result:
        """Read the instance's lease at the clock's now (never waits)."""
        expires = instance.lease_expires
        if expires is None:
            return Result(Status.PASSING, "")
        left = expires - self._clock()
        if left > 0:
            stored = next((c for c in instance.checks if c.id == spec.id), None)
            if stored is None:
                return Result(Status.PASSING, "")
            return Result(stored.status, stored.output)
        late = format_duration(round(-left, 3)) if left < 0 else "0s"
        return Result(Status.CRITICAL, f"TTL expired: no heartbeat for {late} past the lease")


def default_checkers(clock: Callable[[], float] = time.time) -> dict[CheckKind, Checker]:
    """One checker of each kind; ``clock`` is the wall clock of TTL leases."""
    return {
        CheckKind.HTTP: HttpChecker(),
        CheckKind.TCP: TcpChecker(),
        CheckKind.TTL: TtlChecker(clock),
    }
