"""Server CPU per lone registration: registrations trickling in, each on its own.

    python bench/lone_registration_cost.py [--rate 200] [--duration 5] [--runs 3]

Needs srvdns installed (``pip install -e .[fast]`` for uvloop) and ``taskset``
(util-linux).  Installs nothing; all traffic is on loopback.

What it does: starts ``srvdns serve`` on a fresh SQLite file (pinned to CPU 1 like the
other benchmarks), registers ``--services`` services x ``--instances`` instances through
the API, then (from CPU 0) streams registrations at ``--rate`` per second over 4 keep-alive
connections, each request sent only once the previous answer on its connection arrived
(so at 200/s nearly every registration is a transaction of its own: the case whose
fixed costs, per transaction and per thread hand-off, this measures).  Each registration
replaces one of 1,000 extra instances spread over the services.  For ``--runs`` windows
of ``--duration`` seconds it reads the server's user and system CPU time from
``/proc/PID/stat`` and prints each run's CPU per registration (user, sys, total, in
microseconds) and the median of the runs.  Measures CPU, not throughput: the machine
may be shared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).parent))
from dns_throughput import CLIENT_CPU, register, start_srvdns, stop
from http_load import request

CONNECTIONS = 4


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


class Stream:
    """Registrations at ``rate`` per second over keep-alive connections, from a thread,
    each sent once the previous answer on its connection arrived; counts the answers."""

    def __init__(self, api: str, services: int, rate: float) -> None:
        url = urlsplit(api)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.requests = [
            request(
                "PUT",
                url.netloc,
                f"/v1/services/svc-{n % services}/instances/churn-{n}",
                f'{{"address": "10.254.{n // 250 % 250}.{n % 250 + 1}", "port": 9000}}'.encode(),
            )
            for n in range(1000)
        ]
        self.rate = rate
        self.answered = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        await asyncio.gather(*(self._connection(n) for n in range(CONNECTIONS)))

    async def _connection(self, first: int) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        loop = asyncio.get_running_loop()
        pace = CONNECTIONS / self.rate
        next_at = loop.time() + first * pace / CONNECTIONS
        n = first
        try:
            while not self._stop.is_set():
                next_at += pace
                delay = next_at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(self.requests[n % len(self.requests)])
                n += CONNECTIONS
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                if head[9:10] == b"2":
                    self.answered += 1
                else:
                    self.failed += 1
        finally:
            writer.close()

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)


def window(pid: int, stream: Stream, seconds: float) -> tuple[float, float, int]:
    """CPU (user, sys) the server spent and registrations answered in ``seconds``."""
    done = stream.answered
    user0, sys0 = cpu_times(pid)
    time.sleep(seconds)
    user1, sys1 = cpu_times(pid)
    return user1 - user0, sys1 - sys0, stream.answered - done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="registrations per second")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--server", default="", help="extra [server] keys (TOML lines)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):  # the load off the server's CPU, as the others do
        os.sched_setaffinity(0, {int(CLIENT_CPU)})
    with tempfile.TemporaryDirectory() as tmp:
        process, _, api, _ = start_srvdns(Path(tmp), server=args.server)
        try:
            register(api, args.services, args.instances)
            time.sleep(1)
            costs: list[tuple[float, float]] = []
            with Stream(api, args.services, args.rate) as stream:
                time.sleep(1.5)  # connected and warmed up
                for run in range(args.runs):
                    user, system, answered = window(process.pid, stream, args.duration)
                    costs.append((user / answered * 1e6, system / answered * 1e6))
                    print(
                        f"run {run + 1}: {answered / args.duration:.0f}/s  "
                        f"user {costs[-1][0]:.0f} us  sys {costs[-1][1]:.0f} us  "
                        f"total {sum(costs[-1]):.0f} us per registration"
                    )
            if stream.failed:
                print(f"{stream.failed} registrations failed")
            user = statistics.median(c[0] for c in costs)
            system = statistics.median(c[1] for c in costs)
            total = statistics.median(sum(c) for c in costs)
            print(
                f"median of {args.runs}: user {user:.0f} us  sys {system:.0f} us  "
                f"total {total:.0f} us per registration at {args.rate:g}/s"
            )
        finally:
            stop(process)


if __name__ == "__main__":
    main()
