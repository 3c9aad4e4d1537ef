"""Event-loop CPU per registration, in process: the API stack without the HTTP layer.

    python bench/registration_loop_cost.py [--writes 3000] [--runs 5]

A fresh SQLite registry in a temporary directory (its worker thread, as ``srvdns serve``
opens it) and the API application wrapped as ``srvdns serve`` serves it (uvicorn's proxy
headers middleware around the fast paths), called directly as ASGI on uvloop: 1,000
instances over 1,000 services are registered, then ``--writes`` registrations replace
them one at a time (each awaited before the next, so each is a transaction of its own),
with the body ``bench/lone_registration_cost.py`` sends.  Prints, per run and as the
median of ``--runs``, the event loop thread's CPU per registration
(``time.thread_time``: parsing, validation, the hand-over, publishing the change, the
answer's JSON) and the whole process's (the database thread's too).

Without HTTP, sockets and other processes' load, a run moves by a few percent, not the
±25% of ``lone_registration_cost.py``: fine enough to see a change of a few
microseconds, which that benchmark cannot resolve.  To compare two trees, run this file
with ``PYTHONPATH`` set to each tree in turn.  Installs nothing; no network.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from typing import Any

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from srvdns.api.app import create_app
from srvdns.api.fastpath import HeartbeatFastPath
from srvdns.api.fastregister import RegistrationFastPath
from srvdns.registry.registry import Registry


def requests(prefix: str = "svc", services: int = 1000) -> list[tuple[str, bytes]]:
    """One registration of an extra instance in each of ``services`` services named
    ``<prefix>-<n>`` (path, body)."""
    return [
        (
            f"/v1/services/{prefix}-{n}/instances/churn-{n}",
            f'{{"address": "10.254.{n // 250 % 250}.{n % 250 + 1}", "port": 9000}}'.encode(),
        )
        for n in range(services)
    ]


def served(registry: Registry) -> Any:
    """The API application of ``registry`` wrapped as ``srvdns serve`` serves it (uvicorn's
    proxy headers middleware around the fast paths)."""
    fast: Any = RegistrationFastPath(HeartbeatFastPath(create_app(registry, token=None)))
    return ProxyHeadersMiddleware(fast, trusted_hosts="127.0.0.1,::1")


async def register(app: Any, path: str, body: bytes) -> None:
    """One PUT through ``app``, as uvicorn hands it over; fails unless answered 2xx."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8054),
        "client": ("127.0.0.1", 40000),
        "scheme": "http",
        "method": "PUT",
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8054"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    answers: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        answers.append(message)

    await app(scope, receive, send)
    if not 200 <= answers[0]["status"] < 300:
        raise SystemExit(f"registration failed: {answers}")


async def measure(writes: int, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="srvdns-loop-cost-") as tmp:
        registry = Registry.open(f"sqlite:///{tmp}/registry.db")
        try:
            app = served(registry)
            wanted = requests()
            for path, body in wanted:  # the instances the runs replace
                await register(app, path, body)
            loop_costs, process_costs = [], []
            for run in range(runs):
                thread, process = time.thread_time(), time.process_time()
                for n in range(writes):
                    await register(app, *wanted[n % len(wanted)])
                loop_costs.append((time.thread_time() - thread) / writes * 1e6)
                process_costs.append((time.process_time() - process) / writes * 1e6)
                print(
                    f"run {run + 1}: event loop {loop_costs[-1]:.1f} us, "
                    f"process {process_costs[-1]:.1f} us per registration",
                    flush=True,
                )
            print(
                f"median of {runs}: event loop {statistics.median(loop_costs):.1f} us, "
                f"process {statistics.median(process_costs):.1f} us per registration"
            )
        finally:
            registry.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=3000, help="registrations per run")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # asyncio's own loop, as srvdns serve falls back to
        asyncio.run(measure(args.writes, args.runs))
    else:
        uvloop.run(measure(args.writes, args.runs))


if __name__ == "__main__":
    main()
