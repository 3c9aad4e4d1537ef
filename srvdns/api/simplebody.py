"""The common registration body turned into an instance without the model, where that is exact.

Most registrations send an address, a port and perhaps tags, meta, a weight and a
priority: no lease, no checks.  Validating such a body with ``RegisterRequest`` (a
model, its field validators, then ``to_instance``, which resolves an empty list of
checks) costs a lone registration more than all its other Python work on the event loop
but the write itself.  ``simple_instance`` applies the model's rules to exactly those
fields, with the model's own validators (``_address``, ``normalize_label``,
``check_meta_key``, ``check_meta_value``) and its strict types (an ``int`` that is not a
``bool``, a ``str``), and builds the instance ``to_instance`` builds.  Anything else (any
other field, ``null`` where the model wants a value, a value of another type, a value a
validator refuses, too many tags or meta entries) gives None, and the caller leaves the
body to the model, which answers it (and words its errors) exactly as before.
"""

from __future__ import annotations

from typing import Any

from srvdns.api.schemas import MAX_TAGS, _address
from srvdns.model import Instance
from srvdns.validation import MAX_META, check_meta_key, check_meta_value, normalize_label

SIMPLE_FIELDS = frozenset({"address", "port", "tags", "meta", "weight", "priority"})
"""The fields a simple body may have (``address`` and ``port`` it must have)."""


def simple_instance(body: Any, service: str, instance_id: str) -> Instance | None:
    """``RegisterRequest.model_validate(body).to_instance(service, instance_id, ...)``
    for a body of ``SIMPLE_FIELDS`` that validates; None for any other body."""
    if type(body) is not dict or not body.keys() <= SIMPLE_FIELDS:
        return None
    address, port = body.get("address"), body.get("port")
    if type(address) is not str or type(port) is not int or not 1 <= port <= 65535:
        return None
    weight = body.get("weight")
    if weight is not None and not _uint16(weight):
        return None
    priority = body.get("priority", 0)
    if not _uint16(priority):
        return None
    try:
        address = _address(address)
        tags = _tags(body["tags"]) if "tags" in body else ()
        meta = _meta(body["meta"]) if "meta" in body else ()
    except ValueError:
        return None
    if tags is None or meta is None:
        return None
    return Instance(
        service=service,
        id=instance_id,
        address=address,
        port=port,
        tags=tags,
        meta=meta,
        weight=1 if weight is None else weight,
        warning_weight=1,
        priority=priority,
        ttl=None,
        checks=(),
    )


def _uint16(value: object) -> bool:
    return type(value) is int and 0 <= value <= 65535


def _tags(values: object) -> tuple[str, ...] | None:
    """The model's ``tags``: a list of at most ``MAX_TAGS`` labels, lower-cased, first
    occurrences kept; None when it is not a list of strings."""
    if type(values) is not list or len(values) > MAX_TAGS:
        return None
    if any(type(value) is not str for value in values):
        return None
    return tuple(dict.fromkeys(normalize_label(value, "tag") for value in values))


def _meta(values: object) -> tuple[tuple[str, str], ...] | None:
    """The model's ``meta``: at most ``MAX_META`` string pairs, each checked; None when
    it is not an object of strings."""
    if type(values) is not dict or len(values) > MAX_META:
        return None
    if any(type(key) is not str or type(value) is not str for key, value in values.items()):
        return None
    return tuple((check_meta_key(key), check_meta_value(value)) for key, value in values.items())
