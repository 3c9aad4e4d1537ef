"""What the change follower's stamps cost every write: registrations with and without them.

    python bench/change_stamp_cost.py [--writes 2000]

Two fresh SQLite registries in a temporary directory; ``Repository.upsert_instance`` on
each in turn (so that both see the same machine load), one with
``repository.record_changes`` (the ``change_seq`` bump and the per-service stamp that
``srvdns.registry.follower`` reads) and one with it replaced by a no-op.  Prints the mean
time per write of each.  Installs nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy.engine import Connection

from srvdns.model import Instance
from srvdns.registry import migrate
from srvdns.registry import repository as repo_module
from srvdns.registry.engine import create_engine
from srvdns.registry.repository import Repository


def no_stamps(conn: Connection, names: Iterable[str]) -> int:
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--services", type=int, default=50)
    args = parser.parse_args()
    real = repo_module.record_changes
    with tempfile.TemporaryDirectory(prefix="srvdns-stamps-") as tmp:
        repos: dict[str, Repository] = {}
        for name in ("with stamps", "without"):
            url = f"sqlite:///{Path(tmp) / name.replace(' ', '-')}.db"
            migrate.upgrade(url)
            repos[name] = Repository(create_engine(url))
        spent = dict.fromkeys(repos, 0.0)
        for n in range(args.writes):
            instance = Instance(
                service=f"s{n % args.services}", id=f"i{n}", address="10.0.0.1", port=80
            )
            for name, repo in repos.items():
                repo_module.record_changes = real if name == "with stamps" else no_stamps
                start = time.perf_counter()
                repo.upsert_instance(instance)
                spent[name] += time.perf_counter() - start
        repo_module.record_changes = real
        for name, seconds in spent.items():
            print(f"{name}: {seconds / args.writes * 1000:.3f} ms per registration")
        for repo in repos.values():
            repo.engine.dispose()


if __name__ == "__main__":
    main()
