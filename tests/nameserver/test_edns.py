"""EDNS(0) sizes."""

from __future__ import annotations

import pytest

from srvdns.nameserver.edns import Edns, udp_limit


@pytest.mark.parametrize(
    ("payload", "ceiling", "expected"),
    [(None, 1232, 512), (0, 1232, 512), (300, 1232, 512), (1000, 1232, 1000),
     (4096, 1232, 1232), (4096, 4096, 4096)],
)  # fmt: skip
def test_udp_limit(payload: int | None, ceiling: int, expected: int) -> None:
    edns = None if payload is None else Edns(version=0, payload=payload, dnssec_ok=False)
    assert udp_limit(edns, ceiling) == expected
