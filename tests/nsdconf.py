"""The ``nsd.conf`` that every NSD the tests and benchmarks start uses: on one loopback
port, in a directory of its own, no chroot, no user switch, no response rate limiting
(which answers a burst of similar questions with TC=1 "slips")."""

from __future__ import annotations

from pathlib import Path


def nsd_conf(directory: Path, port: int, *, server: str = "", rest: str = "") -> str:
    """The config text; ``server`` adds lines to the ``server:`` clause (indented), ``rest``
    adds clauses (``key:``, ``zone:``, ...) after it."""
    return (
        "server:\n"
        f"    port: {port}\n"
        f"    ip-address: 127.0.0.1@{port}\n"
        f'    zonesdir: "{directory}"\n'
        f'    pidfile: "{directory}/nsd.pid"\n'
        '    database: ""\n'
        f'    zonelistfile: "{directory}/zone.list"\n'
        f'    xfrdfile: "{directory}/xfrd.state"\n'
        f'    xfrdir: "{directory}"\n'
        '    chroot: ""\n'
        '    username: ""\n'
        "    server-count: 1\n"
        "    rrl-ratelimit: 0\n"
        "    rrl-whitelist-ratelimit: 0\n"
        f"{server}"
        "remote-control:\n"
        "    control-enable: no\n"
        f"{rest}"
    )
