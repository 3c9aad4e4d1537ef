"""The conformance world, started once per session; NSD and Knot are required."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conformance.referees import missing_binaries
from conformance.world import World, running_world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """srvdns with the data set, and NSD and Knot serving the zones it exported.

    Without NSD or Knot installed this fails, never skips: the comparison is the point.
    """
    missing = missing_binaries()
    if missing:
        pytest.fail(
            "the conformance tests compare srvdns with NSD and Knot, and these are not "
            f"installed: {', '.join(missing)}; on Debian: apt-get install nsd knot knot-dnsutils"
        )
    with running_world(tmp_path_factory.mktemp("conformance")) as world:
        yield world
