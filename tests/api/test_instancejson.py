"""``instance_json``: the same bytes as ``InstanceOut.of(...).model_dump_json()``."""

from __future__ import annotations

from dataclasses import replace

import pytest

from srvdns.api.instancejson import instance_json
from srvdns.api.schemas import InstanceOut
from srvdns.model import Check, CheckKind, CheckSpec, Instance, Source, Status

NOW = 1_795_820_880.6761727
BASE = Instance(service="web", id="web-1", address="10.0.0.1", port=8080, registered_at=NOW)
TTL = CheckSpec(id="ttl", kind=CheckKind.TTL, interval=30.0, timeout=0.0, ttl=30.0)

CASES = {
    "plain": BASE,
    "integer times": replace(BASE, registered_at=1_700_000_000, last_heartbeat=1_700_000_000),
    "zero time": replace(BASE, registered_at=0.0),
    "tiny fraction": replace(BASE, registered_at=1e-7),
    "far future": replace(BASE, registered_at=253_402_300_799.999),
    "tags and meta in order": replace(
        BASE, tags=("b", "a", "z"), meta=(("z", "1"), ("a", "2"), ("m", ""))
    ),
    "escapes": replace(
        BASE,
        id='quote"back\\slash\ttab\nnew\x00nul\x1f\x7f',
        meta=(("k\u2028", "line\u2029sep"), ("</script>", "&amp;")),
    ),
    "unicode": replace(BASE, id="café-☃-😀", tags=("ünï",), meta=(("ключ", "値"),)),
    "weights and priority": replace(BASE, weight=0, warning_weight=65535, priority=7, port=1),
    "warning": replace(BASE, status=Status.WARNING),
    "critical static": replace(BASE, status=Status.CRITICAL, source=Source.STATIC),
    "with a lease": replace(BASE, ttl=30.0, last_heartbeat=NOW - 40),
    "with a check": replace(
        BASE, ttl=30.0, last_heartbeat=NOW, checks=(Check(spec=TTL, status=Status.PASSING),)
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_same_bytes_as_the_model(name: str) -> None:
    instance = CASES[name]
    expected = InstanceOut.of(instance, NOW, None).model_dump_json().encode()
    assert instance_json(instance, NOW) == expected


def test_the_same_bytes_for_many_times() -> None:
    for n in range(2000):
        at = 1_600_000_000 + n * 1234.567891 + n / 7
        instance = replace(BASE, registered_at=at)
        expected = InstanceOut.of(instance, at + 1, None).model_dump_json().encode()
        assert instance_json(instance, at + 1) == expected
