"""The parent of ``serve --workers N``: starts the workers, restarts one that dies, and
passes SIGTERM / SIGHUP on.

Worker 1 (the primary) starts first and picks the ports (``port = 0`` works); workers
2..N then bind the same ports with SO_REUSEPORT.  The supervisor itself holds no socket
and no database connection, so it has nothing to crash on: it is what systemd or the
shell sees (READY=1 once every worker listens; exit 0 after SIGTERM stopped them all).
A worker that exits while the tree serves is started again with the same ports, after
a pause that doubles while it keeps dying young (a broken database, say).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass

from srvdns import systemd
from srvdns.errors import SrvdnsError
from srvdns.runtime import _start_watchdog
from srvdns.workers.launch import die_with_parent
from srvdns.workers.role import PRIMARY, Report, WorkerRole

log = logging.getLogger("srvdns")

STOP_TIMEOUT = 15.0
"""Seconds workers get to stop after SIGTERM before they are killed."""

YOUNG = 10.0
"""A worker that dies within this many seconds of its start is restarted after a pause."""

FIRST_PAUSE = 0.25
MAX_PAUSE = 30.0

_INHERITED_ONLY_BY_THE_SUPERVISOR = (
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
)
"""systemd talks to the supervisor only (NotifyAccess=main): workers do not see these."""


@dataclass
class _Worker:
    number: int
    process: asyncio.subprocess.Process | None = None
    started: float = 0.0
    young_deaths: int = 0


class Supervisor:
    """Runs ``count`` workers of ``srvdns serve -c config`` until told to stop."""

    def __init__(
        self,
        command: list[str],
        count: int,
        activated: dict[str, list[socket.socket]] | None = None,
    ) -> None:
        """``command`` starts one worker once ``--worker-role ROLE`` is appended;
        ``activated`` holds the sockets systemd passed (socket activation), which every
        worker inherits (the API socket only the primary)."""
        self.command = command
        self.count = count
        activated = activated or {}
        self._dns_fds = tuple(sock.fileno() for sock in activated.get("dns", ()))
        api = activated.get("api", ())
        self._api_fd = api[0].fileno() if api else None
        self._activated = activated  # kept open (and alive) for restarts
        self.stopping = asyncio.Event()
        self.dns_ports: tuple[int, ...] | None = None
        self.api_port: int | None = None
        self._workers = [_Worker(number) for number in range(1, count + 1)]

    async def run(self) -> int:
        """Start every worker, watch them until ``stop``, stop them; the exit status."""
        primary = self._workers[0]
        try:
            report = await self._start(primary)
        except SrvdnsError:
            return await self._exit_status(primary)
        if report is None:
            await self._stop_all()
            return 0
        self.dns_ports, self.api_port = report.dns_ports, report.api_port
        try:
            started = await asyncio.gather(*(self._start(w) for w in self._workers[1:]))
        except SrvdnsError as exc:
            log.error("a dns worker could not start: %s", exc)
            await self._stop_all()
            return 1
        if None not in started:
            log.info(
                "supervising %d workers: %s",
                self.count,
                ", ".join(f"{w.number} (pid {self._pid(w)})" for w in self._workers),
            )
            systemd.notify(f"READY=1\nSTATUS=serving with {self.count} workers")
            watchers = [asyncio.create_task(self._watch(w)) for w in self._workers]
            watchdog = _start_watchdog()
            if watchdog is not None:
                watchers.append(watchdog)
            await self.stopping.wait()
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
        log.info("supervisor: stopping %d workers", self.count)
        systemd.notify("STOPPING=1\nSTATUS=shutting down")
        await self._stop_all()
        return 0

    def stop(self) -> None:
        """SIGTERM / SIGINT: stop every worker, then return from ``run``."""
        self.stopping.set()

    def forward(self, signum: int) -> None:
        """Send ``signum`` (SIGHUP: reload the config) to every running worker."""
        for worker in self._workers:
            if worker.process is not None and worker.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(signum)

    # -- internals --------------------------------------------------------------------

    @staticmethod
    def _pid(worker: _Worker) -> int:
        return 0 if worker.process is None else worker.process.pid

    async def _start(self, worker: _Worker) -> Report | None:
        """Start ``worker`` and wait for its report; None if told to stop meanwhile.

        Raises SrvdnsError when it exits before it listens.
        """
        read_end, write_end = os.pipe()
        role = WorkerRole(
            number=worker.number,
            count=self.count,
            dns_ports=self.dns_ports,
            api_port=self.api_port,
            report_fd=write_end,
            dns_fds=self._dns_fds,
            api_fd=self._api_fd if worker.number == PRIMARY else None,
        )
        inherited = (write_end, *role.dns_fds, *(() if role.api_fd is None else (role.api_fd,)))
        env = {k: v for k, v in os.environ.items() if k not in _INHERITED_ONLY_BY_THE_SUPERVISOR}
        try:
            worker.process = await asyncio.create_subprocess_exec(
                *self.command,
                "--worker-role",
                role.to_json(),
                stdin=asyncio.subprocess.DEVNULL,
                pass_fds=inherited,
                env=env,
                preexec_fn=functools.partial(die_with_parent, os.getpid()),
            )
        finally:
            os.close(write_end)
        worker.started = time.monotonic()
        log.info("supervisor: started worker %d (pid %d)", worker.number, worker.process.pid)
        reading = asyncio.create_task(_read_report(read_end))
        stopping = asyncio.create_task(self.stopping.wait())
        await asyncio.wait((reading, stopping), return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not reading.done():
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
            return None
        return reading.result()

    async def _watch(self, worker: _Worker) -> None:
        """Restart ``worker`` whenever it exits, until the supervisor stops."""
        while True:
            assert worker.process is not None
            status = await worker.process.wait()
            lived = time.monotonic() - worker.started
            worker.young_deaths = worker.young_deaths + 1 if lived < YOUNG else 0
            pause = 0.0
            if worker.young_deaths:
                pause = min(MAX_PAUSE, FIRST_PAUSE * 2 ** (worker.young_deaths - 1))
            log.warning(
                "supervisor: worker %d (pid %d) exited with status %d; restarting in %gs",
                worker.number,
                worker.process.pid,
                status,
                pause,
            )
            await asyncio.sleep(pause)
            try:
                await self._start(worker)
            except SrvdnsError as exc:
                log.warning("supervisor: worker %d did not start: %s", worker.number, exc)

    async def _stop_all(self) -> None:
        """SIGTERM to every worker, SIGKILL to those still running after STOP_TIMEOUT."""
        running = [
            w.process
            for w in self._workers
            if w.process is not None and w.process.returncode is None
        ]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        waiting = [asyncio.create_task(process.wait()) for process in running]
        if not waiting:
            return
        _, late = await asyncio.wait(waiting, timeout=STOP_TIMEOUT)
        if late:
            log.warning("supervisor: %d workers did not stop in time; killing them", len(late))
            for process in running:
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            await asyncio.wait(late)

    async def _exit_status(self, worker: _Worker) -> int:
        """The status to exit with when ``worker`` (the primary) failed to start."""
        assert worker.process is not None
        status = await worker.process.wait()
        await self._stop_all()
        return status if status > 0 else 1


async def _read_report(fd: int) -> Report:
    """The one line a worker writes once it listens; raises SrvdnsError at EOF without."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    pipe = os.fdopen(fd, "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    try:
        return Report.parse(await reader.readline())
    finally:
        transport.close()


def worker_command(args: argparse.Namespace) -> list[str]:
    """The command that starts one worker of this ``srvdns serve``."""
    return [
        sys.executable,
        "-m",
        "srvdns",
        "serve",
        "-c",
        os.path.abspath(args.config),
        "--log-level",
        args.log_level,
        "--log-format",
        getattr(args, "log_format", "text"),
    ]


async def _supervise(
    command: list[str], count: int, activated: dict[str, list[socket.socket]]
) -> int:
    supervisor = Supervisor(command, count, activated)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, supervisor.stop)
    loop.add_signal_handler(signal.SIGHUP, supervisor.forward, signal.SIGHUP)
    return await supervisor.run()


def supervise(args: argparse.Namespace, count: int) -> int:
    """``srvdns serve --workers N`` with N > 1: run the tree; the exit status.

    Sockets from systemd (socket activation) are taken here and shared by the workers.
    """
    try:
        activated = systemd.listen_fds()
    except SrvdnsError as exc:
        print(f"srvdns: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_supervise(worker_command(args), count, activated))
