"""The pure parts of the status page: names, dig commands, counts."""

from __future__ import annotations

import pytest

from srvdns.config import parse
from srvdns.model import Instance, Status
from srvdns.ui import views

ZONES = parse(
    {"zone": [{"name": "service.local", "service_ttl": {"db": 30}}, {"name": "service.consul"}]}
).zone


def test_dns_names_cover_every_zone_and_tag() -> None:
    names = views.dns_names("web", ["v2"], ZONES)
    assert [zone["zone"] for zone in names] == ["service.local", "service.consul"]
    assert [(n["name"], n["types"][0], n["tag"]) for n in names[0]["names"]] == [
        ("web.service.local", "SRV", None),
        ("_web._tcp.service.local", "SRV", None),
        ("_web._udp.service.local", "SRV", None),
        ("v2.web.service.local", "SRV", "v2"),
        ("_web._v2.service.local", "SRV", "v2"),
    ]
    assert names[1]["names"][0]["name"] == "web.service.consul"


def test_ttls_follow_the_per_service_override() -> None:
    assert views.service_ttls("db", ZONES) == {"service.local": 30, "service.consul": 5}
    assert views.service_ttls("web", ZONES) == {"service.local": 5, "service.consul": 5}


@pytest.mark.parametrize(
    ("addresses", "request_host", "expected"),
    [
        ([("127.0.0.1", 8053)], "127.0.0.1", "@127.0.0.1 -p 8053"),
        ([("10.1.2.3", 53)], "localhost", "@10.1.2.3"),
        ([("::1", 5353)], None, "@::1 -p 5353"),
        ([("0.0.0.0", 53)], "192.0.2.7", "@192.0.2.7"),
        ([("0.0.0.0", 53)], "status.example", "@127.0.0.1"),
        ([("::", 8053)], "[2001:db8::1]", "@2001:db8::1 -p 8053"),
        ([], "127.0.0.1", None),
    ],
)
def test_dig_server(
    addresses: list[tuple[str, int]], request_host: str | None, expected: str | None
) -> None:
    assert views.dig_server(addresses, request_host) == expected


def test_dig_command() -> None:
    assert views.dig_command("@127.0.0.1 -p 8053", "web.service.local") == (
        "dig @127.0.0.1 -p 8053 web.service.local SRV"
    )
    assert views.dig_command(None, "web.service.local", "A") == "dig web.service.local A"


def test_status_counts_see_a_lapsed_lease_as_critical() -> None:
    instances = [
        Instance("web", "a", "10.0.0.1", 80),
        Instance("web", "b", "10.0.0.2", 80, status=Status.WARNING),
        Instance("web", "c", "10.0.0.3", 80, ttl=10, last_heartbeat=100.0),
    ]
    assert views.status_counts(instances, now=105.0) == {"passing": 2, "warning": 1, "critical": 0}
    assert views.status_counts(instances, now=110.0) == {"passing": 1, "warning": 1, "critical": 1}


def test_tag_counts() -> None:
    instances = [
        Instance("web", "a", "10.0.0.1", 80, tags=("v2", "canary")),
        Instance("web", "b", "10.0.0.2", 80, tags=("v2",)),
    ]
    assert views.tag_counts(instances) == {"canary": 1, "v2": 2}
