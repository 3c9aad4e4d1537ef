"""API write tokens: which token may write which services (``api_tokens_file``).

A tokens file is TOML with one ``[[token]]`` table per token::

    [[token]]
    name = "web-deploy"          # how logs and errors refer to it; never the secret
    token = "3f9c...e1"          # the bearer token itself
    services = ["web", "pay-*"]  # service names, or prefixes ending in "*"

    [[token]]
    name = "ops"
    token = "b81d...07"
    admin = true                 # every service

A token may register, heartbeat and deregister instances of the services it names and
nothing else.  Tokens are compared in constant time: each candidate is hashed to a
fixed length and compared against every entry with ``hmac.compare_digest``, without
stopping at the first match, so that response times say nothing about which entry (or
how much of a token) matched.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srvdns.errors import ConfigError

_PATTERN = re.compile(r"^(\*|[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?|[a-z0-9][a-z0-9-]{0,61}\*)$")
"""A service name (a DNS label), a prefix of one followed by ``*``, or ``*`` alone."""

_ENTRY_KEYS = frozenset({"name", "token", "services", "admin"})

LEGACY_NAME = "api_token_file"
"""The name of the one admin token that ``api_token_file`` holds."""


@dataclass(frozen=True)
class Grant:
    """What one token may write: ``admin`` (everything) or the ``services`` patterns."""

    name: str
    services: tuple[str, ...] = ()
    admin: bool = False

    def may_write(self, service: str) -> bool:
        """True when this token may register, heartbeat or deregister ``service``'s
        instances; ``service`` is compared case-insensitively."""
        if self.admin:
            return True
        service = service.lower()
        for pattern in self.services:
            if pattern.endswith("*"):
                if service.startswith(pattern[:-1]):
                    return True
            elif service == pattern:
                return True
        return False


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Tokens:
    """The tokens a server accepts, each with its ``Grant``."""

    def __init__(self, entries: Iterable[tuple[str, Grant]]) -> None:
        self._entries = tuple((_digest(token), grant) for token, grant in entries)

    @classmethod
    def single(cls, token: str) -> Tokens:
        """The one admin token of ``api_token_file``."""
        return cls([(token, Grant(LEGACY_NAME, admin=True))])

    def __len__(self) -> int:
        return len(self._entries)

    def __add__(self, other: Tokens) -> Tokens:
        joined = Tokens(())
        joined._entries = self._entries + other._entries
        return joined

    def find(self, given: str) -> Grant | None:
        """The grant of token ``given``, or None for an unknown token.

        Every entry is compared, whichever matches, so the time taken does not depend
        on which entry matched or on how much of a token was right.
        """
        digest = _digest(given)
        found: Grant | None = None
        for candidate, grant in self._entries:
            if hmac.compare_digest(digest, candidate) and found is None:
                found = grant
        return found


def parse(data: Mapping[str, Any], source: str) -> Tokens:
    """Validate a parsed tokens file; ConfigError names the file, the entry and the key."""
    unknown = set(data) - {"token"}
    if unknown:
        raise ConfigError(f"{source}: {sorted(unknown)[0]}: unknown key")
    entries = data.get("token", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{source}: token: must be [[token]] tables")
    out: list[tuple[str, Grant]] = []
    names: set[str] = set()
    secrets: set[str] = set()
    for n, entry in enumerate(entries):
        where = f"{source}: token[{n}]"
        extra = set(entry) - _ENTRY_KEYS
        if extra:
            raise ConfigError(f"{where}.{sorted(extra)[0]}: unknown key")
        name, secret = entry.get("name"), entry.get("token")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}.name: required, a non-empty string")
        if name in names:
            raise ConfigError(f"{where}.name: {name!r} is used twice")
        if not isinstance(secret, str) or not secret.strip():
            raise ConfigError(f"{where}.token: required, a non-empty string")
        if secret != secret.strip() or any(c.isspace() for c in secret):
            raise ConfigError(f"{where}.token: must not contain white space")
        if secret in secrets:
            raise ConfigError(f"{where}.token: the same token is given to two entries")
        admin = entry.get("admin", False)
        if not isinstance(admin, bool):
            raise ConfigError(f"{where}.admin: must be true or false")
        services = entry.get("services", [])
        if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
            raise ConfigError(f"{where}.services: must be a list of service names")
        patterns = tuple(s.strip().lower() for s in services)
        for pattern in patterns:
            if not _PATTERN.match(pattern):
                raise ConfigError(
                    f"{where}.services: {pattern!r} is neither a service name nor a prefix "
                    "ending in '*' (such as 'pay-*')"
                )
        if admin and patterns:
            raise ConfigError(f"{where}: an admin token writes every service; drop services")
        if not admin and not patterns:
            raise ConfigError(f"{where}: needs services = [...] or admin = true")
        names.add(name)
        secrets.add(secret)
        out.append((secret, Grant(name, patterns, admin)))
    if not out:
        raise ConfigError(f"{source}: no [[token]] entries (every write would be refused)")
    return Tokens(out)


def load(path: Path) -> Tokens:
    """Read and validate a tokens file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse(data, str(path))
