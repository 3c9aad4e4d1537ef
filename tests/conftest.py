"""Fixtures every test directory may use; a directory's own conftest overrides them (the
registry and health tests have registries of their own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api.support import Clock

from srvdns.registry.registry import Registry


@pytest.fixture
def clock() -> Clock:
    """A clock the test moves by hand."""
    return Clock()


@pytest.fixture
def registry(tmp_path: Path, clock: Clock) -> Iterator[Registry]:
    """A real Registry on a SQLite file, on ``clock`` (the API and status page tests)."""
    opened = Registry.open(f"sqlite:///{tmp_path}/r.db", clock=clock)
    try:
        yield opened
    finally:
        opened.close()
