"""What the Consul endpoints accept, for the OpenAPI schema (``/openapi.json``).

The endpoints read their bodies and query strings themselves (Consul's case-insensitive
keys, its flag parameters), so FastAPI cannot infer them; these fragments describe them,
so that clients, docs and schema-driven testing see the real request shapes.
"""

from __future__ import annotations

from typing import Any

_STRING = {"type": "string"}
_STATUS = {"type": "string", "enum": ["passing", "warning", "critical"]}

CHECK: dict[str, Any] = {
    "type": "object",
    "description": "A Consul check definition: HTTP, TCP or TTL (keys are case-insensitive)",
    "properties": {
        "CheckID": _STRING,
        "Name": _STRING,
        "Notes": _STRING,
        "Status": _STATUS,
        "HTTP": _STRING,
        "Method": _STRING,
        "Header": {"type": "object", "additionalProperties": {"type": "array", "items": _STRING}},
        "TLSSkipVerify": {"type": "boolean"},
        "DisableRedirects": {"type": "boolean"},
        "TCP": _STRING,
        "TTL": _STRING,
        "Interval": _STRING,
        "Timeout": _STRING,
        "DeregisterCriticalServiceAfter": _STRING,
        "SuccessBeforePassing": {"type": "integer"},
        "FailuresBeforeCritical": {"type": "integer"},
    },
}

SERVICE: dict[str, Any] = {
    "type": "object",
    "description": "A Consul service definition (keys are case-insensitive)",
    "required": ["Name"],
    "properties": {
        "Name": _STRING,
        "ID": _STRING,
        "Tags": {"type": "array", "items": _STRING},
        "Address": _STRING,
        "Port": {"type": "integer"},
        "Meta": {"type": "object", "additionalProperties": _STRING},
        "Weights": {
            "type": "object",
            "properties": {"Passing": {"type": "integer"}, "Warning": {"type": "integer"}},
        },
        "Check": CHECK,
        "Checks": {"type": "array", "items": CHECK},
        "EnableTagOverride": {"type": "boolean"},
    },
}

CHECK_UPDATE: dict[str, Any] = {
    "type": "object",
    "required": ["Status"],
    "properties": {"Status": _STATUS, "Output": _STRING},
}


def body(schema: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for an endpoint whose JSON body follows ``schema``."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def query(
    *names: str, flags: tuple[str, ...] = (), repeated: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``openapi_extra`` for query parameters: strings, flags (present or not), and
    repeatable strings (``?tag=a&tag=b``)."""
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "query", "required": False, "schema": _STRING} for name in names
    ]
    parameters += [
        {"name": name, "in": "query", "required": False, "schema": {"type": "boolean"}}
        for name in flags
    ]
    parameters += [
        {
            "name": name,
            "in": "query",
            "required": False,
            "schema": {"type": "array", "items": _STRING},
            "style": "form",
            "explode": True,
        }
        for name in repeated
    ]
    return {"parameters": parameters}


READ = query("index", "wait", "dc")
"""Every read: a blocking query and the datacenter."""


def merged(*extras: dict[str, Any]) -> dict[str, Any]:
    """Several ``openapi_extra`` fragments as one (parameters concatenated)."""
    out: dict[str, Any] = {}
    for extra in extras:
        for key, value in extra.items():
            if key == "parameters":
                out.setdefault("parameters", []).extend(value)
            else:
                out[key] = value
    return out
