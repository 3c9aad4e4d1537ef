"""srvdns.health.tcpconnect and the TCP checker, against real sockets on loopback."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import generate_latest

from srvdns.config import HealthConfig
from srvdns.health import tcpconnect
from srvdns.health.checkers import Result, TcpChecker
from srvdns.health.loop import HealthLoop
from srvdns.model import Check, CheckKind, CheckSpec, Instance, Status
from srvdns.registry.registry import Registry

INSTANCE = Instance(service="web", id="web-1", address="127.0.0.1", port=1)


def tcp(target: str) -> CheckSpec:
    return CheckSpec(id="tcp", kind=CheckKind.TCP, interval=1, timeout=1, target=target)


def has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def listener(host: str = "127.0.0.1", backlog: int = 64) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen(backlog)
    return sock


def closed_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on (bound and closed again: refused until reused)."""
    with listener(host) as sock:
        return int(sock.getsockname()[1])


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A port whose connects never finish: a listener with a full accept queue drops SYNs."""
    sock = listener(backlog=0)
    port = int(sock.getsockname()[1])
    filler = socket.create_connection(("127.0.0.1", port))
    try:
        yield port
    finally:
        filler.close()
        sock.close()


@pytest.mark.parametrize(
    ("text", "family", "address"),
    [
        ("127.0.0.1:80", socket.AF_INET, ("127.0.0.1", 80)),
        ("[::1]:5432", socket.AF_INET6, ("::1", 5432, 0, 0)),
        ("db.example:5432", None, None),
        ("[fe80::1%lo]:22", None, None),  # a zone needs the resolver
    ],
)
def test_parse_target(text: str, family: int | None, address: tuple[object, ...] | None) -> None:
    target = tcpconnect.parse_target(text)
    assert (target.family, target.address) == (family, address)
    assert target.port == int(text.rsplit(":", 1)[1])


@pytest.mark.parametrize("text", ["10.0.0.1", "10.0.0.1:0", "bad_host:80", "[::1:80"])
def test_parse_target_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=text.replace("[", r"\[")):
        tcpconnect.parse_target(text)


async def test_accepting_target_passes_and_leaves_nothing_open() -> None:
    with listener() as server:
        port = server.getsockname()[1]
        before = open_fds()
        result = await TcpChecker().check(tcp(f"127.0.0.1:{port}"), INSTANCE)
        assert (result.status, result.output) == (
            Status.PASSING,
            f"TCP connect 127.0.0.1:{port}: success",
        )
        assert open_fds() == before
        conn, _ = server.accept()  # the check connected for real, then reset
        with conn:
            conn.settimeout(2)
            with pytest.raises(ConnectionResetError):
                conn.recv(1)


async def test_refused_port_is_critical_with_the_system_text() -> None:
    port = closed_port()
    result = await TcpChecker().check(tcp(f"127.0.0.1:{port}"), INSTANCE)
    assert (result.status, result.output) == (
        Status.CRITICAL,
        f"TCP connect 127.0.0.1:{port}: Connection refused",
    )


async def test_a_blackholed_target_waits_until_cancelled(blackhole: int) -> None:
    before = open_fds()
    target = tcpconnect.parse_target(f"127.0.0.1:{blackhole}")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await tcpconnect.connect(target)
    assert open_fds() == before  # the socket is closed and no longer watched
    port = closed_port()  # the loop still works for the next check
    with pytest.raises(ConnectionRefusedError):
        await tcpconnect.connect(tcpconnect.parse_target(f"127.0.0.1:{port}"))


async def test_a_target_that_answers_later_is_waited_for() -> None:
    """The handshake is not over when connect() returns: the socket's writability ends
    the wait (here the accept queue frees up after 0.1 s)."""
    server = listener(backlog=0)
    port = server.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))

    def drain() -> None:
        server.accept()[0].close()
        filler.close()

    asyncio.get_running_loop().call_later(0.1, drain)
    try:
        async with asyncio.timeout(5):
            await tcpconnect.connect(tcpconnect.parse_target(f"127.0.0.1:{port}"))
    finally:
        server.close()


async def passes_then_refused(bind: str, host: str) -> None:
    """A check of ``host``:port passes while a listener is bound to ``bind``, and is
    refused once it is gone."""
    with listener(bind) as server:
        port = server.getsockname()[1]
        result = await TcpChecker().check(tcp(f"{host}:{port}"), INSTANCE)
        assert (result.status, result.output) == (
            Status.PASSING,
            f"TCP connect {host}:{port}: success",
        )
    refused = await TcpChecker().check(tcp(f"{host}:{port}"), INSTANCE)
    assert (refused.status, refused.output) == (
        Status.CRITICAL,
        f"TCP connect {host}:{port}: Connection refused",
    )


@pytest.mark.skipif(not has_ipv6(), reason="no IPv6 loopback")
async def test_ipv6_loopback_target() -> None:
    await passes_then_refused("::1", "[::1]")


async def test_hostname_target_tries_each_address() -> None:
    """``localhost`` may resolve to ::1 before 127.0.0.1: the listener is on 127.0.0.1
    only, so a refused first address must not fail the check."""
    await passes_then_refused("127.0.0.1", "localhost")


async def test_a_malformed_target_is_critical_not_an_error() -> None:
    result = await TcpChecker().check(tcp("no-port-here"), INSTANCE)
    assert result.status is Status.CRITICAL
    assert result.output.startswith("TCP connect no-port-here: tcp 'no-port-here' must be")


async def until(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "not true in time"
        await asyncio.sleep(0.01)


async def test_the_loop_counts_a_blackholed_target_critical(
    registry: Registry, blackhole: int
) -> None:
    """The real checker under the real loop: the connect never finishes, the loop's
    timeout cancels it, and the result is critical with the timeout in the output."""
    loop = HealthLoop(registry, HealthConfig(jitter=0.0))
    await loop.start()
    try:
        spec = CheckSpec(
            id="tcp",
            kind=CheckKind.TCP,
            interval=0.3,
            timeout=0.1,
            target=f"127.0.0.1:{blackhole}",
            initial_status=Status.PASSING,
        )
        await registry.register(
            Instance(
                service="web",
                id="web-1",
                address="127.0.0.1",
                port=1,
                checks=(Check(spec=spec, status=Status.PASSING),),
            )
        )
        await until(lambda: loop.states("web", "web-1")["tcp"].failures >= 1)
        state = loop.states("web", "web-1")["tcp"]
        assert (state.status, state.output) == (
            Status.CRITICAL,
            f"TCP connect 127.0.0.1:{blackhole}: timed out after 100ms",
        )
        text = generate_latest(loop.metrics.registry).decode()
        assert 'srvdns_health_check_timeouts_total{kind="tcp"} 1.0' in text
        assert 'srvdns_health_checks_total{kind="tcp",status="critical"} 1.0' in text
    finally:
        await loop.stop()


def accepted_is_reset(server: socket.socket) -> None:
    """The next connection ``server`` accepted was reset by the check."""
    conn, _ = server.accept()
    with conn:
        conn.settimeout(2)
        with pytest.raises(ConnectionResetError):
            conn.recv(1)


def test_connector_keeps_one_socket_and_resets_every_connection() -> None:
    connector = tcpconnect.Connector()
    with listener() as server:
        address = server.getsockname()
        before = open_fds()
        for _ in range(5):
            assert connector.begin(socket.AF_INET, address) is None
            accepted_is_reset(server)
        assert open_fds() <= before + 1  # at most the socket it keeps
        connector.close()
        assert open_fds() == before


def test_connector_after_a_refused_connect() -> None:
    connector = tcpconnect.Connector()
    port = closed_port()
    with pytest.raises(ConnectionRefusedError):
        connector.begin(socket.AF_INET, ("127.0.0.1", port))
    with listener() as server:
        assert connector.begin(socket.AF_INET, server.getsockname()) is None
        accepted_is_reset(server)
        with pytest.raises(ConnectionRefusedError):  # a kept socket reports a refusal too
            connector.begin(socket.AF_INET, ("127.0.0.1", port))
        assert connector.begin(socket.AF_INET, server.getsockname()) is None
        accepted_is_reset(server)
    connector.close()


@pytest.mark.skipif(not has_ipv6(), reason="no IPv6 loopback")
def test_connector_keeps_a_socket_per_family() -> None:
    connector = tcpconnect.Connector()
    with listener("::1") as six, listener() as four:
        for _ in range(2):
            assert connector.begin(socket.AF_INET6, six.getsockname()) is None
            accepted_is_reset(six)
            assert connector.begin(socket.AF_INET, four.getsockname()) is None
            accepted_is_reset(four)
    connector.close()


async def test_connector_hands_over_a_handshake_that_goes_on(blackhole: int) -> None:
    connector = tcpconnect.Connector()
    before = open_fds()
    sock = connector.begin(socket.AF_INET, ("127.0.0.1", blackhole))
    assert sock is not None
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await tcpconnect.finish(asyncio.get_running_loop(), sock)
    assert sock.fileno() == -1  # closed, not kept
    assert open_fds() == before
    connector.close()


CHECK_NOW_TARGETS = [
    pytest.param("127.0.0.1", "127.0.0.1", id="ipv4"),
    pytest.param(
        "::1", "[::1]", id="ipv6", marks=pytest.mark.skipif(not has_ipv6(), reason="no IPv6")
    ),
]


@pytest.mark.parametrize(("bind", "host"), CHECK_NOW_TARGETS)
async def test_check_now_gives_what_check_gives(bind: str, host: str) -> None:
    checker = TcpChecker()
    with listener(bind) as server:
        spec = tcp(f"{host}:{server.getsockname()[1]}")
        now = checker.check_now(spec, INSTANCE)
        assert now == await checker.check(spec, INSTANCE)
        assert now is not None
        assert now.status is Status.PASSING
        accepted_is_reset(server)
        accepted_is_reset(server)
    now = checker.check_now(spec, INSTANCE)
    assert now == await checker.check(spec, INSTANCE)
    assert now == Result(Status.CRITICAL, f"TCP connect {spec.target}: Connection refused")
    malformed = tcp("no-port-here")
    assert checker.check_now(malformed, INSTANCE) == await checker.check(malformed, INSTANCE)


def test_check_now_leaves_a_host_name_to_check() -> None:
    assert TcpChecker().check_now(tcp("localhost:80"), INSTANCE) is None


async def test_check_now_waits_for_a_handshake_that_goes_on() -> None:
    """Not over at once: an ``Unfinished`` that ends once the accept queue frees up."""
    server = listener(backlog=0)
    port = server.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))
    try:
        unfinished = TcpChecker().check_now(tcp(f"127.0.0.1:{port}"), INSTANCE)
        assert unfinished is not None
        assert not isinstance(unfinished, Result)

        def drain() -> None:
            server.accept()[0].close()
            filler.close()

        asyncio.get_running_loop().call_later(0.1, drain)
        async with asyncio.timeout(5):
            result = await unfinished.result()
        assert (result.status, result.output) == (
            Status.PASSING,
            f"TCP connect 127.0.0.1:{port}: success",
        )
    finally:
        server.close()


async def test_an_unfinished_check_given_up_closes_its_socket(blackhole: int) -> None:
    before = open_fds()
    unfinished = TcpChecker().check_now(tcp(f"127.0.0.1:{blackhole}"), INSTANCE)
    assert unfinished is not None
    assert not isinstance(unfinished, Result)
    assert open_fds() == before + 1
    unfinished.close()
    assert open_fds() == before
