"""Fixtures of the health tests: target servers, and a registry on a SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from health.targets import TargetPool, target_pool

from srvdns.registry.registry import Registry


@pytest.fixture
def targets() -> Iterator[TargetPool]:
    """HTTP servers on 127.0.0.1 the test turns healthy, unhealthy, slow or dead."""
    with target_pool() as pool:
        yield pool


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    opened = Registry.open(f"sqlite:///{tmp_path / 'registry.db'}")
    try:
        yield opened
    finally:
        opened.close()
