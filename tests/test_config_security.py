"""The security keys of ``[server]``: tokens file, API TLS and ``[server.rrl]``."""

from __future__ import annotations

from pathlib import Path

import pytest

from srvdns import config
from srvdns.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
ZONE = '[[zone]]\nname = "service.local"\n'


def load(tmp_path: Path, server: str) -> config.Config:
    path = tmp_path / "srvdns.toml"
    path.write_text("[server]\n" + server + "\n" + ZONE)
    return config.load(path)


def test_example_rrl_block() -> None:
    rrl = config.load(REPO / "zones.example.toml").server.rrl
    assert rrl == config.RrlConfig()
    assert (rrl.enabled, rrl.responses_per_second, rrl.window, rrl.slip) == ("auto", 100, 1, 2)


@pytest.mark.parametrize(
    ("enabled", "host", "limited"),
    [
        ("auto", "127.0.0.1", False),
        ("auto", "::1", False),
        ("auto", "", True),
        ("auto", "0.0.0.0", True),
        ("auto", "192.0.2.1", True),
        ("true", "127.0.0.1", True),
        ("false", "192.0.2.1", False),
    ],
)
def test_rrl_is_on_for_listeners_other_than_loopback(
    tmp_path: Path, enabled: str, host: str, limited: bool
) -> None:
    value = f'"{enabled}"' if enabled == "auto" else enabled
    rrl = load(tmp_path, f"[server.rrl]\nenabled = {value}\n").server.rrl
    assert rrl.applies_to(host) is limited


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ("[server.rrl]\nrate = 5\n", "server.rrl.rate: unknown key"),
        ("[server.rrl]\nresponses_per_second = 0\n", "server.rrl.responses_per_second"),
        ("[server.rrl]\nslip = -1\n", "server.rrl.slip"),
        ('[server.rrl]\nwindow = "0s"\n', "server.rrl.window"),
        ('[server.rrl]\nexempt = ["10.0.0.0/33"]\n', "is not an address or CIDR network"),
        ('[server.rrl]\nenabled = "yes"\n', "server.rrl.enabled"),
        ('api_tls_key = "k.pem"\n', "api_tls_cert and api_tls_key are set together"),
    ],
)
def test_bad_security_keys_are_named(tmp_path: Path, server: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        load(tmp_path, server)


def test_tokens_file_is_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "tokens.toml").write_text('[[token]]\nname = "a"\ntoken = "t"\nadmin = true\n')
    (tmp_path / "token").write_text("legacy\n")
    loaded = load(tmp_path, 'api_tokens_file = "tokens.toml"\napi_token_file = "token"\n')
    tokens = loaded.api_tokens()
    assert tokens is not None
    assert len(tokens) == 2
    assert load(tmp_path, "").api_tokens() is None
