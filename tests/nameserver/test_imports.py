"""The DNS path never touches the database: no SQLAlchemy, no registry (STYLE.md §3)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
import srvdns.nameserver.server, srvdns.nameserver.handler
bad = sorted(m for m in sys.modules if m.split(".")[0] == "sqlalchemy"
             or m == "srvdns.registry" or m.startswith("srvdns.registry."))
print(",".join(bad))
"""


def test_nameserver_imports_neither_sqlalchemy_nor_the_registry() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert result.stdout.strip() == ""
