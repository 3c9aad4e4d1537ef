"""What the garbage collector costs a serving srvdns under DNS load, writes and checks.

    python bench/gc_cost.py [--duration 15] [--runs 3] [--baseline DIR]

Starts ``srvdns serve`` pinned to CPU 1 (the helpers of bench/dns_throughput.py) with a
probe loaded at interpreter start-up (a ``sitecustomize`` module this script writes into
its temporary directory and puts first on the server's PYTHONPATH): a ``gc.callbacks``
hook that times every collection the server makes, by generation (the collecting
thread's CPU time, and the wall-clock time the collection paused it), and writes the
totals to a file twice a second.  It registers 1,000 services x 3 instances, then in each of
``--runs`` windows of ``--duration`` seconds asks the usual question file flat out with
dnsperf on CPU 0 while registrations stream at ``--churn`` per second and ``--checks``
TCP checks run every second (as ``dns_throughput.py --churn`` does), and prints for each
generation the collections, the CPU time they took and the longest pause, and all
collections' share of the core.  On a busy machine the pauses include the time another
process had the CPU; the CPU time does not.

``--baseline DIR`` measures the ``srvdns`` of the source tree ``DIR`` (a checkout of
another commit, through PYTHONPATH) the same way, alternating with this tree, one fresh
server per window, so that both see the same machine.  Run it from a directory outside
both trees (the current directory's own ``srvdns`` would shadow PYTHONPATH).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).parent))
import dns_throughput as dt
from http_load import run_sync

PROBE = """
import gc, os, threading, time

_path = os.environ.get("SRVDNS_GC_PROBE")
if _path:
    # collections, CPU seconds, longest lately (wall-clock: the event loop's pause)
    _totals = [[0, 0.0, 0.0] for _ in range(3)]
    _started = [0.0, 0.0]

    def _timed(phase, info):
        if phase == "start":
            _started[:] = time.thread_time(), time.perf_counter()
            return
        total = _totals[info["generation"]]
        total[0] += 1
        total[1] += time.thread_time() - _started[0]
        total[2] = max(total[2], time.perf_counter() - _started[1])

    def _write():
        with open(_path, "a") as out:
            while True:
                time.sleep(0.5)
                line = " ".join(f"{n} {s} {m}" for n, s, m in _totals)
                out.write(f"{time.time()} {line}\\n")
                out.flush()
                for total in _totals:
                    total[2] = 0.0

    gc.callbacks.append(_timed)
    threading.Thread(target=_write, daemon=True).start()
"""


def totals(path: Path, start: float, end: float) -> list[tuple[int, float, float]]:
    """(collections, seconds, longest) per generation from ``start`` to ``end``, from the
    lines the probe wrote every half second (running totals, and the longest collection
    since the line before)."""
    lines = [[float(x) for x in line.split()] for line in path.read_text().splitlines()]
    before = [line for line in lines if line[0] <= start][-1]
    inside = [line for line in lines if start < line[0] <= end]
    last = inside[-1]
    return [
        (
            int(last[1 + 3 * g] - before[1 + 3 * g]),
            last[2 + 3 * g] - before[2 + 3 * g],
            max(line[3 + 3 * g] for line in inside),
        )
        for g in range(3)
    ]


def window(tree: str | None, directory: Path, args: argparse.Namespace) -> tuple[list, float]:
    """One server of ``tree`` (None: this one), measured once; returns each generation's
    (collections, seconds, longest) over the window and the window's qps."""
    directory.mkdir()
    probe_dir = directory / "probe"
    probe_dir.mkdir()
    (probe_dir / "sitecustomize.py").write_text(PROBE)
    out = directory / "gc.txt"
    path = [str(probe_dir), tree, os.environ.get("PYTHONPATH")]
    env = {"PYTHONPATH": os.pathsep.join(filter(None, path)), "SRVDNS_GC_PROBE": str(out)}
    process, port, api, _ = dt.start_srvdns(directory, env=env)
    try:
        queries = directory / "queries.txt"
        queries.write_text(
            "".join(f"svc-{s}.{dt.ZONE} SRV\nsvc-{s}.{dt.ZONE} A\n" for s in range(1000))
        )
        dt.register(api, 1000, 3)
        url = urlsplit(api)
        run_sync(url.hostname or "127.0.0.1", url.port or 80, dt.churn_requests(url.netloc, 1000))
        dt.warm_up(port, queries)
        target = dt.CheckTarget()
        dt.add_checked(api, args.checks, target.netloc)
        with dt.Churn(api, 1000, args.churn):
            time.sleep(2)
            start = time.time()
            result, _ = dt.dnsperf(port, queries, args.duration)
            end = time.time()
            time.sleep(0.6)  # the probe has written since
        target.sock.close()
    finally:
        dt.stop(process)
    return totals(out, start, end), result.qps


def report(label: str, spent: list[tuple[int, float, float]], qps: float, seconds: float) -> float:
    share = sum(s for _, s, _ in spent) / seconds
    print(
        f"  {label:<10} "
        + "  ".join(
            f"gen {g}: {n} in {s * 1000:.0f} ms of CPU (longest pause {m * 1000:.1f} ms)"
            for g, (n, s, m) in enumerate(spent)
        )
        + f"  | {share * 100:.2f} % of the core, {qps:.0f} qps",
        flush=True,
    )
    return share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per window")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--churn", type=float, default=200, help="registrations per second")
    parser.add_argument("--checks", type=int, default=300, help="TCP checks per second")
    parser.add_argument("--baseline", metavar="DIR", help="also measure this source tree")
    args = parser.parse_args()
    # the load generators (registrations' client, checks' target) share dnsperf's CPU
    os.sched_setaffinity(0, {int(dt.CLIENT_CPU)})
    trees: list[tuple[str, str | None]] = [("this tree", None)]
    if args.baseline:
        trees.append(("baseline", str(Path(args.baseline).resolve())))
    shares: dict[str, list[float]] = {label: [] for label, _ in trees}
    longest: dict[str, float] = {label: 0.0 for label, _ in trees}
    with tempfile.TemporaryDirectory(prefix="srvdns-gc-") as tmp:
        for run in range(args.runs):
            print(f"run {run + 1}:")
            for n, (label, tree) in enumerate(trees):
                spent, qps = window(tree, Path(tmp) / f"{run}-{n}", args)
                shares[label].append(report(label, spent, qps, args.duration))
                longest[label] = max(longest[label], *(m for _, _, m in spent))
    for label, values in shares.items():
        print(
            f"{label}: median {statistics.median(values) * 100:.2f} % of the core in garbage "
            f"collections; longest pause {longest[label] * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
