"""Validation of the names srvdns stores: service names, tags, instance ids, domains."""

from __future__ import annotations

import ipaddress
import re

LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
INSTANCE_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_META = 64
MAX_META_KEY = 128
MAX_META_VALUE = 512
_META_KEY_RE = re.compile(rf"^[A-Za-z0-9_.-]{{1,{MAX_META_KEY}}}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_SHOWN = 80
"""Characters of a rejected value quoted in an error; a 60 KB key is not echoed whole."""


def shown(value: str) -> str:
    """``repr(value)``, cut to its first ``_SHOWN`` characters with the length when longer."""
    if len(value) <= _SHOWN:
        return repr(value)
    return f"{value[:_SHOWN]!r}... ({len(value)} characters)"


def normalize_label(value: str, what: str = "name") -> str:
    """A lower-cased DNS label (1-63 of a-z, 0-9, '-', not starting or ending with '-').

    Raises ValueError naming ``what`` when ``value`` is not one.
    """
    lowered = value.lower()
    if not LABEL_RE.match(lowered):
        raise ValueError(
            f"{what} {shown(value)} is not a DNS label: 1-63 characters of a-z, 0-9 and '-', "
            "not starting or ending with '-'"
        )
    return lowered


def check_instance_id(value: str) -> str:
    """An instance id: 1-64 of letters, digits, '-', '_' and '.'; case is kept."""
    if not INSTANCE_ID_RE.match(value):
        raise ValueError(
            f"instance id {shown(value)} must be 1-64 characters of letters, digits, "
            "'-', '_' and '.'"
        )
    return value


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")
"""Dotted-quad IPv4 in canonical text: each octet 0-255 in decimal without leading zeros."""


def normalize_address(value: str) -> str:
    """The canonical text of an IPv4 or IPv6 literal (no host names, no scope ids)."""
    if _CANONICAL_IPV4.fullmatch(value):
        # already what ipaddress would print: 100,000 static instances skip ~0.4 s of it
        return value
    if "%" in value:
        raise ValueError(f"{shown(value)}: scoped IPv6 addresses (with %zone) cannot be published")
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValueError(f"{shown(value)} is not an IPv4 or IPv6 address") from None


def normalize_domain(value: str, what: str = "domain") -> str:
    """A lower-case absolute-less domain name ("service.local"), each label valid."""
    name = value.strip().rstrip(".").lower()
    if not name or len(name) > 253:
        raise ValueError(f"{what} {shown(value)} is not a domain name")
    for label in name.split("."):
        if not re.match(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$", label):
            raise ValueError(f"{what} {shown(value)} has an invalid label {shown(label)}")
    return name


def check_meta_key(value: str) -> str:
    """A meta key: 1-128 of letters, digits, '_', '.' and '-'."""
    if not _META_KEY_RE.match(value):
        raise ValueError(
            f"meta key {shown(value)} must be 1-{MAX_META_KEY} characters of "
            "letters, digits, '_', '.' and '-'"
        )
    return value


def check_meta_value(value: str) -> str:
    """A meta value: at most 512 characters, no control characters."""
    if len(value) > MAX_META_VALUE:
        raise ValueError(f"meta value is longer than {MAX_META_VALUE} characters")
    if _CONTROL_RE.search(value):
        raise ValueError("meta value contains a control character")
    return value


def check_meta(meta: dict[str, str]) -> dict[str, str]:
    """Instance meta: at most 64 entries, each key and value valid."""
    if len(meta) > MAX_META:
        raise ValueError(f"meta has more than {MAX_META} entries")
    return {check_meta_key(k): check_meta_value(v) for k, v in meta.items()}
