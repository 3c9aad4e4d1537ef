"""The transfer keys of the config: transfer_to, notify, [[tsig_key]]; mistakes are named."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from srvdns import config
from srvdns.errors import ConfigError

SECRET = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def load(tmp_path: Path, text: str) -> config.Config:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return config.load(path)


def test_transfer_to_notify_and_keys_parse(tmp_path: Path) -> None:
    (tmp_path / "key.secret").write_text(SECRET + "\n")
    loaded = load(
        tmp_path,
        f"""
        [[tsig_key]]
        name = "Xfr-Key."
        secret = "{SECRET}"

        [[tsig_key]]
        name = "other"
        algorithm = "HMAC-SHA512"
        secret_file = "key.secret"

        [[zone]]
        name = "service.local"
        transfer_to = ["127.0.0.1", "10.1.2.3/8", {{ address = "::1", key = "xfr-key" }}]
        notify = [
          "127.0.0.1:5300", "192.0.2.1", "[::1]:53", {{ address = "10.0.0.7", key = "other" }},
        ]
        """,
    )
    (zone,) = loaded.zone
    assert [(p.address, p.key) for p in zone.transfer_to] == [
        ("127.0.0.1/32", None),
        ("10.0.0.0/8", None),
        ("::1/128", "xfr-key"),
    ]
    assert [(t.host, t.port, t.key) for t in zone.notify] == [
        ("127.0.0.1", 5300, None),
        ("192.0.2.1", 53, None),
        ("::1", 53, None),
        ("10.0.0.7", 53, "other"),
    ]
    assert zone.transfer_to[1].matches("10.200.0.1")
    assert not zone.transfer_to[0].matches("127.0.0.2")
    secrets = loaded.tsig_secrets()
    assert secrets["xfr-key"] == ("hmac-sha256", b"0123456789abcdef0123456789abcdef")
    assert secrets["other"][0] == "hmac-sha512"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('transfer_to = ["nope"]', "zone[0].transfer_to"),
        ('transfer_to = "127.0.0.1"', "must be a list"),
        ('transfer_to = [{ address = "127.0.0.1", kee = "x" }]', "unknown key"),
        ('transfer_to = [{ address = "127.0.0.1", key = "missing" }]', "'missing', not declared"),
        ('notify = ["127.0.0.1:99999"]', "port must be 1-65535"),
        ('notify = ["ns.example.net"]', "is not an IP address"),
        ('notify = [{ address = "127.0.0.1", key = "missing" }]', "not declared"),
        ('notifiy = ["127.0.0.1"]', "zone[0].notifiy: unknown key"),
    ],
)
def test_a_bad_transfer_entry_is_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"c\.toml") as error:
        load(tmp_path, f'[[zone]]\nname = "service.local"\n{text}\n')
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "k"\nsecret = "not base64!"', "not base64"),
        ('name = "k"\nsecret = "c2hvcnQ="', "use at least 16"),
        (f'name = "k"\nalgorithm = "hmac-md5"\nsecret = "{SECRET}"', "is not one of"),
        ('name = "k"', "exactly one of secret and secret_file"),
        (f'name = "k"\nsecret = "{SECRET}"\nsecret_file = "f"', "exactly one of"),
        (f'name = "k"\nsecrett = "{SECRET}"', "tsig_key[0].secrett: unknown key"),
    ],
)
def test_a_bad_key_is_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load(tmp_path, f'[[tsig_key]]\n{text}\n\n[[zone]]\nname = "service.local"\n')
    assert message in str(error.value)


def test_the_same_key_twice_is_refused(tmp_path: Path) -> None:
    key = f'[[tsig_key]]\nname = "k"\nsecret = "{SECRET}"\n'
    with pytest.raises(ConfigError, match="declared twice"):
        load(tmp_path, key + key + '[[zone]]\nname = "service.local"\n')


def test_an_unreadable_secret_file_names_the_key(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        '[[tsig_key]]\nname = "k"\nsecret_file = "absent"\n[[zone]]\nname = "service.local"\n',
    )
    with pytest.raises(ConfigError, match=r"tsig_key\[0\]\.secret_file: cannot read"):
        loaded.tsig_secrets()
