"""Consul service and check definitions, mapped onto srvdns instances and checks.

A Consul registration becomes the same ``Instance`` a native registration makes, under
the same rules: the service name and tags are DNS labels (Consul allows more), the id
1-64 of letters, digits, ``-``, ``_`` and ``.``, the address an IP literal, the port
1-65535 (an SRV record needs one).  Checks are HTTP, TCP or TTL; every other kind, and
every field srvdns cannot honour, is refused with a 400 that names it.

Check ids follow Consul's agent: "If CheckID is not provided, it is set to
``service:<ServiceID>``, with ``:<n>`` appended (1-based) when the service has several
checks".  srvdns stores those as the per-instance check ids ``service`` and
``service-<n>`` and shows them as Consul makes them (``consul_check_id``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from srvdns.api.blocking import parse_go_duration
from srvdns.api.consul.errors import bad_request
from srvdns.api.consul.keys import (
    boolean,
    fields,
    fold,
    folded,
    integer,
    string_list,
    string_map,
    text,
)
from srvdns.health.definitions import MAX_CHECKS, CheckRequest, Defaults, resolve_checks
from srvdns.model import Check, CheckSpec, Instance, Status
from srvdns.validation import (
    check_instance_id,
    check_meta,
    normalize_address,
    normalize_label,
)

MAX_TAGS = 64
MAX_NAME = 256
MAX_NOTES = 1024

_SERVICE = folded(
    (
        *("Name", "ID", "Tags", "Address", "Port", "Meta", "Weights"),
        *("Check", "Checks", "EnableTagOverride"),
    )
)
_SERVICE_UNSUPPORTED = {
    fold(key): reason
    for key, reason in {
        "Kind": "service kinds (Connect proxies and gateways)",
        "Proxy": "Connect proxies",
        "Connect": "Consul Connect",
        "TaggedAddresses": "tagged addresses (one address per instance)",
        "SocketPath": "Unix sockets (DNS publishes an address and a port)",
        "Locality": "localities",
        "Namespace": "namespaces",
        "Partition": "admin partitions",
        "Peer": "cluster peering",
    }.items()
}
_CHECK = folded(
    {
        "CheckID": "CheckID",
        "ID": "CheckID",
        "Name": "Name",
        "Notes": "Notes",
        "Status": "Status",
        "HTTP": "HTTP",
        "Method": "Method",
        "Header": "Header",
        "TLSSkipVerify": "TLSSkipVerify",
        "DisableRedirects": "DisableRedirects",
        "TCP": "TCP",
        "TTL": "TTL",
        "Interval": "Interval",
        "Timeout": "Timeout",
        "DeregisterCriticalServiceAfter": "DeregisterCriticalServiceAfter",
        "SuccessBeforePassing": "SuccessBeforePassing",
        "FailuresBeforeCritical": "FailuresBeforeCritical",
    }
)
_CHECK_UNSUPPORTED = {
    fold(key): reason
    for key, reason in {
        "Args": "script checks (only HTTP, TCP and TTL checks)",
        "ScriptArgs": "script checks (only HTTP, TCP and TTL checks)",
        "Script": "script checks (only HTTP, TCP and TTL checks)",
        "DockerContainerID": "Docker checks (only HTTP, TCP and TTL checks)",
        "Shell": "Docker checks (only HTTP, TCP and TTL checks)",
        "GRPC": "gRPC checks (only HTTP, TCP and TTL checks)",
        "GRPCUseTLS": "gRPC checks (only HTTP, TCP and TTL checks)",
        "H2PING": "H2PING checks (only HTTP, TCP and TTL checks)",
        "H2PingUseTLS": "H2PING checks (only HTTP, TCP and TTL checks)",
        "UDP": "UDP checks (only HTTP, TCP and TTL checks)",
        "OSService": "OS service checks (only HTTP, TCP and TTL checks)",
        "AliasNode": "alias checks (only HTTP, TCP and TTL checks)",
        "AliasService": "alias checks (only HTTP, TCP and TTL checks)",
        "Body": "HTTP check bodies",
        "TCPUseTLS": "TLS on TCP checks",
        "TLSServerName": "TLS server names on checks",
        "FailuresBeforeWarning": "FailuresBeforeWarning (use FailuresBeforeCritical)",
        "OutputMaxSize": "OutputMaxSize (output is capped at 4 KiB)",
        "ServiceID": "ServiceID inside a service's check",
        "Namespace": "namespaces",
        "Partition": "admin partitions",
    }.items()
}
_WEIGHTS = folded(("Passing", "Warning"))
_STATUSES = {status.value: status for status in Status}

_PYDANTIC_NAMES = {
    "id": "CheckID",
    "http": "HTTP",
    "tcp": "TCP",
    "ttl": "TTL",
    "method": "Method",
    "headers": "Header",
    "tls_skip_verify": "TLSSkipVerify",
    "interval": "Interval",
    "timeout": "Timeout",
    "success_before_passing": "SuccessBeforePassing",
    "failures_before_critical": "FailuresBeforeCritical",
    "deregister_critical_after": "DeregisterCriticalServiceAfter",
    "initial_status": "Status",
}
_AUTO_ID = re.compile(r"^service(?:-([1-9][0-9]*))?$")


def consul_check_id(instance_id: str, check_id: str) -> str:
    """The CheckID Consul would show for check ``check_id`` of instance ``instance_id``:
    ``service`` is ``service:<id>``, ``service-<n>`` is ``service:<id>:<n>``, any other
    id is itself."""
    match = _AUTO_ID.match(check_id)
    if match is None:
        return check_id
    number = match.group(1)
    return f"service:{instance_id}" if number is None else f"service:{instance_id}:{number}"


def stored_check_id(instance_id: str, consul_id: str) -> str | None:
    """The per-instance check id for a Consul CheckID of instance ``instance_id``: the
    inverse of ``consul_check_id``; None when ``consul_id`` is not a valid srvdns id."""
    prefix = f"service:{instance_id}"
    if consul_id == prefix:
        return "service"
    if consul_id.startswith(prefix + ":"):
        number = consul_id[len(prefix) + 1 :]
        if number.isdigit() and not number.startswith("0"):
            return f"service-{number}"
    try:
        return check_instance_id(consul_id)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Registration:
    """A Consul service definition as srvdns will store it."""

    instance: Instance
    explicit_check_ids: tuple[str, ...]
    """The Consul CheckIDs the request gave (each must be unique on this agent)."""


def parse_registration(
    body: object,
    *,
    default_address: str | None,
    defaults: Defaults,
    reserved_names: frozenset[str] = frozenset(),
) -> Registration:
    """The instance a ``PUT /v1/agent/service/register`` body describes; raises a 400
    ConsulError naming the field.

    ``default_address`` stands in for Consul's "the address of the agent" when the body
    has no ``Address``: srvdns passes the address the request came from.
    """
    service = fields(body, "", _SERVICE, _SERVICE_UNSUPPORTED)
    if "Name" not in service or not text(service["Name"], "Name"):
        raise bad_request("Missing service name")
    name = _label(text(service["Name"], "Name"), "Name", "service name")
    if name in reserved_names:
        raise bad_request(f"Name: service name {name!r} is reserved for the zone's name server")
    instance_id = text(service.get("ID") or service["Name"], "ID")
    try:
        check_instance_id(instance_id)
    except ValueError as exc:
        raise bad_request(f"ID: {exc}") from None
    tags = [_label(tag, "Tags", "tag") for tag in string_list(service.get("Tags", []), "Tags")]
    tags = list(dict.fromkeys(tags))
    if len(tags) > MAX_TAGS:
        raise bad_request(f"Tags: at most {MAX_TAGS} tags")
    address = _address(service.get("Address"), default_address)
    port = integer(service.get("Port", 0), "Port")
    if not 1 <= port <= 65535:
        raise bad_request("Port must be 1-65535: srvdns publishes every instance in an SRV record")
    try:
        meta = check_meta(string_map(service.get("Meta", {}), "Meta"))
    except ValueError as exc:
        raise bad_request(f"Meta: {exc}") from None
    passing, warning = _weights(service.get("Weights"))
    if service.get("EnableTagOverride") is not None and boolean(
        service["EnableTagOverride"], "EnableTagOverride"
    ):
        raise bad_request(
            "EnableTagOverride: srvdns does not support tag overrides (there is no catalog "
            "register endpoint to override them from)"
        )
    definitions: list[Any] = []
    if "Check" in service:
        definitions.append(service["Check"])
    if "Checks" in service:
        if not isinstance(service["Checks"], list):
            raise bad_request("Checks must be a list of check definitions")
        definitions.extend(service["Checks"])
    if len(definitions) > MAX_CHECKS:
        raise bad_request(f"Checks: an instance has at most {MAX_CHECKS} checks")
    specs, explicit = _checks(definitions, instance_id, name, address, port, defaults)
    instance = Instance(
        service=name,
        id=instance_id,
        address=address,
        port=port,
        tags=tuple(tags),
        meta=tuple(meta.items()),
        weight=passing,
        warning_weight=warning,
        checks=tuple(Check(spec=spec, status=spec.initial_status) for spec in specs),
    )
    return Registration(instance, tuple(explicit))


def _label(value: str, field: str, what: str) -> str:
    try:
        return normalize_label(value, what)
    except ValueError as exc:
        raise bad_request(f"{field}: {exc} (srvdns publishes it as a DNS name)") from None


def _address(value: object, default: str | None) -> str:
    if value is None or value == "":
        if default is None:
            raise bad_request("Address is required: srvdns has no agent address to default to")
        try:
            source = ipaddress.ip_address(default)
        except ValueError:
            raise bad_request("Address is required (the client's address is unknown)") from None
        if isinstance(source, ipaddress.IPv6Address) and source.ipv4_mapped is not None:
            return str(source.ipv4_mapped)  # a dual-stack socket's view of an IPv4 client
        return str(source)
    try:
        return normalize_address(text(value, "Address"))
    except ValueError as exc:
        raise bad_request(
            f"Address: {exc}; srvdns publishes A/AAAA records, give an IP address"
        ) from None


def _weights(value: object) -> tuple[int, int]:
    if value is None:
        return 1, 1
    weights = fields(value, "Weights.", _WEIGHTS, {})
    passing = integer(weights.get("Passing", 1), "Weights.Passing")
    warning = integer(weights.get("Warning", 1), "Weights.Warning")
    for label, weight in (("Passing", passing), ("Warning", warning)):
        if not 0 <= weight <= 65535:
            raise bad_request(f"Weights.{label} must be 0-65535 (an SRV weight)")
    return passing, warning


def _checks(
    definitions: Sequence[object],
    instance_id: str,
    service: str,
    address: str,
    port: int,
    defaults: Defaults,
) -> tuple[list[CheckSpec], list[str]]:
    requests: list[CheckRequest] = []
    texts: list[tuple[str, str]] = []
    explicit: list[str] = []
    for position, definition in enumerate(definitions):
        where = "Check." if len(definitions) == 1 else f"Checks[{position}]."
        check = fields(definition, where, _CHECK, _CHECK_UNSUPPORTED)
        if "CheckID" in check:
            consul_id = text(check["CheckID"], where + "CheckID")
            check_id = stored_check_id(instance_id, consul_id)
            if check_id is None:
                raise bad_request(
                    f"{where}CheckID {consul_id!r} must be 1-64 of letters, digits, '-', '_' "
                    f"and '.', or service:{instance_id}[:<n>]"
                )
            explicit.append(consul_check_id(instance_id, check_id))
        elif len(definitions) == 1:
            check_id = "service"
        else:
            check_id = f"service-{position + 1}"
        requests.append(_request(check, check_id, where))
        texts.append(
            (
                _free_text(check.get("Name", ""), where + "Name", MAX_NAME),
                _free_text(check.get("Notes", ""), where + "Notes", MAX_NOTES),
            )
        )
    try:
        specs = resolve_checks(requests, address, port, defaults)
    except ValueError as exc:
        raise bad_request(f"Checks: {exc}") from None
    named = [
        replace(spec, name=name, notes=notes)
        for spec, (name, notes) in zip(specs, texts, strict=True)
    ]
    return named, explicit


def _request(check: Mapping[str, Any], check_id: str, where: str) -> CheckRequest:
    kinds = [kind for kind in ("HTTP", "TCP", "TTL") if kind in check]
    if len(kinds) != 1:
        raise bad_request(f"{where.rstrip('.')}: give exactly one of HTTP, TCP or TTL")
    values: dict[str, Any] = {"id": check_id}
    if "HTTP" in check:
        values["http"] = text(check["HTTP"], where + "HTTP")
    if "TCP" in check:
        values["tcp"] = text(check["TCP"], where + "TCP")
    if kinds[0] in ("HTTP", "TCP") and "Interval" not in check:
        raise bad_request(f"{where}Interval is required for HTTP and TCP checks")
    for field, key in (
        ("TTL", "ttl"),
        ("Interval", "interval"),
        ("Timeout", "timeout"),
        ("DeregisterCriticalServiceAfter", "deregister_critical_after"),
    ):
        if field in check:
            values[key] = _duration(check[field], where + field)
    if "Method" in check:
        values["method"] = text(check["Method"], where + "Method")
    if "Header" in check:
        values["headers"] = _headers(check["Header"], where + "Header")
    if "TLSSkipVerify" in check:
        values["tls_skip_verify"] = boolean(check["TLSSkipVerify"], where + "TLSSkipVerify")
    if "DisableRedirects" in check and not boolean(
        check["DisableRedirects"], where + "DisableRedirects"
    ):
        raise bad_request(
            f"{where}DisableRedirects: srvdns HTTP checks never follow redirects; "
            "leave it out or set it to true"
        )
    for field, key in (
        ("SuccessBeforePassing", "success_before_passing"),
        ("FailuresBeforeCritical", "failures_before_critical"),
    ):
        if field in check:
            count = integer(check[field], where + field)
            values[key] = max(count, 1)  # Consul's 0 (act at once) is srvdns's 1
    if "Status" in check:
        status = _STATUSES.get(text(check["Status"], where + "Status"))
        if status is None:
            raise bad_request(f"{where}Status must be passing, warning or critical")
        values["initial_status"] = status
    elif kinds[0] == "TTL":
        # Consul: "checks are by default in the critical state" until the first pass
        values["initial_status"] = Status.CRITICAL
    try:
        return CheckRequest(**values)
    except ValidationError as exc:
        raise bad_request(_validation_message(exc, where)) from None


def _validation_message(exc: ValidationError, where: str) -> str:
    parts = []
    for error in exc.errors():
        loc = [_PYDANTIC_NAMES.get(str(part), str(part)) for part in error.get("loc", ())]
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        for native, consul in _PYDANTIC_NAMES.items():
            message = re.sub(rf"\b{native}\b(?!:)", consul, message)
        parts.append(f"{where}{'.'.join(loc)}: {message}" if loc else f"{where[:-1]}: {message}")
    return "; ".join(parts)


def _duration(value: object, field: str) -> float:
    try:
        return parse_go_duration(text(value, field))
    except ValueError as exc:
        raise bad_request(f"{field}: {exc}") from None


def _headers(value: object, field: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise bad_request(f"{field} must be an object of header names to lists of values")
    headers = {}
    for header, values in value.items():
        if isinstance(values, str):
            values = [values]
        # RFC 9110 section 5.3: several field lines are one value, comma-separated
        headers[str(header)] = ", ".join(string_list(values, f"{field}.{header}"))
    return headers


def _free_text(value: object, field: str, limit: int) -> str:
    given = text(value, field)
    if len(given) > limit or any(ord(c) < 32 and c != "\t" for c in given):
        raise bad_request(f"{field} must be at most {limit} characters without control characters")
    return given
