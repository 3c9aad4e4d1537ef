"""Pydantic models of the registration API's request and response bodies."""

from __future__ import annotations

import math
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
from srvdns.model import Instance, Source, Status
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
    weight: Uint16 = Field(default=1, description="SRV weight")
    priority: Uint16 = Field(default=0, description="SRV priority (lower is preferred)")
    ttl: LeaseTtl = Field(
        default=None,
        description="heartbeat lease: '30s', '500ms', '5m' or seconds; none means no lease",
        examples=["30s"],
    )

    def to_instance(self, service: str, instance_id: str) -> Instance:
        """The instance to hand the registry."""
        return Instance(
            service=service,
            id=instance_id,
            address=self.address,
            port=self.port,
            tags=tuple(self.tags),
            meta=tuple(self.meta.items()),
            weight=self.weight,
            priority=self.priority,
            ttl=self.ttl,
        )


def rfc3339(timestamp: float) -> str:
    """Unix seconds as an RFC 3339 UTC time with milliseconds: ``2024-05-01T12:00:00.000Z``."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class InstanceOut(BaseModel):
    """One instance as the API reports it; ``status`` is the effective health at ``now``."""

    service: str
    id: str
    address: str
    port: int
    tags: list[str]
    meta: dict[str, str]
    weight: int
    priority: int
    ttl: float | None = Field(description="heartbeat lease in seconds, null without one")
    status: Status = Field(description="critical once the lease has lapsed")
    lease_expires: str | None = Field(description="RFC 3339 UTC")
    lease_expires_unix: float | None
    lease_remaining: float | None = Field(description="seconds left on the lease, at least 0")
    registered_at: str = Field(description="RFC 3339 UTC")
    registered_at_unix: float
    source: Source

    @classmethod
    def of(cls, instance: Instance, now: float) -> InstanceOut:
        """Report ``instance`` as seen at ``now``."""
        expires = instance.lease_expires
        return cls(
            service=instance.service,
            id=instance.id,
            address=instance.address,
            port=instance.port,
            tags=list(instance.tags),
            meta=dict(instance.meta),
            weight=instance.weight,
            priority=instance.priority,
            ttl=instance.ttl,
            status=instance.effective_status(now),
            lease_expires=None if expires is None else rfc3339(expires),
            lease_expires_unix=expires,
            lease_remaining=None if expires is None else max(0.0, expires - now),
            registered_at=rfc3339(instance.registered_at),
            registered_at_unix=instance.registered_at,
            source=instance.source,
        )


class ServiceSummary(BaseModel):
    """One line of the service list."""

    name: str
    instances: int
    healthy: int = Field(description="instances DNS hands out now (passing or warning)")


class ServiceList(BaseModel):
    """Body of ``GET /v1/services``."""

    services: list[ServiceSummary]


class ServiceDetail(BaseModel):
    """Body of ``GET /v1/services/{service}``."""

    name: str
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
