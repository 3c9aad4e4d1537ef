"""Why a body is not JSON, in words (``decoding``)."""

from __future__ import annotations

import re

import pytest

from srvdns.api.decoding import loads


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"a": "\xff"}', "not UTF-8 (octet 0xff at 7)"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a": ' + b"9" * 5000 + b"}", "a number with more than 4300 digits"),
        (b'{"a": 1', "Expecting ',' delimiter at line 1 column 8"),
        (b"", "Expecting value at line 1 column 1"),
    ],
)
def test_reasons(raw: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(reason)}$"):
        loads(raw)


def test_good_json_is_decoded() -> None:
    assert loads(b'{"a": [1, 2.5, "x", null]}') == {"a": [1, 2.5, "x", None]}
