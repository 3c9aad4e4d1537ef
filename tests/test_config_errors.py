"""How validation errors become one line naming the key (``config_errors``)."""

from __future__ import annotations

import tomllib

import pytest

from srvdns import config
from srvdns.config_errors import describe_toml
from srvdns.errors import ConfigError


def error_of(data: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as caught:
        config.parse(data, source="f.toml")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("f.toml: ")
    return message.removeprefix("f.toml: ")


ZONE = {"name": "service.local"}


def test_a_union_is_one_problem_with_its_alternatives() -> None:
    assert error_of({"server": {"version": 5}, "zone": [ZONE]}) == (
        "server.version: must be a valid string or a valid boolean"
    )


def test_a_failed_item_does_not_also_make_its_list_too_short() -> None:
    assert error_of({"zone": [{"name": "service.local", "ttl": "soon"}]}) == (
        "zone[0].ttl: 'soon' is not a duration such as '500ms', '10s' or '5m'"
    )


def test_an_empty_list_is_too_short() -> None:
    service = {"name": "web", "instances": []}
    assert error_of({"zone": [{**ZONE, "service": [service]}]}) == (
        "zone[0].service[0].instances: must have at least 1 item(s)"
    )


def test_a_typo_comes_before_the_key_it_leaves_missing() -> None:
    service = {"name": "web", "instances": [{"adress": "10.0.0.1", "port": 80}]}
    assert error_of({"zone": [{**ZONE, "service": [service]}]}) == (
        "zone[0].service[0].instances[0].adress: unknown key; "
        "zone[0].service[0].instances[0].address: required key is missing"
    )


def test_rules_across_keys_name_the_key() -> None:
    assert error_of({"zone": [ZONE, {"name": "Service.Local."}]}) == (
        "zone[1].name: the same zone is declared twice"
    )
    ns = {"name": "ns1.service.local"}
    assert error_of({"zone": [{**ZONE, "ns": [{"name": "ns.example.org"}, ns]}]}).startswith(
        "zone[0].ns[1].address: name server 'ns1.service.local' is inside the zone"
    )


def test_wrong_shapes_are_said_in_toml_words() -> None:
    assert error_of({"server": "x", "zone": [ZONE]}) == "server: must be a table"
    assert error_of({"zone": "service.local"}) == "zone: must be an array"


def toml_error(text: str) -> str:
    with pytest.raises(tomllib.TOMLDecodeError) as caught:
        tomllib.loads(text)
    return describe_toml(caught.value, text, "f.toml")


def test_toml_errors_quote_the_line() -> None:
    message = toml_error("a = 1\nb = 2\na = 3\n")
    assert message.startswith("f.toml: not valid TOML: Cannot overwrite a value (at line 3,")
    assert message.endswith("): a = 3")
    long_line = "x = " + "y" * 200
    assert toml_error(long_line).endswith("x = yyy" + "y" * 70 + "...")
