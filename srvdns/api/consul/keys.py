"""Consul's JSON keys: matched case-insensitively, with or without underscores.

Consul's documentation of ``PUT /v1/agent/service/register``: "the key names are
case-insensitive" in practice, as Consul decodes bodies with mapstructure (which ignores
case) after translating snake_case aliases such as ``deregister_critical_service_after``
and ``tls_skip_verify``.  py-consul sends lower-case keys (``name``, ``checks``,
``http``, ``interval``) and ``DeregisterCriticalServiceAfter`` in one body.  ``fields``
folds every spelling to Consul's own field name and refuses keys srvdns does not
support, naming them, instead of dropping them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from srvdns.api.consul.errors import bad_request


def fold(key: str) -> str:
    """The spelling-independent form of a key: lower case, no ``_`` or ``-``."""
    return key.replace("_", "").replace("-", "").lower()


def folded(names: Mapping[str, str] | tuple[str, ...]) -> dict[str, str]:
    """``{fold(alias): field}`` for field names (each its own alias) or an alias mapping."""
    if isinstance(names, tuple):
        return {fold(name): name for name in names}
    return {fold(alias): field for alias, field in names.items()}


def fields(
    body: object,
    where: str,
    known: Mapping[str, str],
    unsupported: Mapping[str, str],
) -> dict[str, Any]:
    """The members of the JSON object ``body`` by Consul field name.

    ``known`` and ``unsupported`` map folded keys to field names (``folded``);
    ``unsupported`` maps a folded key to the reason it is refused.  A ``null`` value
    counts as absent.  Raises a 400 ConsulError for a non-object, an unknown or
    unsupported key, or a field given twice in two spellings.  ``where`` prefixes field
    names in messages (``"Checks[1]."``).
    """
    if not isinstance(body, dict):
        raise bad_request(f"{where.rstrip('.') or 'the body'} must be a JSON object")
    out: dict[str, Any] = {}
    for key, value in body.items():
        name = fold(str(key))
        reason = unsupported.get(name)
        if reason is not None:
            raise bad_request(f"{where}{key}: srvdns does not support {reason}")
        field = known.get(name)
        if field is None:
            raise bad_request(f"{where}{key}: unknown field")
        if field in out:
            raise bad_request(f"{where}{field} is given twice")
        if value is not None:
            out[field] = value
    return out


def text(value: object, field: str) -> str:
    """A JSON string, or a 400 naming ``field``."""
    if not isinstance(value, str):
        raise bad_request(f"{field} must be a string")
    return value


def integer(value: object, field: str) -> int:
    """A JSON integer (not a boolean), or a 400 naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"{field} must be an integer")
    return value


def boolean(value: object, field: str) -> bool:
    """A JSON boolean, or a 400 naming ``field``."""
    if not isinstance(value, bool):
        raise bad_request(f"{field} must be true or false")
    return value


def string_list(value: object, field: str) -> list[str]:
    """A JSON list of strings, or a 400 naming ``field``."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise bad_request(f"{field} must be a list of strings")
    return list(value)


def string_map(value: object, field: str) -> dict[str, str]:
    """A JSON object of strings, or a 400 naming ``field``."""
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise bad_request(f"{field} must be an object of strings")
    return {str(k): v for k, v in value.items()}
