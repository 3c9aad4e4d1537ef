"""Zones that several end-to-end tests serve."""

from __future__ import annotations

_BIG = ",\n".join(
    f'    {{ id = "big-{n:02}", address = "10.9.0.{n}", port = {8000 + n} }}' for n in range(1, 31)
)
BIG_AND_SMALL = f"""\
[[zone]]
name = "service.local"
ttl = 5

[[zone.service]]
name = "big"
instances = [
{_BIG}
]

[[zone.service]]
name = "small"
instances = [{{ id = "s-1", address = "10.8.0.1", port = 80 }}]
"""
"""A zone with a service too big for 512 octets (30 instances) and a small one."""
