"""Event-loop CPU of a round trip through a worker thread: ``call_soon_threadsafe`` vs ``Handback``.

    python bench/handback_cost.py [--trips 5000] [--runs 5] [--work 300]

The registry hands each write to its database thread and gets the committed batch back
on the event loop.  This measures that hand-over alone, on uvloop (asyncio's own loop
when uvloop is missing): the loop puts a job on a ``queue.SimpleQueue``, a worker thread
takes it, does ``--work`` steps of Python (holding the GIL, as a write does) and hands
the outcome back, either with ``loop.call_soon_threadsafe`` (which wakes the loop while
holding the GIL) or with ``srvdns.registry.handback.Handback`` (which wakes it without);
the loop awaits each outcome before the next trip.  Prints, alternating the two ways,
each run's and the median event-loop thread CPU (``time.thread_time``) and whole-process
CPU per round trip.  Run it pinned to one CPU (``taskset -c 1``) to see it as
``srvdns serve`` runs.  Installs nothing; no network.
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from srvdns.registry.handback import Handback

Job = tuple[Callable[[asyncio.Future[None]], None], asyncio.Future[None]] | None


async def measure(trips: int, runs: int, work: int) -> None:
    loop = asyncio.get_running_loop()
    handback = Handback(loop)
    jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()

    def worker() -> None:
        while (job := jobs.get()) is not None:
            sum(range(work))
            hand, future = job
            hand(future)

    def threadsafe(future: asyncio.Future[None]) -> None:
        loop.call_soon_threadsafe(future.set_result, None)

    def handed_back(future: asyncio.Future[None]) -> None:
        handback.call(future.set_result, None)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    ways: dict[str, Any] = {"call_soon_threadsafe": threadsafe, "Handback": handed_back}
    costs: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    try:
        for run in range(runs):
            for name, hand in ways.items():
                loop_start, process_start = time.thread_time(), time.process_time()
                for _ in range(trips):
                    future: asyncio.Future[None] = loop.create_future()
                    jobs.put((hand, future))
                    await future
                costs[name].append(
                    (
                        (time.thread_time() - loop_start) / trips * 1e6,
                        (time.process_time() - process_start) / trips * 1e6,
                    )
                )
                print(
                    f"run {run + 1} {name}: event loop {costs[name][-1][0]:.1f} us, "
                    f"process {costs[name][-1][1]:.1f} us per round trip",
                    flush=True,
                )
    finally:
        jobs.put(None)
        thread.join()
        handback.close()
    for name, runs_of in costs.items():
        print(
            f"{name}, median of {runs}: event loop "
            f"{statistics.median(c[0] for c in runs_of):.1f} us, process "
            f"{statistics.median(c[1] for c in runs_of):.1f} us per round trip"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trips", type=int, default=5000, help="round trips per run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work", type=int, default=300, help="Python steps per job")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(measure(args.trips, args.runs, args.work))
    else:
        uvloop.run(measure(args.trips, args.runs, args.work))


if __name__ == "__main__":
    main()
