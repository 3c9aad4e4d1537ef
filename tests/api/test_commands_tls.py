"""The commands reach an API with TLS over https, and take a CA file."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from srvdns import cafile
from srvdns.api import commands
from srvdns.errors import ConfigError


def args(config: Path) -> argparse.Namespace:
    return argparse.Namespace(api=None, config=str(config), command="ls")


def test_api_url_of_a_tls_config_is_https(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SRVDNS_API", raising=False)
    path = tmp_path / "srvdns.toml"
    zone = '[[zone]]\nname = "service.local"\n'
    path.write_text(
        '[server]\napi_listen = "127.0.0.1:8443"\napi_tls_cert = "c.pem"\n'
        'api_tls_key = "k.pem"\n' + zone
    )
    assert commands.api_url(args(path)) == "https://127.0.0.1:8443"
    path.write_text('[server]\napi_listen = "127.0.0.1:8054"\n' + zone)
    assert commands.api_url(args(path)) == "http://127.0.0.1:8054"


def test_ca_file_from_argument_or_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SRVDNS_CA", raising=False)
    assert cafile.verify(None) is True
    monkeypatch.setenv("SRVDNS_CA", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match=r"missing\.pem: cannot use as a CA file"):
        cafile.verify(None)
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"empty\.pem: cannot use as a CA file"):
        cafile.verify(str(empty))
