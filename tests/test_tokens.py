"""The tokens file: parsing, grants by service name and prefix, constant-time lookup."""

from __future__ import annotations

from pathlib import Path

import pytest

from srvdns.errors import ConfigError
from srvdns.tokens import Grant, Tokens, load, parse

FILE = """
[[token]]
name = "web-deploy"
token = "tok-web-0123456789"
services = ["web", "pay-*"]

[[token]]
name = "ops"
token = "tok-ops-0123456789"
admin = true
"""


def tokens(tmp_path: Path, text: str = FILE) -> Tokens:
    path = tmp_path / "tokens.toml"
    path.write_text(text)
    return load(path)


@pytest.mark.parametrize(
    ("service", "allowed"),
    [
        ("web", True),
        ("WEB", True),
        ("pay-eu", True),
        ("pay-", True),
        ("pay", False),
        ("webx", False),
        ("api", False),
    ],
)
def test_service_token_writes_its_names_and_prefixes(
    tmp_path: Path, service: str, allowed: bool
) -> None:
    grant = tokens(tmp_path).find("tok-web-0123456789")
    assert grant is not None
    assert grant.name == "web-deploy"
    assert grant.may_write(service) is allowed


def test_admin_token_writes_everything(tmp_path: Path) -> None:
    grant = tokens(tmp_path).find("tok-ops-0123456789")
    assert grant == Grant("ops", (), admin=True)
    assert grant.may_write("anything")


@pytest.mark.parametrize("given", ["", "tok-web", "tok-web-0123456789x", "TOK-WEB-0123456789"])
def test_unknown_tokens_find_nothing(tmp_path: Path, given: str) -> None:
    assert tokens(tmp_path).find(given) is None


def test_star_alone_is_every_service(tmp_path: Path) -> None:
    found = tokens(tmp_path, '[[token]]\nname = "a"\ntoken = "t"\nservices = ["*"]\n').find("t")
    assert found is not None
    assert found.may_write("web")


def test_single_legacy_token_is_admin_and_joins_a_file(tmp_path: Path) -> None:
    joined = tokens(tmp_path) + Tokens.single("legacy")
    assert len(joined) == 3
    legacy = joined.find("legacy")
    assert legacy is not None
    assert legacy.admin
    assert joined.find("tok-ops-0123456789") is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[token]]\nname = "a"\ntoken = "t"\n', "token[0]: needs services"),
        ('[[token]]\nname = "a"\ntoken = "t"\nservices = ["web"]\nadmin = true\n', "drop services"),
        (
            '[[token]]\nname = "a"\ntoken = "t"\nservice = ["web"]\n',
            "token[0].service: unknown key",
        ),
        ('[[token]]\nname = "a"\nservices = ["web"]\n', "token[0].token: required"),
        ('[[token]]\ntoken = "t"\nservices = ["web"]\n', "token[0].name: required"),
        ('[[token]]\nname = "a"\ntoken = "t x"\nservices = ["w"]\n', "white space"),
        ('[[token]]\nname = "a"\ntoken = "t"\nservices = ["we_b"]\n', "neither a service name"),
        ('[[token]]\nname = "a"\ntoken = "t"\nservices = ["*web"]\n', "neither a service name"),
        ('[[token]]\nname = "a"\ntoken = "t"\nservices = "web"\n', "must be a list"),
        ('[[token]]\nname = "a"\ntoken = "t"\nadmin = "yes"\n', "admin: must be true or false"),
        (
            '[[token]]\nname = "a"\ntoken = "t"\nadmin = true\n'
            '[[token]]\nname = "a"\ntoken = "u"\nadmin = true\n',
            "token[1].name: 'a' is used twice",
        ),
        (
            '[[token]]\nname = "a"\ntoken = "t"\nadmin = true\n'
            '[[token]]\nname = "b"\ntoken = "t"\nadmin = true\n',
            "same token is given to two entries",
        ),
        ("", "no [[token]] entries"),
        ("tokens = []\n", "tokens: unknown key"),
        ("[[token]\n", "not valid TOML"),
    ],
)
def test_bad_files_name_the_entry_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("*", r"\*")):
        tokens(tmp_path, text)


def test_errors_never_show_the_secret() -> None:
    with pytest.raises(ConfigError) as caught:
        parse({"token": [{"name": "a", "token": "sekrit-value", "services": ["bad_name"]}]}, "f")
    assert "sekrit-value" not in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "absent.toml")
