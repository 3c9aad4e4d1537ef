"""The config of zone transfers: ``[[tsig_key]]``, a zone's ``transfer_to`` and ``notify``.

Kept apart from ``config`` so that the hidden-primary settings read as one piece; the
models here are validated as strictly as every other part of the file.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from srvdns.validation import normalize_domain

TSIG_ALGORITHMS = ("hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1")
"""What ``[[tsig_key]] algorithm`` accepts (RFC 8945 §6; hmac-sha256 is the one to use)."""

MIN_SECRET = 16
"""Octets a TSIG secret needs at least (RFC 8945 §6: at least half the hash output
is recommended; shorter ones are usually a pasting mistake)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class TsigKeyConfig(_Strict):
    """``[[tsig_key]]``: a shared secret that signs transfers (RFC 8945).

    ``secret`` is base64 as ``tsig-keygen``, ``keymgr`` and ``knotc`` print it;
    ``secret_file`` names a file holding it instead (relative to the config file), so the
    config itself can be readable by everyone.
    """

    name: str
    algorithm: str = "hmac-sha256"
    secret: str | None = None
    secret_file: Path | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return normalize_domain(value, "key name")

    @field_validator("algorithm")
    @classmethod
    def _algorithm(cls, value: str) -> str:
        lowered = value.lower().rstrip(".")
        if lowered not in TSIG_ALGORITHMS:
            raise ValueError(f"{value!r} is not one of {', '.join(TSIG_ALGORITHMS)}")
        return lowered

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is not None:
            decode_secret(value)
        return value

    @model_validator(mode="after")
    def _one_secret(self) -> TsigKeyConfig:
        if (self.secret is None) == (self.secret_file is None):
            raise ValueError("give exactly one of secret and secret_file")
        return self

    def secret_bytes(self, base: Path | None) -> bytes:
        """The decoded secret; read from ``secret_file`` (relative to ``base``) if set.

        Raises ValueError naming the file or the problem.
        """
        if self.secret is not None:
            return decode_secret(self.secret)
        assert self.secret_file is not None
        file = self.secret_file
        if not file.is_absolute() and base is not None:
            file = base / file
        try:
            text = file.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not ASCII text"
            raise ValueError(f"cannot read {file}: {reason}") from None
        return decode_secret(text.strip())


def decode_secret(text: str) -> bytes:
    """A base64 TSIG secret, decoded; ValueError when it is not base64 or too short."""
    try:
        secret = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("secret is not base64 (as tsig-keygen or keymgr print it)") from None
    if len(secret) < MIN_SECRET:
        raise ValueError(f"secret is {len(secret)} octets; use at least {MIN_SECRET}")
    return secret


class TransferPeer(_Strict):
    """One ``transfer_to`` entry: who may transfer the zone, and with which key.

    Written as an address or network (``"192.0.2.7"``, ``"10.0.0.0/8"``), or as a table
    ``{ address = "192.0.2.7", key = "xfr-key" }`` when the transfer must be signed with
    that ``[[tsig_key]]``.
    """

    address: str
    key: str | None = None

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an address or CIDR network") from None

    @field_validator("key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        return None if value is None else normalize_domain(value, "key name")

    def matches(self, peer: str) -> bool:
        """Whether the client address ``peer`` is in this entry's network."""
        try:
            return ipaddress.ip_address(peer) in ipaddress.ip_network(self.address)
        except ValueError:
            return False


class NotifyTarget(_Strict):
    """One ``notify`` entry: a secondary told of every change (RFC 1996).

    Written as ``"192.0.2.7"`` (port 53), ``"127.0.0.1:5300"``, ``"[::1]:5300"``, or as a
    table ``{ address = "192.0.2.7:53", key = "xfr-key" }`` to sign the NOTIFY.
    """

    host: str
    port: int = 53
    key: str | None = None

    @field_validator("key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        return None if value is None else normalize_domain(value, "key name")

    @classmethod
    def parse(cls, value: object) -> object:
        """Turn the string or ``{address, key}`` forms into the model's fields."""
        if isinstance(value, dict) and "address" in value:
            rest = {k: v for k, v in value.items() if k != "address"}
            return {**_host_port(str(value["address"])), **rest}
        if isinstance(value, str):
            return _host_port(value)
        return value


def _host_port(text: str) -> dict[str, object]:
    value = text.strip()
    if value.startswith("["):
        host, sep, port = value[1:].partition("]")
        port = port.removeprefix(":")
        if not sep:
            raise ValueError(f"{text!r} must look like '[::1]:53'")
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, ""
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        raise ValueError(f"{text!r}: {host!r} is not an IP address") from None
    port = port or "53"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: port must be 1-65535")
    return {"host": host, "port": int(port)}


def parse_peers(value: object) -> object:
    """``transfer_to``: strings become ``{address}`` tables."""
    if not isinstance(value, list | tuple):
        raise ValueError("must be a list such as ['127.0.0.1', { address = '10.0.0.0/8' }]")
    return tuple({"address": v} if isinstance(v, str) else v for v in value)


def parse_targets(value: object) -> object:
    """``notify``: strings and ``{address, key}`` tables become targets."""
    if not isinstance(value, list | tuple):
        raise ValueError("must be a list such as ['127.0.0.1:5300']")
    return tuple(NotifyTarget.parse(v) for v in value)
