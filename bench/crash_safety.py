"""Crash safety under load: acknowledged writes lost when srvdns is killed with SIGKILL.

    python bench/crash_safety.py [--rounds N | --duration 300] [--clients 8]
        [--instances 8] [--kill-after 0.2:2.0] [--durability process|power] [--seed N]

Kills a real ``srvdns serve`` with SIGKILL at random moments while ``--clients`` threads
register, re-register, heartbeat and deregister their instances over the HTTP API, then
restarts it on the same SQLite file; after each restart it checks ``PRAGMA
integrity_check`` and that every acknowledged write is there (see ``tests/e2e/crash.py``).
Prints a line per round and a summary; exits 1 when a write was lost.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from e2e import crash


def seconds_range(text: str) -> tuple[float, float]:
    low, _, high = text.partition(":")
    pair = (float(low), float(high or low))
    if not 0 < pair[0] <= pair[1]:
        raise argparse.ArgumentTypeError("expected LOW:HIGH seconds with 0 < LOW <= HIGH")
    return pair


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="kill and restart this many times")
    parser.add_argument("--duration", type=float, default=60.0, help="else run this long (s)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--instances", type=int, default=8, help="instances per client")
    parser.add_argument("--kill-after", type=seconds_range, default=(0.2, 2.0))
    parser.add_argument("--durability", choices=["process", "power"], default="process")
    parser.add_argument("--seed", type=int)
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="srvdns-crash-") as directory:
        tally = crash.run(
            Path(directory),
            rounds=args.rounds,
            duration=None if args.rounds else args.duration,
            clients=args.clients,
            instances=args.instances,
            kill_after=args.kill_after,
            durability=args.durability,
            seed=args.seed,
            progress=print,
        )
    elapsed = time.monotonic() - started
    print(f"durability {args.durability}, {args.clients} clients, {elapsed:.0f} s")
    print(tally.summary())
    for problem in tally.problems:
        print("  " + problem)
    damaged = tally.lost or tally.half_done or tally.integrity_ok != tally.rounds
    return 1 if damaged or tally.unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
