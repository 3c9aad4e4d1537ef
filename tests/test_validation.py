"""normalize_address: its shortcut for canonical IPv4 text answers as ipaddress does."""

from __future__ import annotations

import ipaddress
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from srvdns.validation import _CANONICAL_IPV4, normalize_address

OCTETS = [
    "0", "00", "01", "1", "9", "09", "10", "99", "099", "100", "199", "200", "249",
    "250", "255", "256", "260", "300", "999", "0255", "", " 1", "1 ", "+1", "-1",
    "\u0661", "1\n", "0x1", "1e2",
]  # fmt: skip


def reference(value: str) -> str | None:
    """What normalize_address answered before its shortcut: ipaddress's text, or None."""
    if "%" in value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def outcome(value: str) -> str | None:
    try:
        return normalize_address(value)
    except ValueError:
        return None


def test_every_canonical_octet_and_its_near_misses():
    """All 256 octet values and the texts around them, in every position."""
    candidates = [str(n) for n in range(256)] + OCTETS
    for position in range(4):
        for octet in candidates:
            parts = ["10", "1", "2", "3"]
            parts[position] = octet
            value = ".".join(parts)
            assert outcome(value) == reference(value), value


def test_combinations_of_odd_octets():
    for parts in itertools.product(OCTETS[:16], repeat=2):
        for value in (".".join(("1", "2", *parts)), ".".join(parts), ".".join((*parts, *parts))):
            assert outcome(value) == reference(value), value


@pytest.mark.parametrize(
    "value", ["10.0.0.1\n", "10.0.0.1 ", " 10.0.0.1", "10.0.0.1%eth0", "10.0.0", "10.0.0.1.2"]
)
def test_the_shortcut_takes_no_text_ipaddress_would_change(value):
    assert not _CANONICAL_IPV4.fullmatch(value)
    assert outcome(value) == reference(value)


@given(st.ip_addresses(v=4))
def test_canonical_ipv4_takes_the_shortcut(address):
    assert _CANONICAL_IPV4.fullmatch(str(address))
    assert normalize_address(str(address)) == str(address)


@given(st.text(alphabet="0123456789.% :abcdef\n", max_size=20))
def test_any_text_answers_as_ipaddress_does(value):
    assert outcome(value) == reference(value)


def test_errors_are_unchanged():
    with pytest.raises(ValueError, match="is not an IPv4 or IPv6 address"):
        normalize_address("10.0.0.256")
    with pytest.raises(ValueError, match="scoped IPv6"):
        normalize_address("fe80::1%eth0")
    assert normalize_address(" 2001:DB8::1 ") == "2001:db8::1"
