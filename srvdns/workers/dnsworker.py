"""A DNS-only worker of ``serve --workers N``: answers from a followed catalog, writes nothing.

It binds the primary's DNS addresses with SO_REUSEPORT (or serves the sockets systemd
passed to the supervisor, shared by every worker), fills its catalog from the
database and keeps it current with a ``ChangeFollower`` (every ``follow_interval``, and
at once when the primary kicks it after a write: ``kick``).
Answers come from the same handler as the primary's, with the same clock, so lease
expiry and TTL caps are identical.  SIGHUP reloads the config's answer settings (zones,
TTLs, forwarding); SIGTERM stops it.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from srvdns.config import Config
from srvdns.errors import SrvdnsError
from srvdns.registry.follower import ChangeFollower
from srvdns.runtime import (
    _adopt_dns_sockets,
    _format_hostport,
    _HandlerSlot,
    load_for_serving,
    make_forwarder,
    make_handler,
)
from srvdns.workers.kick import listen_for_kicks
from srvdns.workers.role import WorkerRole

log = logging.getLogger("srvdns")


class DnsWorker:
    """One DNS-only worker process: follower, listeners, reloads."""

    def __init__(self, config: Config, role: WorkerRole) -> None:
        self.config = config
        self.role = role
        self.stopping = asyncio.Event()
        self._slot: _HandlerSlot | None = None
        self._follower: ChangeFollower | None = None

    async def run(self) -> None:
        """Load the catalog, listen, follow changes until ``stop``."""
        from srvdns.nameserver import server as dns_server

        settings = self.config.server
        logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
        follower = await asyncio.to_thread(
            ChangeFollower.open, self.config.database_url(), interval=settings.follow_interval
        )
        self._follower = follower
        try:
            slot = _HandlerSlot(
                make_handler(self.config, follower.holder, self.role),
                make_forwarder(self.config),
            )
            activated = self.role.activated().get("dns")
            if activated:  # systemd's sockets, shared with the other workers
                dns = await _adopt_dns_sockets(slot, activated, settings)
            else:
                dns = await dns_server.start(
                    slot,
                    self.role.dns_listen(settings.dns_listen),
                    idle_timeout=settings.tcp_idle_timeout,
                    max_connections=settings.tcp_max_connections,
                    reuse_port=True,
                    rrl=settings.rrl,
                )
            kicks = listen_for_kicks(self.role, follower.wake)
            try:
                follower.start()
                self._slot = slot
                for host, port in dns.addresses:
                    log.info(
                        "dns worker %d listening on %s (udp+tcp), following the registry",
                        self.role.number,
                        _format_hostport(host, port),
                    )
                self.role.report([port for _, port in dns.addresses])
                await self.stopping.wait()
                self._slot = None
            finally:
                if kicks is not None:
                    kicks.close()
                await follower.stop()
                await dns.close()
        finally:
            await asyncio.to_thread(follower.close)

    def stop(self) -> None:
        """Ask ``run`` to return."""
        self.stopping.set()

    async def reload(self) -> None:
        """SIGHUP: apply the config file's answer settings; a bad file changes nothing."""
        if self._slot is None or self._follower is None:
            return
        try:
            config, _, _ = await asyncio.to_thread(load_for_serving, str(self.config.path))
            handler = make_handler(config, self._follower.holder, self.role)
            forwarder = make_forwarder(config)
        except SrvdnsError as exc:
            log.error("dns worker %d: reload failed, still serving: %s", self.role.number, exc)
            return
        self._slot.swap(handler, forwarder)
        self.config = config
        log.info("dns worker %d: reloaded %s", self.role.number, config.path)


async def serve(config: Config, role: WorkerRole) -> None:
    """Run a DNS worker with its signal handlers until SIGTERM/SIGINT."""
    worker = DnsWorker(config, role)
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task[None]] = set()

    def reload() -> None:
        task = asyncio.create_task(worker.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.stop)
    loop.add_signal_handler(signal.SIGHUP, reload)
    await worker.run()
