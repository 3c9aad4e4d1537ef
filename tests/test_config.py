"""config.load: every shipped config parses, and every kind of mistake is named."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from srvdns import config
from srvdns.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_example_config_loads() -> None:
    loaded = config.load(REPO / "zones.example.toml")
    (zone,) = loaded.zone
    assert zone.name == "service.local"
    assert zone.ttl == 5
    assert zone.ttl_for("postgres") == 30
    assert zone.soa.mname == "ns.service.local"
    assert [s.name for s in loaded.static_services()] == ["postgres", "cache"]
    assert loaded.server.dns_listen[0].port == 8053
    assert loaded.database_url() == f"sqlite:///{REPO / 'srvdns.db'}"
    assert loaded.health.interval == 10.0
    assert (loaded.server.workers, loaded.server.follow_interval) == (1, 0.15)


def test_defaults() -> None:
    loaded = config.parse({"zone": [{"name": "Service.Consul."}]})
    (zone,) = loaded.zone
    assert zone.name == "service.consul"
    assert zone.negative_ttl == zone.ttl == 5
    assert zone.soa.rname == "hostmaster.service.consul"
    assert [ns.name for ns in zone.ns] == ["ns.service.consul"]
    assert loaded.reserved_labels == frozenset({"ns"})
    assert str(loaded.server.api_listen) == "127.0.0.1:8054"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[zone]]\nname = "a.b"\nttll = 5\n', "zone[0].ttll: unknown key"),
        ('[servr]\n[[zone]]\nname = "a.b"\n', "servr: unknown key"),
        ('[[zone]]\nname = "a.b"\nttl = "500ms"\n', "zone[0].ttl: '500ms' is not a whole number"),
        ('[[zone]]\nname = "a.b"\nttl = "soon"\n', "zone[0].ttl: 'soon' is not a duration"),
        ('[server]\ndns_listen = ["127.0.0.1"]\n[[zone]]\nname = "a.b"\n', "server.dns_listen"),
        ('[server]\napi_listen = "host:80"\n[[zone]]\nname = "a.b"\n', "server.api_listen"),
        ("[server]\n", "zone: required key is missing"),
        ('[[zone]]\nname = "a..b"\n', "zone[0].name"),
        ('[[zone]]\nname = "a.b"\n[[zone]]\nname = "A.b"\n', "the same zone is declared twice"),
        (
            '[[zone]]\nname = "a.b"\n[[zone.service]]\nname = "Bad_Name"\n'
            'instances = [{address = "10.0.0.1", port = 1}]\n',
            "zone[0].service[0].name",
        ),
        (
            '[[zone]]\nname = "a.b"\n[[zone.service]]\nname = "x"\n'
            'instances = [{address = "not-an-ip", port = 1}]\n',
            "zone[0].service[0].instances[0].address",
        ),
        (
            '[[zone]]\nname = "a.b"\n[[zone.service]]\nname = "x"\n'
            'instances = [{address = "10.0.0.1", port = 70000}]\n',
            "zone[0].service[0].instances[0].port",
        ),
        (
            '[[zone]]\nname = "a.b"\n[[zone.service]]\nname = "ns"\n'
            'instances = [{address = "10.0.0.1", port = 1}]\n',
            "name of the zone's name server",
        ),
        ('[[zone]]\nname = "a.b"\n[[zone.ns]]\nname = "ns1.a.b"\n', "needs an address"),
        (
            '[[zone]]\nname = "a.b"\n[[zone.service]]\nname = "x"\n'
            'instances = [{address = "10.0.0.1", port = 1, meta = { "a b" = "c" }}]\n',
            "zone[0].service[0].instances[0].meta: meta key 'a b'",
        ),
        ('[health]\ninterval = "-1s"\n[[zone]]\nname = "a.b"\n', "health.interval"),
        ('[server]\nworkers = 0\n[[zone]]\nname = "a.b"\n', "server.workers"),
        ('[server]\nworker = 2\n[[zone]]\nname = "a.b"\n', "server.worker: unknown key"),
        ('[server]\nfollow_interval = "0s"\n[[zone]]\nname = "a.b"\n', "server.follow_interval"),
        ("[[zone]\n", "not valid TOML"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(tmp_path / "nope.toml")


def test_token_file(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("abc\n")
    loaded = config.load(
        write(tmp_path, '[server]\napi_token_file = "tok"\n[[zone]]\nname = "a.b"\n')
    )
    assert loaded.api_token() == "abc"
    (tmp_path / "tok").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        loaded.api_token()


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [("127.0.0.1:53", "127.0.0.1", 53), ("[::1]:8053", "::1", 8053), (":53", "", 53)],
)
def test_listen_addresses(text: str, host: str, port: int) -> None:
    address = config.ListenAddress.parse(text, "address")
    assert (address.host, address.port) == (host, port)
    assert str(address) == text


def test_forward_block_of_the_example_loads() -> None:
    text = (REPO / "zones.example.toml").read_text()
    block = text[text.index("# [forward]") :]
    uncommented = "\n".join(
        line.removeprefix("# ")
        for line in block.splitlines()
        if line.startswith("# [forward]") or " = " in line
    )
    loaded = config.parse({"zone": [{"name": "service.local"}], **tomllib.loads(uncommented)})
    assert loaded.forward is not None
    assert [(u.host, u.port) for u in loaded.forward.upstreams] == [
        ("10.0.0.2", 53),
        ("10.0.0.3", 53),
    ]
    assert loaded.forward.timeout == 2.0
    assert loaded.forward.strategy == "sequential"
    assert loaded.forward.cache_size == 10000
    assert "::1/128" in loaded.forward.allow_from
    assert config.parse({"zone": [{"name": "service.local"}]}).forward is None


@pytest.mark.parametrize(
    ("forward", "message"),
    [
        ({}, "forward.upstreams: required key is missing"),
        ({"upstreams": []}, "forward.upstreams: must be a non-empty list"),
        ({"upstreams": ["dns.example"]}, "is not an IP address"),
        ({"upstreams": ["[::1]:99999"]}, "port must be 1-65535"),
        ({"upstreams": ["127.0.0.1"], "strategy": "fastest"}, "forward.strategy"),
        ({"upstreams": ["127.0.0.1"], "timeout": "0s"}, "forward.timeout"),
        ({"upstreams": ["127.0.0.1"], "allow_from": ["10.0.0.0/33"]}, "forward.allow_from"),
        ({"upstreams": ["127.0.0.1"], "cache": 5}, "forward.cache: unknown key"),
    ],
)
def test_forward_errors(forward: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        config.parse({"zone": [{"name": "service.local"}], "forward": forward})


def test_forward_upstream_forms() -> None:
    loaded = config.parse(
        {
            "zone": [{"name": "service.local"}],
            "forward": {"upstreams": ["127.0.0.1:5353", "[::1]:5300", "::1", "[fe80::1]"]},
        }
    )
    assert loaded.forward is not None
    assert [(u.host, u.port) for u in loaded.forward.upstreams] == [
        ("127.0.0.1", 5353),
        ("::1", 5300),
        ("::1", 53),
        ("fe80::1", 53),
    ]
