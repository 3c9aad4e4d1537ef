"""Fixtures that start real srvdns processes."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2e.harness import SrvdnsProcess, start, write_config

pytestmark = pytest.mark.e2e


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., SrvdnsProcess]]:
    """Start srvdns processes with a config body; all are stopped at the end of the test."""
    started: list[SrvdnsProcess] = []

    def _launch(
        body: str = "", *, server: str = "", config: Path | None = None, **options: str
    ) -> SrvdnsProcess:
        path = config or write_config(tmp_path, body, server=server, **options)
        proc = start(path)
        started.append(proc)
        return proc

    yield _launch
    for proc in started:
        proc.stop()


@pytest.fixture
def srvdns(launch: Callable[..., SrvdnsProcess]) -> SrvdnsProcess:
    """One srvdns with an empty zone service.local."""
    return launch()


@pytest.fixture(scope="session")
def dig() -> str:
    path = shutil.which("dig")
    if path is None:
        pytest.fail("dig is not installed (Debian package bind9-dnsutils)")
    return path
