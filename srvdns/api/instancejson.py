"""The ``InstanceOut`` JSON of an instance, built without the model where that is exact.

The fast paths answer every registration and heartbeat with an instance's
``InstanceOut`` JSON.  Building the model validates every field again (values the
registry made itself) before pydantic serialises them, and that costs a lone
registration more than the serialising.  For an instance without checks (and so without
a lease: a lease is a ttl check) ``instance_json`` hands pydantic's serialiser the very
values the model would hold, in the model's field order, with the model's coercions
(``float`` fields as floats, enums as their values): the same bytes.  Any other
instance goes through the model.
"""

from __future__ import annotations

from collections.abc import Mapping

import pydantic_core

from srvdns.api.schemas import InstanceOut, rfc3339
from srvdns.model import Check, Instance


def instance_json(instance: Instance, now: float, live: Mapping[str, Check] | None = None) -> bytes:
    """``InstanceOut.of(instance, now, live).model_dump_json()``, as bytes."""
    if instance.checks or instance.ttl is not None:
        return InstanceOut.of(instance, now, live).model_dump_json().encode()
    registered = float(instance.registered_at)
    return pydantic_core.to_json(
        {
            "service": instance.service,
            "id": instance.id,
            "address": instance.address,
            "port": int(instance.port),
            "tags": list(instance.tags),
            "meta": dict(instance.meta),
            "weight": int(instance.weight),
            "weights": {"passing": int(instance.weight), "warning": int(instance.warning_weight)},
            "priority": int(instance.priority),
            "ttl": None,
            "status": instance.effective_status(now).value,
            "lease_expires": None,
            "lease_expires_unix": None,
            "lease_remaining": None,
            "registered_at": rfc3339(registered),
            "registered_at_unix": registered,
            "source": instance.source.value,
            "checks": [],
        }
    )
