"""CPU the registry's writer spends per registration, without HTTP: the SQL side alone.

    python bench/registry_write_cost.py [--writes 5000] [--services 100] [--batch 1 8 32]
                                        [--replace] [--profile]

A fresh SQLite registry (WAL and its checkpoint thread, as ``srvdns serve`` opens it) in
a temporary directory; this thread plays the registry's worker thread: ``--writes``
registrations of instances with a 60 s lease over ``--services`` services, run through
``Repository.batch`` in groups of each ``--batch`` size (the group commit the worker
makes of writes that queued up), as ``Registry._drain`` runs them.  ``--replace``
registers the same instances a second time first (replacements instead of inserts).
Prints CPU microseconds per registration (``time.process_time``: the checkpoint
thread's too) for each batch size; ``--profile`` prints the top of a cProfile of the
last one.  Installs nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from srvdns.model import Instance, Source
from srvdns.registry import migrate
from srvdns.registry.checkpoint import WalCheckpointer
from srvdns.registry.engine import create_engine
from srvdns.registry.registry import with_initial_checks
from srvdns.registry.repository import Change, Repository


def instances(count: int, services: int, now: float) -> list[Instance]:
    return [
        with_initial_checks(
            Instance(
                service=f"svc-{n % services}",
                id=f"i-{n}",
                address=f"10.{n // 62500}.{n // 250 % 250}.{n % 250 + 1}",
                port=8080,
                ttl=60.0,
                source=Source.API,
                registered_at=now,
            ),
            now,
        )
        for n in range(count)
    ]


def run(repository: Repository, wanted: Sequence[Instance], batch: int) -> float:
    """Register ``wanted`` in groups of ``batch``; the CPU seconds it took."""
    started = time.process_time()
    for start in range(0, len(wanted), batch):
        group = wanted[start : start + batch]
        writes: list[Callable[[], Change]] = [
            (lambda i=i: repository.upsert_instance(i)) for i in group
        ]
        with repository.batch(writes=len(writes)):
            for write in writes:
                write()
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writes", type=int, default=5000)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--replace", action="store_true")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="srvdns-write-cost-") as tmp:
        for batch in args.batch:
            url = f"sqlite:///{Path(tmp) / f'b{batch}.db'}"
            migrate.upgrade(url)
            engine = create_engine(url)
            checkpointer = WalCheckpointer.attach(engine)  # as Registry.open does
            repository = Repository(engine)
            if checkpointer is not None:
                checkpointer.start()
            wanted = instances(args.writes, args.services, time.time())
            if args.replace:
                run(repository, wanted, batch)
            profile = cProfile.Profile() if args.profile and batch == args.batch[-1] else None
            if profile is not None:
                profile.enable()
            seconds = run(repository, wanted, batch)
            if profile is not None:
                profile.disable()
            kind = "replacements" if args.replace else "registrations"
            print(
                f"batch {batch:>3}: {seconds / args.writes * 1e6:6.0f} us CPU per write "
                f"({args.writes} {kind})",
                flush=True,
            )
            if checkpointer is not None:
                checkpointer.stop()
            repository.engine.dispose()
            if profile is not None:
                pstats.Stats(profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
