"""qname -> route, and the suffix arithmetic under it."""

from __future__ import annotations

import pytest

from srvdns.nameserver.names import (
    Apex,
    NameServer,
    ProtocolParent,
    Route,
    ServiceName,
    TargetName,
    TargetParent,
    Unknown,
    lower_labels,
    relative_to,
    route,
)


def labels(text: str) -> tuple[str, ...]:
    return tuple(text.split(".")) if text else ()


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("", Apex()),
        ("ns", NameServer("ns")),
        ("x.ns", Unknown()),
        ("_tcp.ns", Unknown()),
        ("web", ServiceName("web")),
        ("primary.web", ServiceName("web", "primary")),
        ("_web._tcp", ServiceName("web")),
        ("_web._udp", ServiceName("web")),
        ("_web._primary", ServiceName("web", "primary")),
        ("web-1.instance.web", TargetName("web", "web-1")),
        ("instance.web", TargetParent("web")),
        ("_tcp", ProtocolParent(None)),
        ("_udp", ProtocolParent(None)),
        ("_primary", ProtocolParent("primary")),
        ("_web.primary", Unknown()),
        ("web._tcp", Unknown()),
        ("x._web._tcp", Unknown()),
        ("a.b.web", Unknown()),
        ("a.web-1.instance.web", Unknown()),
        ("_a.instance.web", Unknown()),
        ("web-1._instance.web", Unknown()),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_route(relative: str, expected: Route) -> None:
    assert route(labels(relative), frozenset({"ns"})) == expected


def test_a_label_is_a_service_when_no_name_server_claims_it() -> None:
    assert route(("ns",)) == ServiceName("ns")


@pytest.mark.parametrize(
    ("qname", "origin", "expected"),
    [
        ("service.local", "service.local", ()),
        ("web.service.local", "service.local", ("web",)),
        ("a.b.service.local", "service.local", ("a", "b")),
        ("web.service.locals", "service.local", None),
        ("webservice.local", "service.local", None),
        ("local", "service.local", None),
    ],
)
def test_relative_to(qname: str, origin: str, expected: tuple[str, ...] | None) -> None:
    assert relative_to(labels(qname), labels(origin)) == expected


def test_lower_labels_folds_ascii_only() -> None:
    labels = (b"WeB", "\u00c9t\u00e9".encode(), b"A.B")
    assert lower_labels(labels) == ("web", "\xc3\x89t\xc3\xa9", "a.b")


def test_a_name_asked_again_is_routed_and_folded_once() -> None:
    assert route(("web",), frozenset({"ns"})) is route(("web",), frozenset({"ns"}))
    assert lower_labels((b"Web", b"X")) is lower_labels((b"Web", b"X"))
    assert route(("web",), frozenset({"web"})) == NameServer("web")  # not the cached one


def test_a_flood_of_distinct_names_keeps_the_routes_remembered_bounded() -> None:
    for n in range(5000):
        assert route((f"s{n}",)) == ServiceName(f"s{n}")
        assert lower_labels((b"S%d" % n,)) == (f"s{n}",)
    assert route.cache_info().currsize <= 4096
    assert lower_labels.cache_info().currsize <= 4096
