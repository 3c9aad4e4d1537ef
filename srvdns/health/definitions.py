"""Health check definitions as the API and the config file write them, and how defaults apply.

One pydantic model, ``CheckRequest``, validates a check in a registration body and in a
``[[zone.service]]`` instance alike; ``resolve_checks`` turns the requests of one
instance into ``CheckSpec`` values with every default filled in, so what the registry
stores (and the API shows) is exactly what the loop runs.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Sequence
from typing import Annotated, Protocol
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from srvdns.durations import format_duration, parse_duration
from srvdns.model import CheckKind, CheckSpec, Status
from srvdns.validation import check_instance_id

MAX_CHECKS = 16
"""Most checks one instance may have."""
MAX_OUTPUT = 4096
"""A check's output (an HTTP response body, an error) is cut to this many bytes."""
MIN_INTERVAL = 0.1
MAX_INTERVAL = 86400.0
MAX_TTL = 86400.0
MAX_DEREGISTER_AFTER = 30 * 86400.0
MAX_THRESHOLD = 100
MAX_HEADERS = 32
MAX_URL = 2048

_METHOD = re.compile(r"^[A-Z]{1,16}$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOST = re.compile(
    r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


class Defaults(Protocol):
    """The ``[health]`` defaults a check takes for the fields it leaves out."""

    @property
    def interval(self) -> float: ...
    @property
    def timeout(self) -> float: ...
    @property
    def initial_status(self) -> Status: ...
    @property
    def success_before_passing(self) -> int: ...
    @property
    def failures_before_critical(self) -> int: ...
    @property
    def deregister_critical_after(self) -> float | None: ...


def _duration(low: float, high: float, *, inclusive_low: bool = True) -> BeforeValidator:
    def check(value: object) -> object:
        if value is None:
            return None
        seconds = parse_duration(value)
        if not math.isfinite(seconds):
            raise ValueError("must be a finite duration")
        if seconds < low or (seconds == low and not inclusive_low):
            relation = "at least" if inclusive_low else "longer than"
            raise ValueError(f"must be {relation} {format_duration(low)}")
        if seconds > high:
            raise ValueError(f"must be at most {format_duration(high)}")
        return seconds

    return BeforeValidator(check, json_schema_input_type=str | float | None)


def _method(value: str) -> str:
    if not _METHOD.match(value):
        raise ValueError(f"method {value!r} must be 1-16 upper-case letters, e.g. 'GET'")
    return value


def _header_name(value: str) -> str:
    if not _HEADER_NAME.match(value):
        raise ValueError(f"header name {value!r} is not an HTTP token")
    if value.lower() in ("host", "content-length", "transfer-encoding", "connection"):
        raise ValueError(f"header {value!r} is set by srvdns")
    return value


def _header_value(value: str) -> str:
    if len(value) > 1024 or _CONTROL.search(value.replace("\t", " ")):
        raise ValueError("header value must be at most 1024 characters without control characters")
    return value


Interval = Annotated[float | None, _duration(MIN_INTERVAL, MAX_INTERVAL)]
Timeout = Annotated[float | None, _duration(0.0, MAX_INTERVAL, inclusive_low=False)]
Ttl = Annotated[float | None, _duration(0.0, MAX_TTL, inclusive_low=False)]
DeregisterAfter = Annotated[float | None, _duration(0.0, MAX_DEREGISTER_AFTER, inclusive_low=False)]
Threshold = Annotated[StrictInt, Field(ge=1, le=MAX_THRESHOLD)]
Method = Annotated[StrictStr, AfterValidator(_method)]
HeaderName = Annotated[StrictStr, AfterValidator(_header_name)]
HeaderValue = Annotated[StrictStr, AfterValidator(_header_value)]
CheckId = Annotated[StrictStr, AfterValidator(check_instance_id)]


class CheckRequest(BaseModel):
    """One health check, as a registration body or a config file writes it.

    Exactly one of ``http`` (a URL, or a path such as ``/health`` on the instance's own
    address and port), ``tcp`` (``host:port``) or ``ttl`` (a heartbeat lease) says what
    kind of check it is.  Fields left out take the ``[health]`` defaults.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: CheckId | None = Field(
        default=None, description="unique per instance; default the kind, then kind-2, ..."
    )
    http: StrictStr | None = Field(
        default=None, description="URL, or a path on the instance's address", examples=["/health"]
    )
    tcp: StrictStr | None = Field(default=None, description="host:port to connect to")
    ttl: Ttl = Field(default=None, description="heartbeat lease: renew with PUT .../heartbeat")
    method: Method | None = Field(default=None, description="HTTP method; default GET")
    headers: dict[HeaderName, HeaderValue] | None = Field(default=None, max_length=MAX_HEADERS)
    tls_skip_verify: StrictBool | None = Field(
        default=None, description="do not verify the server's TLS certificate"
    )
    interval: Interval = None
    timeout: Timeout = None
    success_before_passing: Threshold | None = None
    failures_before_critical: Threshold | None = None
    deregister_critical_after: DeregisterAfter = None
    initial_status: Status | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CheckRequest:
        kinds = [name for name in ("http", "tcp", "ttl") if getattr(self, name) is not None]
        if len(kinds) != 1:
            raise ValueError("set exactly one of http, tcp or ttl")
        if self.http is not None:
            _check_http(self.http)
        else:
            for name in ("method", "headers", "tls_skip_verify"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} is only for http checks")
        if self.tcp is not None:
            split_host_port(self.tcp)
        if self.ttl is not None:
            for name in ("interval", "timeout"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} does not apply to a ttl check (its ttl is the lease)")
        if self.interval is not None and self.timeout is not None and self.timeout > self.interval:
            raise ValueError(
                f"timeout {format_duration(self.timeout)} is longer than "
                f"interval {format_duration(self.interval)}"
            )
        return self

    @property
    def kind(self) -> CheckKind:
        """What the check does."""
        if self.http is not None:
            return CheckKind.HTTP
        if self.tcp is not None:
            return CheckKind.TCP
        return CheckKind.TTL

    def resolve(self, check_id: str, address: str, port: int, defaults: Defaults) -> CheckSpec:
        """The check with every default applied, for an instance at ``address:port``."""
        kind = self.kind
        sbp = self.success_before_passing or defaults.success_before_passing
        fbc = self.failures_before_critical or defaults.failures_before_critical
        dca = self.deregister_critical_after
        if dca is None:
            dca = defaults.deregister_critical_after
        if kind is CheckKind.TTL:
            assert self.ttl is not None
            return CheckSpec(
                id=check_id,
                kind=kind,
                interval=self.ttl,
                timeout=0.0,
                ttl=self.ttl,
                success_before_passing=sbp,
                failures_before_critical=fbc,
                deregister_critical_after=dca,
                # registering is the first heartbeat: the lease starts out passing
                initial_status=self.initial_status or Status.PASSING,
            )
        interval = self.interval if self.interval is not None else defaults.interval
        timeout = min(self.timeout if self.timeout is not None else defaults.timeout, interval)
        initial = self.initial_status or defaults.initial_status
        if kind is CheckKind.TCP:
            assert self.tcp is not None
            host, tcp_port = split_host_port(self.tcp)
            target = join_host_port(host, tcp_port)
        else:
            assert self.http is not None
            target = self.http
            if target.startswith("/"):
                target = f"http://{join_host_port(address, port)}{target}"
        return CheckSpec(
            id=check_id,
            kind=kind,
            interval=interval,
            timeout=timeout,
            target=target,
            method=self.method or "GET",
            headers=tuple((self.headers or {}).items()),
            tls_skip_verify=bool(self.tls_skip_verify),
            success_before_passing=sbp,
            failures_before_critical=fbc,
            deregister_critical_after=dca,
            initial_status=initial,
        )


def check_ids(requests: Sequence[CheckRequest]) -> list[str]:
    """Each check's id: its own, else its kind, then ``<kind>-2``, ``<kind>-3``, ...

    Raises ValueError when two checks end up with the same id or more than one is a ttl
    check (an instance has one heartbeat lease).
    """
    if len(requests) > MAX_CHECKS:
        raise ValueError(f"an instance has at most {MAX_CHECKS} checks")
    if sum(1 for r in requests if r.kind is CheckKind.TTL) > 1:
        raise ValueError("an instance has at most one ttl check (one heartbeat lease)")
    ids: list[str] = []
    taken = {r.id for r in requests if r.id is not None}
    counts: dict[str, int] = {}
    for request in requests:
        if request.id is not None:
            check_id = request.id
        else:
            base = request.kind.value
            counts[base] = counts.get(base, 0) + 1
            check_id = base if counts[base] == 1 else f"{base}-{counts[base]}"
            while check_id in taken or check_id in ids:
                counts[base] += 1
                check_id = f"{base}-{counts[base]}"
        if check_id in ids:
            raise ValueError(f"two checks have the id {check_id!r}")
        ids.append(check_id)
    return ids


def resolve_checks(
    requests: Sequence[CheckRequest], address: str, port: int, defaults: Defaults
) -> tuple[CheckSpec, ...]:
    """Every check of an instance, resolved; raises ValueError like ``check_ids``."""
    ids = check_ids(requests)
    return tuple(
        request.resolve(check_id, address, port, defaults)
        for check_id, request in zip(ids, requests, strict=True)
    )


def split_host_port(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port); raises ValueError."""
    value = text.strip()
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
        if not sep:
            raise ValueError(f"tcp {text!r} must look like '[::1]:5432'")
    else:
        host, sep, port = value.rpartition(":")
        if not sep or not host:
            raise ValueError(f"tcp {text!r} must be HOST:PORT, e.g. '10.0.0.5:5432'")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"tcp {text!r}: port must be 1-65535")
    _check_host(host, f"tcp {text!r}")
    return host, int(port)


def join_host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _check_host(host: str, what: str) -> None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if len(host) > 253 or not _HOST.match(host):
            raise ValueError(f"{what}: {host!r} is not an IP address or host name") from None


def _check_http(url: str) -> None:
    if url.startswith("/"):
        if len(url) > MAX_URL or _CONTROL.search(url) or " " in url:
            raise ValueError("http path must be at most 2048 characters without spaces")
        return
    if len(url) > MAX_URL or _CONTROL.search(url) or " " in url:
        raise ValueError("http URL must be at most 2048 characters without spaces")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"http {url!r} must be an http:// or https:// URL, or a path")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise ValueError(f"http {url!r}: {exc}") from None
    if not host:
        raise ValueError(f"http {url!r} has no host")
    if port == 0:
        raise ValueError(f"http {url!r}: port must be 1-65535")
    _check_host(host, f"http {url!r}")
