"""Builds the pieces of ``srvdns serve``, runs them on one loop and stops them in order."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from srvdns import systemd
from srvdns.collection import collect_while_serving
from srvdns.config import Config, ListenAddress, ServerConfig, load
from srvdns.errors import ConfigError, SrvdnsError
from srvdns.nameserver.server import no_delay

if TYPE_CHECKING:
    from srvdns.catalog import CatalogHolder
    from srvdns.health.loop import HealthLoop
    from srvdns.hiddenprimary import HiddenPrimary
    from srvdns.nameserver.forward import Forwarder
    from srvdns.nameserver.handler import Handler
    from srvdns.nameserver.querylog import QueryLog
    from srvdns.nameserver.server import DnsServers
    from srvdns.nameserver.stats import DnsStats
    from srvdns.registry.registry import Registry
    from srvdns.tokens import Tokens
    from srvdns.workers.role import WorkerRole

log = logging.getLogger("srvdns")

SHUTDOWN_API_TIMEOUT = 5.0
"""Seconds in-flight API requests get to finish after SIGTERM."""


def _fail(message: str, status: int) -> int:
    print(f"srvdns: {message}", file=sys.stderr)
    return status


def load_for_serving(path: str) -> tuple[Config, str | None, Tokens | None]:
    """Load the config, the API token and every accepted token (both files read once, here),
    and refuse configurations that are unsafe to serve.

    Raises ConfigError: an API reachable from other machines must require a token.
    """
    from srvdns.api.tls import server_context

    config = load(path)
    token = config.api_token()
    tokens = config.api_tokens()
    api = config.server.api_listen
    config.tsig_secrets()  # a TSIG secret file that cannot be read stops the start
    if tokens is None and not api.is_loopback:
        raise ConfigError(
            f"{config.path}: server.api_listen: {api} is reachable from other machines; "
            "set server.api_tokens_file or server.api_token_file so that writes need a token"
        )
    server_context(config)
    return config, token, tokens


def _bind_api_socket(address: ListenAddress) -> socket.socket:
    """A listening TCP socket for the API; port 0 picks a free port."""
    host = address.host or "::"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    no_delay(sock)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if not address.host else 1)
    sock.bind((host, address.port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _format_hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _node_address(host: str) -> str:
    """The Consul node address the API shows: the API's own, 127.0.0.1 for a wildcard."""
    return "127.0.0.1" if host in ("0.0.0.0", "::") else host


class _ApiServer(uvicorn.Server):
    """uvicorn on srvdns's loop; signals stay with srvdns, which stops the API itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _HandlerSlot:
    """The DNS listeners' handler, replaceable while they serve (a config reload).

    ``handle`` is the current handler's bound method itself, so a query pays no extra
    call; the listeners look it up for every query (or batch of datagrams), so a swap
    takes effect at once and no query is lost.
    """

    def __init__(self, handler: Handler, forwarder: Forwarder | None = None) -> None:
        self.handle: Callable[..., bytes | None] = handler.handle
        self.forwarder = forwarder
        """Where the listeners forward queries outside every zone (None: nowhere)."""
        self.query_log: QueryLog | None = None
        """Where the listeners log each query (None: off)."""
        self.transfers: Any = None
        """What answers zone transfers and signed queries (None: no zone is transferred)."""

    def swap(self, handler: Handler, forwarder: Forwarder | None = None) -> None:
        """Answer every later query with ``handler`` (and ``forwarder``)."""
        self.handle = handler.handle
        self.forwarder = forwarder


_RESTART_ONLY = (
    "dns_listen",
    "api_listen",
    "database",
    "tcp_idle_timeout",
    "tcp_max_connections",
    "heartbeat_flush_interval",
    "workers",
    "follow_interval",
    "node_name",
    "check_lease",
    "durability",
    "api_tls_cert",
    "api_tls_key",
    "rrl",
)
"""``[server]`` keys a reload cannot apply: they take effect at the next start."""


def make_handler(
    config: Config,
    holder: CatalogHolder,
    worker: WorkerRole | None = None,
    *,
    stats: DnsStats | None = None,
) -> Handler:
    """The DNS handler for ``config``, answering from ``holder`` (as worker ``worker``),
    counting in ``stats``."""
    from srvdns.nameserver.handler import Handler

    settings = config.server
    identity = settings.chaos_identity()
    return Handler(
        config.zone,
        holder,
        edns_udp_size=settings.edns_udp_size,
        udp_answer_limit=settings.udp_answer_limit,
        version=settings.chaos_version(),
        identity=identity if worker is None else worker.identity(identity),
        stats=stats,
    )


def make_forwarder(config: Config, *, stats: DnsStats | None = None) -> Forwarder | None:
    """The forwarder of queries outside the zones, or None when ``[forward]`` is off;
    it counts in ``stats``."""
    from srvdns.nameserver.forward import Forwarder

    settings = config.forward
    if settings is None:
        return None
    return Forwarder(
        [(upstream.host, upstream.port) for upstream in settings.upstreams],
        [zone.name for zone in config.zone],
        timeout=settings.timeout,
        strategy=settings.strategy,
        cache_size=settings.cache_size,
        allow_from=settings.allow_from,
        edns_udp_size=config.server.edns_udp_size,
        stats=stats,
    )


@dataclass
class Server:
    """A running srvdns: the registry, the health loop, the DNS listeners and the API, on
    one loop; started in that order and stopped in the reverse."""

    config: Config
    token: str | None
    tokens: Tokens | None = None
    """Every accepted API token (``load_for_serving``); None: writes are open."""
    worker: WorkerRole | None = None
    """Set when this is the primary of ``serve --workers N`` (see ``srvdns.workers``)."""
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _reloading: asyncio.Lock = field(default_factory=asyncio.Lock)
    _registry: Registry | None = None
    _health: HealthLoop | None = None
    _slot: _HandlerSlot | None = None
    _app: Any = None
    query_log: bool = False
    """``--query-log``: log queries whatever ``[server] query_log`` says."""
    _dns_stats: DnsStats | None = None
    _api: uvicorn.Server | None = None
    _primary: HiddenPrimary | None = None

    def _handler(self, config: Config) -> Handler:
        assert self._registry is not None
        return make_handler(config, self._registry.holder, self.worker, stats=self._dns_stats)

    def _forwarder(self, config: Config) -> Forwarder | None:
        return make_forwarder(config, stats=self._dns_stats)

    def _query_log(self, config: Config) -> QueryLog | None:
        """The query log the listeners write to, or None when it is off."""
        from srvdns.nameserver.querylog import QueryLog

        return QueryLog() if self.query_log or config.server.query_log else None

    async def run(self) -> None:
        """Start everything, wait for SIGTERM/SIGINT, then stop in order."""
        from prometheus_client import CollectorRegistry, GCCollector, ProcessCollector

        from srvdns import cluster
        from srvdns.api.app import create_app
        from srvdns.api.fastpath import HeartbeatFastPath
        from srvdns.api.fastregister import RegistrationFastPath
        from srvdns.api.heldwrites import held_writes_protocol
        from srvdns.health.loop import HealthLoop
        from srvdns.health.metrics import HealthMetrics
        from srvdns.nameserver import server as dns_server
        from srvdns.nameserver.metrics import DnsCollector
        from srvdns.nameserver.stats import DnsStats
        from srvdns.registry.metrics import RegistryCollector
        from srvdns.registry.registry import Registry

        activated = systemd.listen_fds() if self.worker is None else self.worker.activated()
        url = self.config.database_url()
        registry = await asyncio.to_thread(
            Registry.open,
            url,
            upgrade=url.startswith("sqlite"),
            heartbeat_flush=cluster.heartbeat_flush(
                url, self.config.server.heartbeat_flush_interval
            ),
            durability=self.config.server.durability,
        )
        self._registry = registry
        if self.worker is not None:  # the other workers poll at once after each write
            from srvdns.workers.kick import kick_followers

            kick_followers(registry, self.worker)
        health: HealthLoop | None = None
        node: cluster.Node | None = None
        try:
            await asyncio.to_thread(
                registry.sync_static, self.config.static_services(), self.config.health
            )
            if cluster.is_shared(url):  # other nodes write to the same registry
                node = await cluster.Node.join(registry, url, self.config.server)
            metrics = CollectorRegistry()
            GCCollector(registry=metrics)  # python_gc_*: see srvdns.collection
            ProcessCollector(registry=metrics)  # process_*: CPU, resident memory, files
            self._dns_stats = DnsStats()
            metrics.register(DnsCollector(self._dns_stats))
            metrics.register(RegistryCollector(registry.holder, registry.stats, registry.now))
            health = HealthLoop(
                registry,
                self.config.health,
                self.config.zone,
                metrics=HealthMetrics(metrics),
                owner=None if node is None else node.owns,
            )
            await health.start()
            self._health = health
            settings = self.config.server
            slot = _HandlerSlot(self._handler(self.config), self._forwarder(self.config))
            slot.query_log = self._query_log(self.config)
            from srvdns.hiddenprimary import HiddenPrimary

            primary = self._primary = HiddenPrimary(registry)
            await primary.activate(primary.prepare(self.config))
            slot.transfers = primary.transfers
            # What start-up loaded (config, catalog) lives as long as the process: keep
            # it out of every later garbage collection, whose pauses are event loop lag
            # (~100 ms per full collection with 6,000 checked instances, ~5 ms without).
            # Done before DNS listens, so that the first query does not wait for it
            # (~0.4 s with 100,000 static instances).
            gc.collect()
            gc.freeze()
            collect_while_serving()  # serve_command paused it for the start-up
            if "dns" in activated:
                dns = await _adopt_dns_sockets(slot, activated["dns"], settings, self._dns_stats)
            else:
                dns = await dns_server.start(
                    slot,
                    settings.dns_listen
                    if self.worker is None
                    else self.worker.dns_listen(settings.dns_listen),
                    idle_timeout=settings.tcp_idle_timeout,
                    max_connections=settings.tcp_max_connections,
                    stats=self._dns_stats,
                    reuse_port=self.worker is not None,
                    rrl=settings.rrl,
                )
            watchdog: asyncio.Task[None] | None = None
            try:
                for host, port in dns.addresses:
                    log.info("dns listening on %s (udp+tcp)", _format_hostport(host, port))
                if "api" in activated:
                    api_socket = no_delay(activated["api"][0])
                else:
                    api_address = self.config.server.api_listen
                    if self.worker is not None:
                        api_address = self.worker.api_listen(api_address)
                    api_socket = _bind_api_socket(api_address)
                host, port = api_socket.getsockname()[:2]
                app = create_app(
                    registry,
                    token=self.token,
                    reserved_names=self.config.reserved_labels,
                    health_defaults=self.config.health,
                    health=health,
                    metrics=metrics,
                    node_address=_node_address(host),
                )
                # The DNS listeners serve and the API socket listens already: a request
                # answered from here on (with httptools, even one in the socket's backlog
                # while uvicorn starts) may call the listeners bound.
                app.state.listeners = "ok"
                app.state.zones, app.state.dns_addresses = self.config.zone, list(dns.addresses)
                app.state.tokens = self.tokens
                api = _ApiServer(
                    uvicorn.Config(
                        RegistrationFastPath(HeartbeatFastPath(app)),
                        http=held_writes_protocol(),  # an answer in one send
                        log_config=None,
                        access_log=False,
                        lifespan="off",
                        server_header=False,
                        ssl_certfile=_tls_path(self.config, settings.api_tls_cert),
                        ssl_keyfile=_tls_path(self.config, settings.api_tls_key),
                    )
                )
                api_task = asyncio.create_task(api.serve(sockets=[api_socket]))
                while not api.started and not api_task.done():
                    await asyncio.sleep(0.01)
                if api_task.done():
                    api_task.result()
                scheme = "https" if settings.api_tls_cert is not None else "http"
                log.info("api listening on %s://%s", scheme, _format_hostport(host, port))
                self._api = api
                log.info(
                    "serving %s with %d services",
                    ", ".join(z.name for z in self.config.zone),
                    len(registry.holder.current.services),
                )
                self._slot, self._app = slot, app
                if self.worker is not None:
                    self.worker.report([p for _, p in dns.addresses], port)
                gc.freeze()  # and what the listeners and the API added since (no collection)
                systemd.notify(
                    f"READY=1\nSTATUS=serving {len(registry.holder.current.services)} services"
                )
                watchdog = _start_watchdog()
                await self.stopping.wait()
                log.info("shutting down")
                systemd.notify("STOPPING=1\nSTATUS=shutting down")
                self._slot = None  # no reloads from here on
                app.state.listeners = "shutting down"
                registry.stop_blocking()  # pending blocking queries answer now
                api.should_exit = True
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(api_task, timeout=SHUTDOWN_API_TIMEOUT)
            finally:
                if watchdog is not None:
                    watchdog.cancel()
                await dns.close()
        finally:
            if self._primary is not None:
                await self._primary.stop()
            if health is not None:
                await health.stop()
            if node is not None:
                await node.leave()
            await asyncio.to_thread(registry.close)

    def stop(self) -> None:
        """Ask ``run`` to shut down."""
        self.stopping.set()

    async def reload(self) -> None:
        """SIGHUP: load the config file again and apply it without dropping a query.

        Zones, TTLs, the other answer settings, static services, reserved names, the API
        token and the health defaults of new checks change; the listeners, the database
        and the TCP limits need a restart (a warning says so).  A config that does not
        load, or whose static services cannot be stored, is refused with a logged error
        and the running one stays.
        """
        async with self._reloading:
            if self._slot is None or self._registry is None:
                log.warning("reload ignored: srvdns is starting or stopping")
                return
            path = str(self.config.path)
            systemd.notify(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")
            try:
                config, token, tokens = await asyncio.to_thread(load_for_serving, path)
                handler = self._handler(config)
                forwarder = self._forwarder(config)
                transfers = None if self._primary is None else self._primary.prepare(config)
                await self._registry.resync_static(config.static_services(), config.health)
            except SrvdnsError as exc:
                log.error("reload failed, still serving the previous config: %s", exc)
                systemd.notify("READY=1\nSTATUS=reload failed; serving the previous config")
                return
            fixed = [
                f"server.{key}"
                for key in _RESTART_ONLY
                if getattr(config.server, key) != getattr(self.config.server, key)
            ]
            if fixed:
                log.warning("reload: %s change only at the next start", ", ".join(fixed))
            self._slot.swap(handler, forwarder)
            self._slot.query_log = self._query_log(config)
            if self._primary is not None and transfers is not None:
                await self._primary.activate(transfers)
                self._slot.transfers = self._primary.transfers
            state = self._app.state
            state.reserved_names = frozenset(name.lower() for name in config.reserved_labels)
            state.token = token
            state.tokens = tokens
            self._reload_tls(config)
            state.health_defaults = config.health
            state.zones = config.zone
            if self._health is not None:
                self._health.set_zones(config.zone)
            self.config, self.token, self.tokens = config, token, tokens
            log.info(
                "reloaded %s: serving %s with %d static services",
                path,
                ", ".join(z.name for z in config.zone),
                len(config.static_services()),
            )
            systemd.notify("READY=1\nSTATUS=reloaded")

    def _reload_tls(self, config: Config) -> None:
        """Load the API certificate and key files again (renewed certificates at the same
        paths), for connections accepted from now on; load_for_serving checked them."""
        from srvdns.api.tls import load_chain

        context = None if self._api is None else self._api.config.ssl
        if context is None or config.server.api_tls_cert != self.config.server.api_tls_cert:
            return
        if config.server.api_tls_key != self.config.server.api_tls_key:
            return
        try:
            load_chain(context, config)
        except ConfigError as exc:
            log.error("reload: the API keeps its previous certificate: %s", exc)


def _tls_path(config: Config, file: Path | None) -> str | None:
    return None if file is None else str(config.relative(file))


async def _adopt_dns_sockets(
    handler: _HandlerSlot,
    sockets: list[socket.socket],
    settings: ServerConfig,
    stats: DnsStats | None = None,
) -> DnsServers:
    """DNS listeners on the sockets systemd passed (socket activation) instead of
    binding ``dns_listen``."""
    from srvdns.nameserver.server import DnsServers

    servers = DnsServers(
        handler,
        idle_timeout=settings.tcp_idle_timeout,
        max_connections=settings.tcp_max_connections,
        stats=stats,
        rrl=settings.rrl,
    )
    try:
        # DnsServers has no public way yet to serve sockets bound elsewhere.
        await servers._listen(sockets)
    except BaseException:
        await servers.close()
        raise
    for sock in sockets:
        host, port = sock.getsockname()[:2]
        if (host, port) not in servers.addresses:
            servers.addresses.append((host, port))
    return servers


def _start_watchdog() -> asyncio.Task[None] | None:
    """Ping systemd's watchdog (``WATCHDOG=1``) at half its timeout while the loop runs;
    None when the watchdog is off.  A stalled event loop stops the pings."""
    interval = systemd.watchdog_interval()
    if interval is None:
        return None

    async def ping() -> None:
        while True:
            systemd.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    return asyncio.create_task(ping())


async def _serve(
    config: Config,
    token: str | None,
    tokens: Tokens | None,
    worker: WorkerRole | None = None,
    *,
    query_log: bool = False,
) -> None:
    server = Server(config, token, tokens, worker=worker, query_log=query_log)
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task[None]] = set()

    def reload() -> None:
        task = asyncio.create_task(server.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, server.stop)
    loop.add_signal_handler(signal.SIGHUP, reload)
    await server.run()


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop when it is installed, else on asyncio's default loop."""
    run: Callable[[Coroutine[Any, Any, None]], None] = asyncio.run
    try:
        import uvloop
    except ImportError:
        pass  # run outside the handler, or every later traceback chains to it
    else:
        run = uvloop.run
    run(main)


def serve_command(args: argparse.Namespace) -> int:
    """``srvdns serve -c FILE``."""
    from srvdns import logs

    logs.configure(args.log_level, getattr(args, "log_format", "text"))
    if args.log_level != "debug":
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # Start-up builds millions of objects that live as long as the process (config,
    # static set, catalog): automatic collections would walk them again and again, ~40%
    # of the start-up's time with 100,000 static instances.  Server.run collects once,
    # freezes what is left and turns collection back on when it serves.
    gc.disable()
    try:
        config, token, tokens = load_for_serving(args.config)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    from srvdns.workers import launch

    try:
        worker = launch.role_of(args)
    except SrvdnsError as exc:
        return _fail(str(exc), 2)
    count = getattr(args, "workers", None) or config.server.workers
    if worker is None and count > 1:
        transferred = [z.name for z in config.zone if z.transfer_to or z.notify]
        if transferred:
            # One process keeps the transfer journal and sends NOTIFY; a secondary's
            # TCP connection could reach any worker, and only that one can answer it.
            return _fail(
                f"{config.path}: server.workers: zone transfers ({', '.join(transferred)}: "
                "transfer_to, notify) need a single worker; use workers = 1 on a hidden "
                "primary and let the secondaries serve the load",
                2,
            )
        gc.enable()
        return launch.supervise(args, count)
    try:
        if worker is None or worker.is_primary:
            query_log = getattr(args, "query_log", False)
            _run_loop(_serve(config, token, tokens, worker, query_log=query_log))
        else:
            collect_while_serving()
            _run_loop(launch.serve_dns_worker(config, worker))
    except OSError as exc:
        return _fail(f"cannot start: {exc}", 1)
    except SrvdnsError as exc:
        return _fail(str(exc), 1)
    return 0


def check_config_command(args: argparse.Namespace) -> int:
    """``srvdns check-config -c FILE``: validate and summarise, exit 2 on any problem."""
    try:
        config, _, _ = load_for_serving(args.config)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    services = config.static_services()
    instances = sum(len(s.instances) for s in services)
    zones = ", ".join(z.name for z in config.zone)
    print(
        f"{args.config}: ok: zones {zones}; {len(services)} static services, "
        f"{instances} static instances"
    )
    return 0


def db_upgrade_command(args: argparse.Namespace) -> int:
    """``srvdns db upgrade``: apply the schema migrations to the configured database."""
    from srvdns.registry import migrate

    url = args.database
    if url is None:
        if args.config is None:
            return _fail("db upgrade needs --config FILE or --database URL", 2)
        try:
            url = load(args.config).database_url()
        except ConfigError as exc:
            return _fail(str(exc), 2)
    try:
        migrate.upgrade(url)
    except SrvdnsError as exc:
        return _fail(str(exc), 1)
    print("database schema is up to date")
    return 0
