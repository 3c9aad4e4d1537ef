"""Pydantic models of the registration API's request and response bodies."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
)

from srvdns.durations import parse_duration
from srvdns.health.definitions import MAX_CHECKS, CheckRequest, Defaults, resolve_checks
from srvdns.model import Check, CheckKind, Instance, Source, Status
from srvdns.validation import (
    MAX_META,
    check_instance_id,
    check_meta_key,
    check_meta_value,
    normalize_address,
    normalize_label,
)

MAX_TAGS = 64
MAX_TTL = 86400.0
"""The longest heartbeat lease, in seconds (one day)."""


def service_name(value: str) -> str:
    """A service name: a DNS label, lower-cased."""
    return normalize_label(value, "service name")


def instance_id(value: str) -> str:
    """An instance id: 1-64 of letters, digits, '-', '_' and '.'."""
    return check_instance_id(value)


def _tag(value: str) -> str:
    return normalize_label(value, "tag")


def _dedupe(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _address(value: str) -> str:
    if "%" in value:  # ipaddress accepts IPv6 scope ids; DNS cannot carry them
        raise ValueError(f"{value!r} has a scope id; an AAAA record cannot carry one")
    return normalize_address(value)


def _ttl(value: object) -> object:
    if value is None:
        return None
    seconds = parse_duration(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("ttl must be longer than zero")
    if seconds > MAX_TTL:
        raise ValueError(f"ttl must be at most {MAX_TTL:g} seconds (1d)")
    return seconds


Port = Annotated[StrictInt, Field(ge=1, le=65535)]
Uint16 = Annotated[StrictInt, Field(ge=0, le=65535)]
Tag = Annotated[StrictStr, AfterValidator(_tag)]
MetaKey = Annotated[StrictStr, AfterValidator(check_meta_key)]
MetaValue = Annotated[StrictStr, AfterValidator(check_meta_value)]
LeaseTtl = Annotated[
    float | None,
    BeforeValidator(_ttl, json_schema_input_type=str | float | None),
]


class InvalidField(ValueError):
    """A value that is wrong only together with another field of the body."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class WeightsIn(BaseModel):
    """SRV weights by health; either may be left out."""

    model_config = ConfigDict(extra="forbid")

    passing: Uint16 | None = Field(default=None, description="default: `weight`, else 1")
    warning: Uint16 | None = Field(default=None, description="default 1")


class RegisterRequest(BaseModel):
    """Body of ``PUT /v1/services/{service}/instances/{id}``."""

    model_config = ConfigDict(extra="forbid")

    address: Annotated[StrictStr, AfterValidator(_address)] = Field(
        description="IPv4 or IPv6 literal", examples=["10.0.0.7"]
    )
    port: Port = Field(examples=[8080])
    tags: Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(_dedupe)] = Field(
        default_factory=list, description="DNS labels; lower-cased and deduplicated"
    )
    meta: dict[MetaKey, MetaValue] = Field(
        default_factory=dict,
        max_length=MAX_META,
        description="published as TXT `key=value` strings",
    )
    weight: Uint16 | None = Field(default=None, description="SRV weight while passing; default 1")
    weights: WeightsIn | None = Field(
        default=None, description="SRV weights while passing and while warning"
    )
    priority: Uint16 = Field(default=0, description="SRV priority (lower is preferred)")
    ttl: LeaseTtl = Field(
        default=None,
        description="heartbeat lease: '30s', '500ms', '5m' or seconds; none means no lease. "
        "Shorthand for a ttl check",
        examples=["30s"],
    )
    check: CheckRequest | None = Field(default=None, description="one health check")
    checks: list[CheckRequest] = Field(
        default_factory=list, max_length=MAX_CHECKS, description="health checks"
    )

    def to_instance(self, service: str, instance_id: str, defaults: Defaults) -> Instance:
        """The instance to hand the registry, its checks resolved with ``defaults``.

        Raises InvalidField for fields that contradict each other.
        """
        requests = ([self.check] if self.check is not None else []) + list(self.checks)
        field = "checks" if self.checks else "check"
        if self.ttl is not None:
            if any(r.kind is CheckKind.TTL for r in requests):
                raise InvalidField("ttl", "ttl is a ttl check; do not give a ttl check as well")
            requests.append(CheckRequest(ttl=self.ttl))
        try:
            specs = resolve_checks(requests, self.address, self.port, defaults)
        except ValueError as exc:
            raise InvalidField(field, str(exc)) from None
        passing = self.weight
        if self.weights is not None and self.weights.passing is not None:
            if passing is not None and passing != self.weights.passing:
                raise InvalidField("weights.passing", "weight and weights.passing disagree")
            passing = self.weights.passing
        warning = (
            1 if self.weights is None or self.weights.warning is None else self.weights.warning
        )
        return Instance(
            service=service,
            id=instance_id,
            address=self.address,
            port=self.port,
            tags=tuple(self.tags),
            meta=tuple(self.meta.items()),
            weight=1 if passing is None else passing,
            warning_weight=warning,
            priority=self.priority,
            ttl=self.ttl,
            checks=tuple(Check(spec=spec, status=spec.initial_status) for spec in specs),
        )


def rfc3339(timestamp: float) -> str:
    """Unix seconds as an RFC 3339 UTC time with milliseconds: ``2024-05-01T12:00:00.000Z``.

    ``datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")``, with
    ``Z`` for ``+00:00``: the timestamp rounded to the microsecond as ``fromtimestamp``
    rounds it (half to even), the milliseconds cut off as ``isoformat`` cuts them.  The
    date and time of the second are kept from one call to the next: the answer of every
    registration and heartbeat holds its time, and most fall in the second of the last.
    """
    fraction, whole = math.modf(timestamp)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        whole += 1.0
        micros -= 1_000_000
    elif micros < 0:
        whole -= 1.0
        micros += 1_000_000
    global _second
    second, text = _second
    if whole != second:
        text = datetime.fromtimestamp(whole, UTC).isoformat()[:19]
        _second = (whole, text)
    return f"{text}.{micros // 1000:03d}Z"


_second: tuple[float, str] = (math.nan, "")
"""The last second ``rfc3339`` formatted, and its date and time (up to the seconds)."""


class WeightsOut(BaseModel):
    """The SRV weight DNS publishes while the instance is passing, and while warning."""

    passing: int
    warning: int


class CheckOut(BaseModel):
    """One health check: its definition and its state."""

    id: str
    kind: CheckKind
    status: Status = Field(description="a ttl check is critical once its lease has lapsed")
    output: str = Field(description="the last result's output, at most 4 KiB")
    last_change: str = Field(description="RFC 3339 UTC: when the status last changed")
    last_change_unix: float
    successes: int = Field(description="consecutive passing or warning results")
    failures: int = Field(description="consecutive critical results")
    http: str | None
    method: str | None
    headers: dict[str, str]
    tls_skip_verify: bool
    tcp: str | None
    ttl: float | None
    interval: float
    timeout: float
    success_before_passing: int
    failures_before_critical: int
    deregister_critical_after: float | None
    initial_status: Status

    @classmethod
    def of(cls, check: Check, instance: Instance, now: float) -> CheckOut:
        """Report ``check`` of ``instance`` as seen at ``now``."""
        spec = check.spec
        http = spec.kind is CheckKind.HTTP
        return cls(
            id=spec.id,
            kind=spec.kind,
            status=instance.check_status(check, now),
            output=check.output,
            last_change=rfc3339(check.last_change),
            last_change_unix=check.last_change,
            successes=check.successes,
            failures=check.failures,
            http=spec.target if http else None,
            method=spec.method if http else None,
            headers=dict(spec.headers),
            tls_skip_verify=spec.tls_skip_verify,
            tcp=spec.target if spec.kind is CheckKind.TCP else None,
            ttl=spec.ttl,
            interval=spec.interval,
            timeout=spec.timeout,
            success_before_passing=spec.success_before_passing,
            failures_before_critical=spec.failures_before_critical,
            deregister_critical_after=spec.deregister_critical_after,
            initial_status=spec.initial_status,
        )


class InstanceOut(BaseModel):
    """One instance as the API reports it; ``status`` is the effective health at ``now``."""

    service: str
    id: str
    address: str
    port: int
    tags: list[str]
    meta: dict[str, str]
    weight: int
    weights: WeightsOut
    priority: int
    ttl: float | None = Field(description="heartbeat lease in seconds, null without one")
    status: Status = Field(
        description="the worst of the checks (passing without any); critical once the lease "
        "has lapsed"
    )
    lease_expires: str | None = Field(description="RFC 3339 UTC")
    lease_expires_unix: float | None
    lease_remaining: float | None = Field(description="seconds left on the lease, at least 0")
    registered_at: str = Field(description="RFC 3339 UTC")
    registered_at_unix: float
    source: Source
    checks: list[CheckOut]

    @classmethod
    def of(
        cls, instance: Instance, now: float, live: Mapping[str, Check] | None = None
    ) -> InstanceOut:
        """Report ``instance`` as seen at ``now``; ``live`` holds the health loop's newer
        state of its checks (output and counters between status changes)."""
        expires = instance.lease_expires
        live = live or {}
        checks = [live.get(c.id, c) for c in instance.checks]
        return cls(
            service=instance.service,
            id=instance.id,
            address=instance.address,
            port=instance.port,
            tags=list(instance.tags),
            meta=dict(instance.meta),
            weight=instance.weight,
            weights=WeightsOut(passing=instance.weight, warning=instance.warning_weight),
            priority=instance.priority,
            ttl=instance.ttl,
            status=instance.effective_status(now),
            lease_expires=None if expires is None else rfc3339(expires),
            lease_expires_unix=expires,
            lease_remaining=None if expires is None else max(0.0, expires - now),
            registered_at=rfc3339(instance.registered_at),
            registered_at_unix=instance.registered_at,
            source=instance.source,
            checks=[CheckOut.of(check, instance, now) for check in checks],
        )


class ServiceSummary(BaseModel):
    """One line of the service list."""

    name: str
    instances: int
    healthy: int = Field(description="instances DNS hands out now (passing or warning)")


class ServiceList(BaseModel):
    """Body of ``GET /v1/services``."""

    index: int = Field(
        description="the registry's change index (also X-Consul-Index): pass it as "
        "`?index=` to wait for the next change"
    )
    services: list[ServiceSummary]


class ServiceDetail(BaseModel):
    """Body of ``GET /v1/services/{service}``."""

    index: int = Field(
        description="the registry's change index (also X-Consul-Index): pass it as "
        "`?index=` to wait for the next change"
    )
    name: str
    panic: bool = Field(
        default=False,
        description="too many instances are critical: some zone answers all of them",
    )
    panic_zones: list[str] = Field(default_factory=list, description="the zones in panic mode")
    instances: list[InstanceOut]


class FieldError(BaseModel):
    """What is wrong with one field of a request."""

    field: str
    message: str


class ErrorOut(BaseModel):
    """Every error response: a message, and for a bad request each offending field."""

    error: str
    errors: list[FieldError] | None = None


class Health(BaseModel):
    """Body of ``GET /healthz``."""

    status: str = "ok"


class Readiness(BaseModel):
    """Body of ``GET /readyz``: ``ready`` or ``not ready``, and each check's ``ok`` or what
    is wrong with it (``listeners``, ``snapshot``, ``database``)."""

    status: str
    checks: dict[str, str]
