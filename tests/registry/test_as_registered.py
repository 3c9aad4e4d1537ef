"""``Registry.register``'s one-step build of an instance without checks is
``with_initial_checks``'s, field by field (``target`` too, which ``==`` ignores)."""

from __future__ import annotations

from dataclasses import MISSING, fields

import pytest

from srvdns.model import Check, CheckKind, CheckSpec, Instance, Source, Status
from srvdns.registry.registry import _as_registered, with_initial_checks

NOW = 1_700_000_000.25


def every_field(instance: Instance) -> dict[str, object]:
    return {f.name: getattr(instance, f.name) for f in fields(Instance)}


def by_the_long_way(instance: Instance, tags: tuple[str, ...], meta: tuple[tuple[str, str], ...]):
    return with_initial_checks(
        instance,
        NOW,
        service=instance.service.lower(),
        tags=tags,
        meta=meta,
        registered_at=NOW,
        source=Source.API,
    )


SPEC = CheckSpec(id="tcp", kind=CheckKind.TCP, interval=5.0, timeout=1.0, target="10.0.0.1:80")

CASES = [
    # no field left at its default, so that a field the one-step build forgot shows
    Instance(
        service="Web",
        id="Web_1",
        address="10.0.0.1",
        port=8080,
        tags=("B", "a"),
        meta=(("z", "1"), ("a", "2")),
        weight=7,
        priority=3,
        ttl=None,
        last_heartbeat=12.0,
        status=Status.CRITICAL,
        source=Source.STATIC,
        registered_at=5.0,
        target="web-1-target",
        warning_weight=0,
    ),
    Instance(service="web", id="web-1", address="::1", port=1),
    # with a lease or checks: the long way itself
    Instance(service="web", id="web-2", address="::1", port=1, ttl=30.0),
    Instance(
        service="web", id="web-3", address="::1", port=1, checks=(Check(SPEC, Status.CRITICAL),)
    ),
]


@pytest.mark.parametrize("instance", CASES, ids=lambda i: i.id)
def test_the_one_step_build_is_with_initial_checks(instance: Instance) -> None:
    tags, meta = ("b", "a"), (("a", "2"), ("z", "1"))
    built = _as_registered(instance, NOW, tags, meta)
    assert every_field(built) == every_field(by_the_long_way(instance, tags, meta))
    assert built.last_heartbeat == NOW
    assert built.registered_at == NOW


def test_the_first_case_leaves_no_field_at_its_default() -> None:
    """So that a field added to ``Instance`` and forgotten by the one-step build shows in
    the test above (``ttl`` and ``checks`` stay unset: that is what takes it)."""
    at_default = {
        f.name
        for f in fields(Instance)
        if f.default is not MISSING and getattr(CASES[0], f.name) == f.default
    }
    assert at_default == {"ttl", "checks"}
