"""The client library against a real srvdns and real HTTP servers on loopback: registration
with heartbeats, discovery, failover and breakers, in both the blocking and asyncio
flavours."""

from __future__ import annotations

import asyncio
import random
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dns.rcode
import httpx
import pytest
from client.support import Clock
from e2e.harness import SrvdnsProcess, wait_for

from srvdns.client import (
    AsyncClient,
    AsyncResolver,
    Client,
    DiscoveryError,
    NoInstancesError,
    Registration,
    Resolver,
    State,
)


class Backend:
    """An HTTP server on 127.0.0.1 answering every GET with ``status`` and its name."""

    def __init__(self, name: str, status: int = 200) -> None:
        self.name = name
        self.status = status
        self.hits = 0
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                backend.hits += 1
                body = backend.name.encode()
                self.send_response(backend.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.alive = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """Stop serving and close the port: connections are refused from now on."""
        if self.alive:
            self.alive = False
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=5)


@pytest.fixture
def backends() -> Iterator[Callable[..., Backend]]:
    started: list[Backend] = []

    def _start(name: str, status: int = 200) -> Backend:
        backend = Backend(name, status)
        started.append(backend)
        return backend

    yield _start
    for backend in started:
        backend.kill()


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rcode(srvdns: SrvdnsProcess, qname: str = "web.service.local") -> int:
    return srvdns.query(qname, "SRV").rcode()


def register(srvdns: SrvdnsProcess, instance: str, port: int, **options: Any) -> Registration:
    """A Registration of web/<instance> on 127.0.0.1:<port>, without a lease by default."""
    options.setdefault("ttl", None)
    return Registration("web", instance, address="127.0.0.1", port=port, api=srvdns.api, **options)


def nameservers(srvdns: SrvdnsProcess) -> list[tuple[str, int]]:
    return [(srvdns.host, srvdns.port)]


def base_url(request: httpx.Request) -> str:
    return f"{request.url.scheme}://{request.url.host}:{request.url.port}"


def recording_http(sent: list[str]) -> httpx.Client:
    """An HTTP client that appends the base URL of every request it sends to ``sent``."""
    return httpx.Client(event_hooks={"request": [lambda r: sent.append(base_url(r))]}, timeout=2)


def recording_async_http(sent: list[str]) -> httpx.AsyncClient:
    async def record(request: httpx.Request) -> None:
        sent.append(base_url(request))

    return httpx.AsyncClient(event_hooks={"request": [record]}, timeout=2)


# registration


def test_heartbeats_keep_the_instance_past_its_ttl_and_exit_deregisters(
    srvdns: SrvdnsProcess,
) -> None:
    with register(srvdns, "web-1", 8080, ttl="1s") as registration:
        assert registration.registered
        deadline = time.monotonic() + 2.5  # two and a half leases
        while time.monotonic() < deadline:
            assert rcode(srvdns) == dns.rcode.NOERROR
            time.sleep(0.1)
    assert rcode(srvdns) == dns.rcode.NXDOMAIN
    with srvdns.http() as http:
        assert http.get("/v1/services/web").status_code == 404


async def test_async_heartbeats_keep_the_instance_past_its_ttl_and_exit_deregisters(
    srvdns: SrvdnsProcess,
) -> None:
    async with register(srvdns, "web-1", 8080, ttl="1s") as registration:
        assert registration.registered
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            assert rcode(srvdns) == dns.rcode.NOERROR
            await asyncio.sleep(0.1)
    assert rcode(srvdns) == dns.rcode.NXDOMAIN


def forget(srvdns: SrvdnsProcess, instance: str = "web-1") -> None:
    """Deregister behind the Registration's back."""
    with srvdns.http() as http:
        assert http.delete(f"/v1/services/web/instances/{instance}").status_code == 204
    assert rcode(srvdns) == dns.rcode.NXDOMAIN


def test_registers_again_after_srvdns_forgot(
    srvdns: SrvdnsProcess, caplog: pytest.LogCaptureFixture
) -> None:
    with register(srvdns, "web-1", 8080, ttl="1s"):
        forget(srvdns)
        wait_for(lambda: rcode(srvdns) == dns.rcode.NOERROR, timeout=3)
    assert rcode(srvdns) == dns.rcode.NXDOMAIN
    assert "srvdns forgot /v1/services/web/instances/web-1" in caplog.text


async def test_async_registers_again_after_srvdns_forgot(srvdns: SrvdnsProcess) -> None:
    async with register(srvdns, "web-1", 8080, ttl="1s"):
        forget(srvdns)
        for _ in range(30):
            await asyncio.sleep(0.1)
            if rcode(srvdns) == dns.rcode.NOERROR:
                break
        assert rcode(srvdns) == dns.rcode.NOERROR
    assert rcode(srvdns) == dns.rcode.NXDOMAIN


def test_registration_retries_until_srvdns_is_reachable(
    launch: Callable[..., SrvdnsProcess], tmp_path: Path
) -> None:
    port = closed_port()
    config = tmp_path / "srvdns.toml"
    config.write_text(
        "[server]\n"
        'dns_listen = ["127.0.0.1:0"]\n'
        f'api_listen = "127.0.0.1:{port}"\n'
        'database = "sqlite:///registry.db"\n'
        '[[zone]]\nname = "service.local"\n'
    )
    api = f"http://127.0.0.1:{port}"
    with Registration("web", "web-1", address="127.0.0.1", port=80, ttl="1s", api=api) as reg:
        assert not reg.registered  # nothing listens yet: retried in the background
        time.sleep(0.5)
        srvdns = launch(config=config)
        wait_for(lambda: reg.registered, timeout=3)
        assert rcode(srvdns) == dns.rcode.NOERROR
    assert rcode(srvdns) == dns.rcode.NXDOMAIN


class Recorder(list[int]):
    """A signal handler that records the signals it gets."""

    def __call__(self, signum: int, frame: object) -> None:
        self.append(signum)


@pytest.fixture
def sigterm_recorder() -> Iterator[Recorder]:
    """SIGTERM handled by a recorder (the "previous" handler) for the test's duration."""
    recorder = Recorder()
    before = signal.signal(signal.SIGTERM, recorder)
    yield recorder
    signal.signal(signal.SIGTERM, before)


def test_sigterm_deregisters_then_reaches_the_previous_handler(
    srvdns: SrvdnsProcess, sigterm_recorder: Recorder
) -> None:
    with register(srvdns, "web-1", 8080, ttl="1s", deregister_on_signal=True) as registration:
        assert rcode(srvdns) == dns.rcode.NOERROR
        signal.raise_signal(signal.SIGTERM)
        assert sigterm_recorder == [signal.SIGTERM]
        assert rcode(srvdns) == dns.rcode.NXDOMAIN
        assert not registration.registered
        time.sleep(0.5)  # past a heartbeat: it does not come back
        assert rcode(srvdns) == dns.rcode.NXDOMAIN
    assert signal.getsignal(signal.SIGTERM) is sigterm_recorder  # back in place


async def test_async_sigterm_deregisters_then_reaches_the_previous_handler(
    srvdns: SrvdnsProcess, sigterm_recorder: Recorder
) -> None:
    async with register(srvdns, "web-1", 8080, ttl="1s", deregister_on_signal=True):
        signal.raise_signal(signal.SIGTERM)
        assert sigterm_recorder == [signal.SIGTERM]
        assert rcode(srvdns) == dns.rcode.NXDOMAIN
        await asyncio.sleep(0.5)
        assert rcode(srvdns) == dns.rcode.NXDOMAIN


# discovery


def test_discovery_returns_the_instances_with_weights_respected(srvdns: SrvdnsProcess) -> None:
    with register(srvdns, "light", 8001, weight=1), register(srvdns, "heavy", 8002, weight=3):
        resolver = Resolver(nameservers(srvdns), rng=random.Random(2782))
        found = resolver.resolve("web")
        assert sorted((i.port, i.weight) for i in found) == [(8001, 1), (8002, 3)]
        assert {i.address for i in found} == {"127.0.0.1"}
        counts = Counter(resolver.discover("web").port for _ in range(4000))
    expected = {8001: 1000, 8002: 3000}
    statistic = sum((counts[p] - e) ** 2 / e for p, e in expected.items())
    assert statistic < 10.828, counts  # chi-square, 1 degree of freedom, p = 0.001


async def test_async_discovery_returns_the_instances_with_weights_respected(
    srvdns: SrvdnsProcess,
) -> None:
    async with register(srvdns, "light", 8001, weight=1), register(srvdns, "heavy", 8002, weight=3):
        resolver = AsyncResolver(nameservers(srvdns), rng=random.Random(2782))
        found = await resolver.resolve("web")
        assert sorted((i.port, i.weight) for i in found) == [(8001, 1), (8002, 3)]
        counts = Counter([(await resolver.discover("web")).port for _ in range(4000)])
    expected = {8001: 1000, 8002: 3000}
    statistic = sum((counts[p] - e) ** 2 / e for p, e in expected.items())
    assert statistic < 10.828, counts


def test_tags_and_no_instances(srvdns: SrvdnsProcess) -> None:
    resolver = Resolver(nameservers(srvdns))
    with register(srvdns, "blue", 8001, tags=["blue"]), register(srvdns, "green", 8002):
        assert [i.port for i in resolver.resolve("web", tag="blue")] == [8001]
    with pytest.raises(NoInstancesError):
        resolver.discover("nothing")
    assert resolver.resolve("nothing") == []


def test_a_stale_answer_while_srvdns_is_down_for_a_bounded_time(
    srvdns: SrvdnsProcess,
) -> None:
    clock = Clock(time.monotonic())
    resolver = Resolver(nameservers(srvdns), clock=clock, timeout=0.3, stale_for=30)
    with register(srvdns, "web-1", 8001):
        assert resolver.discover("web").port == 8001
    srvdns.stop()
    clock.advance(5 + 29)  # the answer (TTL 5) expired 29 s ago
    assert resolver.discover("web").port == 8001
    clock.advance(1)
    with pytest.raises(DiscoveryError):
        resolver.discover("web")


# calls


@pytest.mark.parametrize("failure", ["503", "refused"])
def test_call_retries_on_another_instance(
    srvdns: SrvdnsProcess, backends: Callable[..., Backend], failure: str
) -> None:
    good = backends("good")
    bad_port = backends("bad", 503).port if failure == "503" else closed_port()
    sent: list[str] = []
    with ExitStack() as stack:
        stack.enter_context(register(srvdns, "bad", bad_port, priority=0))
        stack.enter_context(register(srvdns, "good", good.port, priority=1))
        client = stack.enter_context(
            Client(Resolver(nameservers(srvdns)), http=recording_http(sent))
        )
        response = client.call("web", "/hello")
    assert response.status_code == 200
    assert response.text == "good"
    assert sent == [f"http://127.0.0.1:{bad_port}", good.url]


@pytest.mark.parametrize("failure", ["503", "refused"])
async def test_async_call_retries_on_another_instance(
    srvdns: SrvdnsProcess, backends: Callable[..., Backend], failure: str
) -> None:
    good = backends("good")
    bad_port = backends("bad", 503).port if failure == "503" else closed_port()
    sent: list[str] = []
    async with (
        register(srvdns, "bad", bad_port, priority=0),
        register(srvdns, "good", good.port, priority=1),
        AsyncClient(AsyncResolver(nameservers(srvdns)), http=recording_async_http(sent)) as client,
    ):
        response = await client.call("web", "/hello")
    assert (response.status_code, response.text) == (200, "good")
    assert sent == [f"http://127.0.0.1:{bad_port}", good.url]


def test_a_killed_instance_is_skipped_once_its_breaker_opens(
    srvdns: SrvdnsProcess, backends: Callable[..., Backend]
) -> None:
    alive, doomed = backends("alive"), backends("doomed")
    sent: list[str] = []
    resolver = Resolver(nameservers(srvdns), failure_threshold=2, cooldown=60, rng=random.Random(1))
    with (
        register(srvdns, "alive", alive.port),
        register(srvdns, "doomed", doomed.port),
        Client(resolver, http=recording_http(sent)) as client,
    ):
        assert {client.call("web", "/").text for _ in range(20)} == {"alive", "doomed"}
        doomed.kill()
        sent.clear()
        replies = [client.call("web", "/").text for _ in range(40)]
        key = next(i.key for i in resolver.lookup("web") if i.port == doomed.port)
        assert resolver.core.breakers.state(key) is State.OPEN
    assert set(replies) == {"alive"}  # every call still answered
    assert sent.count(doomed.url) == 2  # tried until the breaker opened, then skipped
    assert sent.count(alive.url) == 40


async def test_async_a_killed_instance_is_skipped_once_its_breaker_opens(
    srvdns: SrvdnsProcess, backends: Callable[..., Backend]
) -> None:
    alive, doomed = backends("alive"), backends("doomed")
    sent: list[str] = []
    resolver = AsyncResolver(
        nameservers(srvdns), failure_threshold=2, cooldown=60, rng=random.Random(1)
    )
    async with (
        register(srvdns, "alive", alive.port),
        register(srvdns, "doomed", doomed.port),
        AsyncClient(resolver, http=recording_async_http(sent)) as client,
    ):
        doomed.kill()
        replies = [(await client.call("web", "/")).text for _ in range(40)]
    assert set(replies) == {"alive"}
    assert sent.count(doomed.url) == 2
