"""CPU of each thread of the registry per lone registration, in process, without HTTP.

    python bench/database_thread_cost.py [--writes 3000] [--runs 5]

The setting of ``bench/registration_loop_cost.py`` (a fresh SQLite registry opened as
``srvdns serve`` opens it, the API application called as ASGI on uvloop, 1,000
instances of 1,000 services replaced one registration at a time, each its own
transaction), with the CPU of every thread of the process read from
``/proc/self/task/*/stat`` before and after each run: the event loop, the registry's
database thread (``srvdns-registry``) and the WAL checkpoint thread, user and system
time apart.  Prints per run and, at the end, the median of ``--runs`` for each thread.
The clock ticks of ``/proc`` are 10 ms, so a run should take a second or more of a
thread's CPU (3,000 writes do).  To compare two trees, run it with ``PYTHONPATH`` set
to each in turn, from a directory outside both.  Linux only; no network.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import tempfile
import threading
from pathlib import Path
from typing import Any

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from srvdns.api.app import create_app
from srvdns.api.fastpath import HeartbeatFastPath
from srvdns.api.fastregister import RegistrationFastPath
from srvdns.registry.registry import Registry

_TICK = os.sysconf("SC_CLK_TCK")


def _sibling(name: str) -> Any:
    """Another script of this directory, as a module (bench/ is not a package)."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def threads_cpu() -> dict[str, tuple[float, float]]:
    """Each thread's (user, system) CPU seconds, by name (the loop thread is "loop")."""
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    names[threading.main_thread().native_id] = "loop"
    found: dict[str, tuple[float, float]] = {}
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        name = names.get(int(task), "other")
        user, system = int(fields[11]) / _TICK, int(fields[12]) / _TICK
        old = found.get(name, (0.0, 0.0))
        found[name] = (old[0] + user, old[1] + system)
    return found


async def measure(writes: int, runs: int) -> None:
    loop_cost = _sibling("registration_loop_cost")
    per_thread: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="srvdns-db-thread-") as tmp:
        registry = Registry.open(f"sqlite:///{tmp}/registry.db")
        try:
            app = create_app(registry, token=None)
            fast: Any = RegistrationFastPath(HeartbeatFastPath(app))
            served = ProxyHeadersMiddleware(fast, trusted_hosts="127.0.0.1,::1")
            wanted = loop_cost.requests()
            for path, body in wanted:  # the instances the runs replace
                await loop_cost.register(served, path, body)
            for run in range(runs):
                before = threads_cpu()
                for n in range(writes):
                    await loop_cost.register(served, *wanted[n % len(wanted)])
                after = threads_cpu()
                line = []
                for name in sorted(after):
                    user = after[name][0] - before.get(name, (0.0, 0.0))[0]
                    system = after[name][1] - before.get(name, (0.0, 0.0))[1]
                    cost = (user / writes * 1e6, system / writes * 1e6)
                    per_thread.setdefault(name, []).append(cost)
                    line.append(f"{name} {cost[0]:.0f}+{cost[1]:.0f}")
                print(f"run {run + 1} (user+sys us per registration): " + ", ".join(line))
        finally:
            registry.close()
    print(f"median of {runs} (user + sys = total us per registration):")
    for name, costs in sorted(per_thread.items()):
        user = statistics.median(c[0] for c in costs)
        system = statistics.median(c[1] for c in costs)
        total = statistics.median(c[0] + c[1] for c in costs)
        print(f"  {name:<24} {user:6.1f} + {system:6.1f} = {total:6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=3000, help="registrations per run")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(measure(args.writes, args.runs))
    else:
        uvloop.run(measure(args.writes, args.runs))


if __name__ == "__main__":
    main()
