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
microseconds), the event loop thread's share of it (``loop``, from
``/proc/PID/task/PID/schedstat``) and the median of the runs.  Measures CPU, not throughput:
the machine may be shared.

    python bench/lone_registration_cost.py --baseline /tmp/old

also runs the srvdns package found in ``/tmp/old`` (say ``git archive <commit> | tar -x
-C /tmp/old``) side by side, each with its own stream, and prints both and their
ratio: on a busy machine the CPU an operation takes moves with the load, and two
servers measured at the same time see the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).parent))
from dns_throughput import CLIENT_CPU, churn_requests, register, start_srvdns, stop

CONNECTIONS = 4


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def loop_time(pid: int) -> float:
    """CPU seconds of process ``pid``'s main thread (its event loop) so far, to the
    nanosecond (``schedstat``, not the clock ticks of ``stat``)."""
    return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[0]) / 1e9


class Stream:
    """Registrations at ``rate`` per second over keep-alive connections, from a thread,
    each sent once the previous answer on its connection arrived; counts the answers."""

    def __init__(self, api: str, services: int, rate: float) -> None:
        url = urlsplit(api)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.requests = churn_requests(url.netloc, services)
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


class Server:
    """One ``srvdns serve`` under the stream: its process, stream and CPU per run."""

    def __init__(self, name: str, directory: Path, args: argparse.Namespace, source: str) -> None:
        self.name = name
        # ``source``: the srvdns package of another tree (an older commit, say)
        env = {"PYTHONPATH": source} if source else None
        self.process, _, self.api, _ = start_srvdns(directory, server=args.server, env=env)
        self.stream = Stream(self.api, args.services, args.rate)
        self.costs: list[tuple[float, float]] = []
        self.loop_costs: list[float] = []
        self._start: tuple[float, float, float, int] = (0.0, 0.0, 0.0, 0)

    def begin(self) -> None:
        pid = self.process.pid
        self._start = (*cpu_times(pid), loop_time(pid), self.stream.answered)

    def end(self) -> str:
        """Note the run's CPU per registration since ``begin``; a line about it."""
        user0, sys0, loop0, done = self._start
        user1, sys1 = cpu_times(self.process.pid)
        loop1 = loop_time(self.process.pid)
        answered = self.stream.answered - done
        self.costs.append(((user1 - user0) / answered * 1e6, (sys1 - sys0) / answered * 1e6))
        self.loop_costs.append((loop1 - loop0) / answered * 1e6)
        user, system = self.costs[-1]
        return (
            f"{self.name}: {answered} answers  user {user:.0f} us  sys {system:.0f} us  "
            f"total {user + system:.0f} us (loop {self.loop_costs[-1]:.0f} us) per registration"
        )

    def medians(self) -> tuple[float, float, float]:
        """User, sys and total CPU per registration: the medians of the runs."""
        return (
            statistics.median(c[0] for c in self.costs),
            statistics.median(c[1] for c in self.costs),
            statistics.median(sum(c) for c in self.costs),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="registrations per second")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--server", default="", help="extra [server] keys (TOML lines)")
    parser.add_argument(
        "--baseline",
        default="",
        help="a directory holding another tree's srvdns package: run it side by side, "
        "under the same load and the same noise, and print both",
    )
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):  # the load off the server's CPU, as the others do
        os.sched_setaffinity(0, {int(CLIENT_CPU)})
    with contextlib.ExitStack() as stack:
        servers = []
        for name, source in (("baseline", args.baseline), ("srvdns", "")):
            if name == "baseline" and not source:
                continue
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            server = Server(name, directory, args, source)
            stack.callback(stop, server.process)
            servers.append(server)
        for server in servers:
            register(server.api, args.services, args.instances)
        time.sleep(1)
        for server in servers:
            stack.enter_context(server.stream)
        time.sleep(1.5)  # connected and warmed up
        for run in range(args.runs):
            for server in servers:
                server.begin()
            time.sleep(args.duration)
            lines = [server.end() for server in servers]
            print(f"run {run + 1}: " + ";  ".join(lines), flush=True)
        for server in servers:
            server.stream.__exit__()
            if server.stream.failed:
                print(f"{server.name}: {server.stream.failed} registrations failed")
            user, system, total = server.medians()
            print(
                f"{server.name}, median of {args.runs}: user {user:.0f} us  sys {system:.0f} us  "
                f"total {total:.0f} us (loop {statistics.median(server.loop_costs):.0f} us) "
                f"per registration at {args.rate:g}/s"
            )
        if len(servers) == 2:
            ratio = servers[0].medians()[2] / servers[1].medians()[2]
            print(f"baseline / srvdns: {ratio:.2f}")


if __name__ == "__main__":
    main()
