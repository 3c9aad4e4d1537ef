"""srvdns.health.definitions and the [health] / [[zone]] / static instance config keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from srvdns import config
from srvdns.config import HealthConfig
from srvdns.errors import ConfigError
from srvdns.health.definitions import CheckRequest, check_ids, resolve_checks
from srvdns.model import CheckKind, CheckSpec, Status

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = HealthConfig()


def resolve(*checks: dict, address: str = "10.0.0.1", port: int = 8080) -> tuple[CheckSpec, ...]:
    requests = [CheckRequest.model_validate(c) for c in checks]
    return resolve_checks(requests, address, port, DEFAULTS)


def test_defaults_apply() -> None:
    (spec,) = resolve({"http": "/health"})
    assert spec == CheckSpec(
        id="http",
        kind=CheckKind.HTTP,
        interval=10.0,
        timeout=3.0,
        target="http://10.0.0.1:8080/health",
        success_before_passing=2,
        failures_before_critical=1,
        initial_status=Status.CRITICAL,
    )
    (spec,) = resolve({"http": "/", "interval": "1s"})
    assert spec.timeout == 1.0  # the default timeout never exceeds the interval
    (spec,) = resolve({"http": "/", "timeout": "30s"})
    assert (spec.interval, spec.timeout) == (10.0, 10.0)  # nor does a given one
    (spec,) = resolve({"http": "/"}, address="2001:db8::1")
    assert spec.target == "http://[2001:db8::1]:8080/"


def test_every_field() -> None:
    (spec,) = resolve(
        {
            "id": "deep",
            "http": "https://api.example.com:8443/ready?full=1",
            "method": "HEAD",
            "headers": {"X-Probe": "srvdns"},
            "tls_skip_verify": True,
            "interval": "2s",
            "timeout": "500ms",
            "success_before_passing": 3,
            "failures_before_critical": 2,
            "deregister_critical_after": "1m",
            "initial_status": "warning",
        }
    )
    assert spec == CheckSpec(
        id="deep",
        kind=CheckKind.HTTP,
        interval=2.0,
        timeout=0.5,
        target="https://api.example.com:8443/ready?full=1",
        method="HEAD",
        headers=(("X-Probe", "srvdns"),),
        tls_skip_verify=True,
        success_before_passing=3,
        failures_before_critical=2,
        deregister_critical_after=60.0,
        initial_status=Status.WARNING,
    )


def test_tcp_and_ttl() -> None:
    tcp, ttl = resolve({"tcp": "[::1]:5432"}, {"ttl": "30s"})
    assert (tcp.kind, tcp.target, tcp.interval) == (CheckKind.TCP, "[::1]:5432", 10.0)
    assert (ttl.kind, ttl.ttl, ttl.interval, ttl.timeout) == (CheckKind.TTL, 30.0, 30.0, 0.0)
    assert ttl.initial_status is Status.PASSING  # registering is the first heartbeat


def test_ids() -> None:
    requests = [
        CheckRequest.model_validate(c)
        for c in ({"http": "/"}, {"http": "/b"}, {"tcp": "a:1", "id": "http-3"}, {"http": "/c"})
    ]
    assert check_ids(requests) == ["http", "http-2", "http-3", "http-4"]
    with pytest.raises(ValueError, match="two checks have the id 'x'"):
        check_ids([CheckRequest(id="x", http="/"), CheckRequest(id="x", tcp="a:1")])
    with pytest.raises(ValueError, match="at most one ttl check"):
        check_ids([CheckRequest(ttl=1.0), CheckRequest(ttl=2.0)])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "exactly one of http, tcp or ttl"),
        ({"http": "/", "tcp": "a:1"}, "exactly one of http, tcp or ttl"),
        ({"http": "ftp://x/"}, "http:// or https://"),
        ({"http": "http:///nohost"}, "has no host"),
        ({"http": "http://x:99999/"}, "Port out of range"),
        ({"http": "/a b"}, "without spaces"),
        ({"http": "health"}, "http:// or https://"),
        ({"tcp": "10.0.0.1"}, "HOST:PORT"),
        ({"tcp": "10.0.0.1:0"}, "port must be 1-65535"),
        ({"tcp": "bad_host:80"}, "not an IP address or host name"),
        ({"tcp": "a:1", "method": "GET"}, "method is only for http checks"),
        ({"ttl": "5s", "interval": "1s"}, "interval does not apply to a ttl check"),
        ({"ttl": "0s"}, "longer than 0s"),
        ({"ttl": "2d"}, "at most 1d"),
        ({"http": "/", "interval": "50ms"}, "at least 100ms"),
        ({"http": "/", "interval": "1s", "timeout": "2s"}, "timeout 2s is longer than interval 1s"),
        ({"http": "/", "timeout": 0}, "longer than 0s"),
        ({"http": "/", "method": "get"}, "upper-case"),
        ({"http": "/", "headers": {"Host": "x"}}, "set by srvdns"),
        ({"http": "/", "headers": {"X": "a\nb"}}, "control characters"),
        ({"http": "/", "success_before_passing": 0}, "greater than or equal to 1"),
        ({"http": "/", "failures_before_critical": 101}, "less than or equal to 100"),
        ({"http": "/", "initial_status": "unknown"}, "'passing', 'warning' or 'critical'"),
        ({"http": "/", "interval": "soon"}, "not a duration"),
        ({"http": "/", "tls_skip_verify": "yes"}, "valid boolean"),
        ({"http": "/", "id": "a b"}, "1-64 characters"),
        ({"http": "/", "nope": 1}, "Extra inputs are not permitted"),
    ],
)
def test_bad_checks(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CheckRequest.model_validate(fields)


def test_health_config_keys(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[[zone]]\nname = "service.local"\nonly_passing = true\npanic_threshold = 0.5\n'
        "panic_min_instances = 4\n"
        '[[zone.service]]\nname = "db"\ninstances = [\n'
        '  { address = "10.0.0.5", port = 5432, weights = { passing = 5, warning = 2 }, '
        'checks = [{ tcp = "10.0.0.5:5432", interval = "2s" }, { http = "/health" }] },\n'
        "]\n"
        '[health]\ninterval = "5s"\ntimeout = "1s"\nconcurrency = 64\njitter = 0.2\n'
        'initial_status = "passing"\nsuccess_before_passing = 3\nfailures_before_critical = 2\n'
        'deregister_critical_after = "10m"\n'
    )
    loaded = config.load(path)
    (zone,) = loaded.zone
    assert (zone.only_passing, zone.panic_threshold, zone.panic_min_instances) == (True, 0.5, 4)
    assert loaded.health == HealthConfig(
        interval=5.0,
        timeout=1.0,
        concurrency=64,
        jitter=0.2,
        initial_status=Status.PASSING,
        success_before_passing=3,
        failures_before_critical=2,
        deregister_critical_after=600.0,
    )
    (instance,) = loaded.static_services()[0].instances
    assert (instance.weight, instance.warning_weight) == (5, 2)
    assert [c.kind for c in instance.checks] == [CheckKind.TCP, CheckKind.HTTP]


def test_example_config_sets_the_health_keys() -> None:
    loaded = config.load(REPO / "zones.example.toml")
    assert loaded.health == HealthConfig(interval=10.0, timeout=3.0)  # the documented defaults
    (zone,) = loaded.zone
    assert (zone.only_passing, zone.panic_threshold, zone.panic_min_instances) == (False, None, 3)


def test_example_check_in_the_config_comments_parses() -> None:
    text = (REPO / "zones.example.toml").read_text()
    line = next(x for x in text.splitlines() if x.startswith("#     checks = "))
    data = config.tomllib.loads(line.removeprefix("#").strip())
    requests = [CheckRequest.model_validate(c) for c in data["checks"]]
    assert resolve_checks(requests, "127.0.0.1", 5432, DEFAULTS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[health]\njitter = 0.9\n", "health.jitter"),
        ("[health]\nconcurrency = 0\n", "health.concurrency"),
        ('[health]\ninitial_status = "maybe"\n', "health.initial_status"),
        ('[health]\ninterval = "10ms"\n', "health.interval"),
        ("[health]\nintervall = 5\n", "health.intervall: unknown key"),
        ('[[zone]]\nname = "b.c"\npanic_threshold = 1.5\n', "zone[1].panic_threshold"),
        ('[[zone]]\nname = "b.c"\npanic_min_instances = 0\n', "zone[1].panic_min_instances"),
        (
            '[[zone.service]]\nname = "db"\n'
            'instances = [{ address = "10.0.0.5", port = 1, checks = [{ tcp = "x" }] }]\n',
            "zone[0].service[0].instances[0].checks[0]",
        ),
        (
            '[[zone.service]]\nname = "db"\ninstances = [{ address = "10.0.0.5", port = 1, '
            'checks = [{ tcp = "a:1", deregister_critical_after = "1m" }] }]\n',
            "static instances are never deregistered",
        ),
        (
            '[[zone.service]]\nname = "db"\ninstances = [{ address = "10.0.0.5", port = 1, '
            "weight = 2, weights = { passing = 3 } }]\n",
            "weight and weights.passing disagree",
        ),
    ],
)
def test_bad_health_config(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[[zone]]\nname = "a.b"\n' + text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config.load(path)
