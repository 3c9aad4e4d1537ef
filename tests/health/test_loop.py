"""srvdns.health.loop against a real registry, with checkers the test scripts."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from srvdns.config import HealthConfig, parse
from srvdns.health.checkers import Result, TcpChecker, TtlChecker
from srvdns.health.lag import LagMonitor
from srvdns.health.loop import BATCH, HealthLoop
from srvdns.model import Check, CheckKind, CheckSpec, Instance, Status
from srvdns.registry.registry import Registry
from srvdns.registry.repository import CheckUpdate

P, W, C = Status.PASSING, Status.WARNING, Status.CRITICAL


class Scripted:
    """An HTTP checker whose result per instance id the test sets."""

    kind = CheckKind.HTTP

    def __init__(self) -> None:
        self.results: dict[str, Status] = {}
        self.delay: dict[str, float] = {}
        self.calls: list[tuple[str, float]] = []
        self.finished: list[str] = []
        self.running = 0
        self.most = 0

    async def check(self, spec: CheckSpec, instance: Instance) -> Result:
        self.calls.append((instance.id, time.monotonic()))
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(self.delay.get(instance.id, 0))
            status = self.results.get(instance.id, P)
            self.finished.append(instance.id)
            return Result(status, f"{status} from {instance.id}")
        finally:
            self.running -= 1

    def count(self, instance_id: str) -> int:
        return sum(1 for i, _ in self.calls if i == instance_id)


def spec(**kw: Any) -> CheckSpec:
    kw.setdefault("interval", 0.1)
    kw.setdefault("timeout", 0.1)
    return CheckSpec(id="http", kind=CheckKind.HTTP, target="http://x/", **kw)


def instance(n: int, *checks: CheckSpec, **kw: Any) -> Instance:
    return Instance(
        service="web",
        id=f"web-{n}",
        address=f"10.0.0.{n}",
        port=80,
        checks=tuple(Check(spec=s, status=s.initial_status) for s in checks),
        **kw,
    )


def stored(registry: Registry, n: int) -> Instance | None:
    view = registry.holder.current.get_service("web")
    if view is None:
        return None
    return next((i for i in view.instances if i.id == f"web-{n}"), None)


def status(registry: Registry, n: int) -> Status | None:
    found = stored(registry, n)
    return None if found is None else found.effective_status(time.time())


async def until(predicate: Callable[[], object], timeout: float = 3.0) -> float:
    """Poll every 10 ms; return how long it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not true within {timeout}s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


class Writes:
    """Counts the health loop's registry writes."""

    def __init__(self, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = registry.apply_health

        async def counted(*args: Any, **kw: Any) -> Any:
            self.count += 1
            return await original(*args, **kw)

        monkeypatch.setattr(registry, "apply_health", counted)


@pytest.fixture
def checker() -> Scripted:
    return Scripted()


@pytest.fixture
async def start(registry: Registry, checker: Scripted) -> AsyncIterator[Callable[..., Any]]:
    started: list[HealthLoop] = []

    async def _start(config: HealthConfig | None = None, **kw: Any) -> HealthLoop:
        kw.setdefault("checkers", {CheckKind.HTTP: checker, CheckKind.TTL: TtlChecker()})
        loop = HealthLoop(registry, config or HealthConfig(jitter=0.0), **kw)
        await loop.start()
        started.append(loop)
        return loop

    yield _start
    for loop in started:
        await loop.stop()


async def test_a_new_instance_is_checked_at_once_and_written_once(
    registry, checker, start, monkeypatch
) -> None:
    writes = Writes(registry, monkeypatch)
    await start()
    await registry.register(instance(1, spec(interval=0.05)))
    assert status(registry, 1) is C  # critical until the first result
    took = await until(lambda: status(registry, 1) is P)
    assert took < 0.2
    index = registry.holder.current.index
    await until(lambda: checker.count("web-1") >= 6)
    assert writes.count == 1  # results that change nothing write nothing
    assert registry.holder.current.index == index


async def test_dead_instance_leaves_within_interval_plus_timeout(registry, checker, start) -> None:
    await start()
    await registry.register(instance(1, spec(interval=0.2, timeout=0.1)))
    await until(lambda: status(registry, 1) is P)
    await asyncio.sleep(0.05)
    checker.results["web-1"] = C
    took = await until(lambda: status(registry, 1) is C)
    assert took <= 0.2 + 0.1 + 0.05
    checker.results["web-1"] = P
    await until(lambda: status(registry, 1) is P)  # two passes: success_before_passing=2


async def test_a_check_that_overruns_its_timeout_is_critical(registry, checker, start) -> None:
    loop = await start()
    checker.delay["web-1"] = 5
    await registry.register(instance(1, spec(interval=0.1, timeout=0.05, initial_status=P)))
    await until(lambda: status(registry, 1) is C)
    (check,) = stored(registry, 1).checks
    assert check.output == "HTTP GET http://x/: timed out after 50ms"
    text = generate_latest(loop.metrics.registry).decode()
    assert 'srvdns_health_check_timeouts_total{kind="http"}' in text


async def test_a_stalled_event_loop_does_not_make_instances_critical(
    registry, checker, start
) -> None:
    class Stalled(LagMonitor):
        def stall_since(self, started: float) -> float:
            return 10.0

    loop = await start(lag=Stalled())
    checker.delay["web-1"] = 5
    await registry.register(instance(1, spec(interval=0.05, timeout=0.05, initial_status=P)))
    await until(lambda: loop.metrics.inconclusive._value.get() >= 3)
    assert status(registry, 1) is P


async def test_concurrency_bound_queues_instead_of_dropping(registry, checker, start) -> None:
    await start(HealthConfig(concurrency=2, jitter=0.0))
    for n in range(1, 11):
        checker.delay[f"web-{n}"] = 0.03
        await registry.register(instance(n, spec(interval=5, timeout=1)))
    await until(lambda: all(status(registry, n) is P for n in range(1, 11)))
    assert checker.most == 2
    assert sorted({i for i, _ in checker.calls}) == sorted(f"web-{n}" for n in range(1, 11))


async def test_a_flapping_instance_does_not_churn(registry, checker, start, monkeypatch) -> None:
    await start()
    await registry.register(instance(1, spec(interval=0.03, success_before_passing=2)))
    await until(lambda: status(registry, 1) is P)
    writes = Writes(registry, monkeypatch)
    flips = 0

    async def flap() -> None:
        nonlocal flips
        while True:  # flip after each result (not at a start: that check may see the flip)
            seen = checker.finished.count("web-1")
            await until(lambda seen=seen: checker.finished.count("web-1") > seen)
            checker.results["web-1"] = C if checker.results.get("web-1", P) is P else P
            flips += 1

    task = asyncio.create_task(flap())
    await until(lambda: flips >= 12)
    task.cancel()
    # out at the first failure, and never back: no pass is followed by a second one
    assert status(registry, 1) is C
    assert writes.count == 1


async def test_warning_is_answered_with_the_warning_weight(registry, checker, start) -> None:
    await start()
    await registry.register(instance(1, spec(), weight=10, warning_weight=3))
    await until(lambda: status(registry, 1) is P)
    checker.results["web-1"] = W
    await until(lambda: status(registry, 1) is W)
    assert stored(registry, 1).srv_weight == 3


async def test_deregister_critical_after(registry, checker, start, caplog) -> None:
    await start()
    checker.results["web-1"] = C
    started = time.monotonic()
    await registry.register(instance(1, spec(interval=0.05, deregister_critical_after=0.2)))
    await registry.register(instance(2, spec(interval=0.05, deregister_critical_after=0.2)))
    await until(lambda: stored(registry, 1) is None)
    assert time.monotonic() - started >= 0.2
    assert status(registry, 2) is P
    assert "deregistered web/web-1" in caplog.text


async def test_panic_stops_deregistration(registry, checker, start, caplog) -> None:
    caplog.set_level(logging.WARNING)
    zones = parse({"zone": [{"name": "service.local", "panic_threshold": 0.5}]}).zone
    loop = await start(zones=zones)
    for n in (1, 2, 3):
        await registry.register(instance(n, spec(interval=0.05, deregister_critical_after=0.1)))
    await until(lambda: all(status(registry, n) is P for n in (1, 2, 3)))
    assert loop.panic_zones("web") == []
    checker.results.update({"web-1": C, "web-2": C})
    await until(lambda: loop.panic_zones("web") == ["service.local"])
    assert "PANIC: 2 of 3 instances of web are critical" in caplog.text
    await asyncio.sleep(0.3)  # well past deregister_critical_after
    assert stored(registry, 1) is not None
    assert stored(registry, 2) is not None
    assert "is in panic mode: not deregistering" in caplog.text
    checker.results["web-2"] = P
    await until(lambda: stored(registry, 1) is None)  # one of three critical: no panic
    assert "panic over" in caplog.text


async def test_ttl_lease_is_a_check(registry, start) -> None:
    loop = await start()
    await registry.register(
        Instance(service="web", id="web-1", address="10.0.0.1", port=80, ttl=0.3)
    )
    assert status(registry, 1) is P
    (check,) = stored(registry, 1).checks
    assert (check.spec.kind, check.status) == (CheckKind.TTL, P)
    for _ in range(2):
        # the lapse leaves DNS at once (the lease); the loop records it soon after
        await until(lambda: stored(registry, 1).checks[0].status is C, timeout=2)
        assert stored(registry, 1).status is C
        assert stored(registry, 1).checks[0].output.startswith("TTL expired")
        renewed = await registry.heartbeat("web", "web-1")
        assert renewed.status is P
        assert renewed.checks[0].status is P
        assert loop.states("web", "web-1")["ttl"].status is P


async def test_a_warning_heartbeat_holds_until_the_lease_lapses(registry, start) -> None:
    """Consul's ``warn``: warning (still answered) until the lease lapses, then the loop
    writes critical, which bumps the index so that blocking queries wake."""
    loop = await start()
    await registry.register(
        Instance(service="web", id="web-1", address="10.0.0.1", port=80, ttl=1.0)
    )
    warned = await registry.heartbeat("web", "web-1", status=W, output="slow disk")
    assert (warned.status, warned.checks[0].status, warned.checks[0].output) == (
        W,
        W,
        "slow disk",
    )
    await asyncio.sleep(0.1)
    assert stored(registry, 1).checks[0].status is W  # the loop leaves it alone
    assert loop.states("web", "web-1")["ttl"].status is W
    index = registry.holder.current.index
    await until(lambda: stored(registry, 1).checks[0].status is C, timeout=4)
    assert stored(registry, 1).checks[0].output.startswith("TTL expired")
    assert registry.holder.current.index > index


async def test_a_failed_ttl_check_is_deregistered_after_its_time(registry, start) -> None:
    """A ``fail`` renews the lease but is critical: deregister_critical_after counts from it,
    even while the client keeps failing the check within the lease."""
    await start()
    lease = CheckSpec(
        id="ttl",
        kind=CheckKind.TTL,
        interval=5,
        timeout=0,
        ttl=5,
        initial_status=P,
        deregister_critical_after=0.2,
    )
    await registry.register(instance(1, lease))
    await registry.heartbeat("web", "web-1", status=C, output="broken")
    took = await until(lambda: stored(registry, 1) is None, timeout=3)
    assert took < 1.5


async def test_a_lapse_seen_before_a_heartbeat_is_not_written_after_it(registry) -> None:
    await registry.register(
        Instance(service="web", id="web-1", address="10.0.0.1", port=80, ttl=0.05)
    )
    await asyncio.sleep(0.06)
    (seen,) = stored(registry, 1).checks
    lapsed = replace(seen, status=C, last_change=time.time())
    await registry.heartbeat("web", "web-1")  # lands first
    await registry.apply_health([CheckUpdate("web", "web-1", lapsed)])
    assert stored(registry, 1).checks[0].status is P


async def test_changed_definition_is_checked_at_once(registry, checker, start) -> None:
    await start()
    await registry.register(instance(1, spec(interval=60)))
    await until(lambda: checker.count("web-1") == 1)
    await asyncio.sleep(0.05)
    await registry.register(instance(1, spec(interval=60)))  # same definition: same schedule
    await asyncio.sleep(0.05)
    assert checker.count("web-1") == 1
    assert status(registry, 1) is P  # and the same state
    await registry.register(instance(1, spec(interval=60, timeout=0.5)))
    await until(lambda: checker.count("web-1") == 2)
    await registry.deregister("web", "web-1")
    assert status(registry, 1) is None


async def test_first_runs_are_spread_over_the_interval(registry, checker, start) -> None:
    for n in range(1, 41):
        await registry.register(instance(n, spec(interval=0.5)))
    began = time.monotonic()
    await start(rng=random.Random(3))
    await until(lambda: len({i for i, _ in checker.calls}) == 40)
    offsets = sorted(at - began for _, at in checker.calls[:40])
    assert offsets[-1] <= 0.5 + 0.05
    assert offsets[10] > 0.05
    assert offsets[30] < 0.45


async def test_restart_resumes_without_marking_anything_critical(
    tmp_path: Path, checker: Scripted, monkeypatch
) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    checkers = {CheckKind.HTTP: checker}
    first = Registry.open(url)
    loop = HealthLoop(first, HealthConfig(jitter=0.0), checkers=checkers)
    await loop.start()
    for n in (1, 2):
        await first.register(instance(n, spec(interval=0.05)))
    await until(lambda: checker.count("web-1") >= 5 and checker.count("web-2") >= 5)
    live = loop.states("web", "web-1")["http"].successes
    await loop.stop()
    first.close()

    second = Registry.open(url)
    try:
        (check,) = stored(second, 1).checks
        assert check.status is P
        assert check.successes >= live
        writes = Writes(second, monkeypatch)
        resumed = HealthLoop(second, HealthConfig(jitter=0.0), checkers=checkers)
        before = len(checker.calls)
        await resumed.start()
        assert status(second, 1) is P
        assert status(second, 2) is P
        await until(lambda: len(checker.calls) >= before + 6)
        assert writes.count == 0
        await resumed.stop()
    finally:
        second.close()


async def test_metrics(registry, checker, start) -> None:
    loop = await start()
    await registry.register(instance(1, spec(interval=0.05)))
    await until(lambda: checker.count("web-1") >= 3)
    text = generate_latest(loop.metrics.registry).decode()
    assert 'srvdns_health_checks_total{kind="http",status="passing"}' in text
    assert "srvdns_event_loop_lag_seconds " in text
    assert "srvdns_health_checks_scheduled 1.0" in text
    assert 'srvdns_health_status_changes_total{status="passing"} 1.0' in text


def sample(loop: HealthLoop, name: str) -> float:
    """One unlabelled sample of a scrape of the loop's metrics."""
    for line in generate_latest(loop.metrics.registry).decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not scraped")


async def test_a_scrape_shows_running_queued_and_lag_as_they_are(registry, checker, start) -> None:
    """These gauges are read when scraped, not set per check: a scrape must still show
    the live values."""
    loop = await start(HealthConfig(jitter=0.0, concurrency=1))
    for n in (1, 2, 3):
        checker.delay[f"web-{n}"] = 0.3
        await registry.register(instance(n, spec(interval=30, timeout=5)))
    await until(lambda: sample(loop, "srvdns_health_checks_queued") == 2)
    assert sample(loop, "srvdns_health_checks_running") == 1
    assert checker.running == 1
    await until(lambda: len(checker.calls) == 3)
    # the third waited for two checks of 0.3 s each
    assert sample(loop, "srvdns_health_schedule_lag_seconds") >= 0.5
    await until(lambda: len(checker.finished) == 3)
    await until(lambda: sample(loop, "srvdns_health_checks_running") == 0)
    assert sample(loop, "srvdns_health_checks_queued") == 0
    assert sample(loop, "srvdns_event_loop_lag_max_seconds") >= 0


class AllAtOnce(random.Random):
    """Spreads nothing: every check loaded at start is due at once."""

    def uniform(self, a: float, b: float) -> float:
        return a


async def test_a_burst_larger_than_a_batch_all_runs(registry, checker, start) -> None:
    """More checks due at once than one pass of the event loop starts (``BATCH``): the
    rest start in the next passes, none waits for the next interval."""
    count = BATCH * 2 + 5
    for n in range(1, count + 1):
        await registry.register(instance(n, spec(interval=30, timeout=5)))
    await start(rng=AllAtOnce())
    await until(lambda: len(checker.finished) == count, timeout=2)  # the interval is 30 s
    assert {i for i, _ in checker.calls} == {f"web-{n}" for n in range(1, count + 1)}


class Held:
    """A check ``check_now`` started that waits until ``release`` is set."""

    def __init__(self, release: asyncio.Event) -> None:
        self.release = release
        self.closed = False

    async def result(self) -> Result:
        await self.release.wait()
        return Result(P, "released")

    def close(self) -> None:
        self.closed = True


class Instant:
    """A TCP checker whose checks end at once (``check_now``), but for the instances in
    ``held``, which wait for ``release``; ``check`` is never to run."""

    kind = CheckKind.TCP

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.held: dict[str, Held] = {}
        self.calls: list[str] = []
        self.broken = False

    async def check(self, spec: CheckSpec, instance: Instance) -> Result:
        raise AssertionError("a check that starts at once went to check()")

    def check_now(self, spec: CheckSpec, instance: Instance) -> Result | Held:
        self.calls.append(instance.id)
        if self.broken:
            raise RuntimeError("broken checker")
        if instance.id in self.held:
            self.held[instance.id] = Held(self.release)
            return self.held[instance.id]
        return Result(P, f"up {instance.id}")


def tcp_spec(**kw: Any) -> CheckSpec:
    kw.setdefault("interval", 0.05)
    kw.setdefault("timeout", 5)
    kw.setdefault("target", "127.0.0.1:1")
    return CheckSpec(id="tcp", kind=CheckKind.TCP, **kw)


def spawns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The instance ids of the checks the loop runs in a task, in order."""
    spawned: list[str] = []
    original = HealthLoop._spawn

    def counted(self: HealthLoop, entry: Any, *args: Any) -> None:
        spawned.append(entry.instance_id)
        original(self, entry, *args)

    monkeypatch.setattr(HealthLoop, "_spawn", counted)
    return spawned


async def test_checks_that_end_at_once_run_without_a_task(registry, start, monkeypatch) -> None:
    instant = Instant()
    spawned = spawns(monkeypatch)
    loop = await start(checkers={CheckKind.TCP: instant})
    await registry.register(instance(1, tcp_spec()))
    await until(lambda: loop.states("web", "web-1")["tcp"].successes >= 3)
    assert status(registry, 1) is P
    assert stored(registry, 1).checks[0].output == "up web-1"
    assert spawned == []
    assert sample(loop, "srvdns_health_checks_running") == 0
    text = generate_latest(loop.metrics.registry).decode()
    assert 'srvdns_health_checks_total{kind="tcp",status="passing"}' in text


async def test_a_check_started_at_once_that_waits_takes_a_slot(registry, start) -> None:
    """A check that must wait runs in a task and counts against the concurrency; the
    checks that end at once queue behind it, and all run (more than a ``BATCH``) once
    it ends."""
    instant = Instant()
    instant.held["web-0"] = Held(instant.release)
    loop = await start(HealthConfig(jitter=0.0, concurrency=1), checkers={CheckKind.TCP: instant})
    await registry.register(instance(0, tcp_spec(interval=30)))
    await until(lambda: sample(loop, "srvdns_health_checks_running") == 1)
    count = BATCH + 8
    for n in range(1, count + 1):
        await registry.register(instance(n, tcp_spec(interval=30)))
    await until(lambda: sample(loop, "srvdns_health_checks_queued") == count)
    assert instant.calls == ["web-0"]
    instant.release.set()
    await until(lambda: all(status(registry, n) is P for n in range(count + 1)))
    assert sorted(instant.calls) == sorted(f"web-{n}" for n in range(count + 1))
    assert instant.held["web-0"].closed
    assert sample(loop, "srvdns_health_checks_queued") == 0
    assert sample(loop, "srvdns_health_checks_running") == 0


async def test_stopping_closes_a_check_that_waits(registry, start) -> None:
    instant = Instant()
    instant.held["web-1"] = Held(instant.release)
    loop = await start(checkers={CheckKind.TCP: instant})
    await registry.register(instance(1, tcp_spec(timeout=30)))
    await until(lambda: sample(loop, "srvdns_health_checks_running") == 1)
    await loop.stop()
    assert instant.held["web-1"].closed


async def test_a_check_now_that_raises_is_an_internal_error(registry, start, caplog) -> None:
    instant = Instant()
    instant.broken = True
    await start(checkers={CheckKind.TCP: instant})
    with caplog.at_level(logging.ERROR):
        await registry.register(instance(1, tcp_spec(initial_status=P)))
        await until(lambda: status(registry, 1) is C)
        await until(lambda: len(instant.calls) >= 3)  # and it is run again
    (check,) = stored(registry, 1).checks
    assert check.output == "TCP connect 127.0.0.1:1: internal error"
    assert "broken checker" in caplog.text


async def test_the_real_tcp_checker_under_the_loop_resets_each_connection(registry, start) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        loop = await start(checkers={CheckKind.TCP: TcpChecker()})
        await registry.register(instance(1, tcp_spec(target=f"127.0.0.1:{port}")))
        await until(lambda: status(registry, 1) is P)
        await until(lambda: loop.states("web", "web-1")["tcp"].successes >= 3)
        server.setblocking(False)
        for _ in range(3):
            conn, _ = await asyncio.get_running_loop().sock_accept(server)
            with conn:
                conn.settimeout(2)
                with pytest.raises(ConnectionResetError):
                    conn.recv(1)
        (check,) = stored(registry, 1).checks
        assert check.output == f"TCP connect 127.0.0.1:{port}: success"


async def test_a_host_name_target_is_checked_in_a_task(registry, start, monkeypatch) -> None:
    """``check_now`` cannot resolve a name: the checker's ``check`` runs it, in a task."""
    spawned = spawns(monkeypatch)
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        loop = await start(checkers={CheckKind.TCP: TcpChecker()})
        await registry.register(instance(1, tcp_spec(target=f"localhost:{port}")))
        await until(lambda: loop.states("web", "web-1")["tcp"].successes >= 2)
    assert status(registry, 1) is P
    assert stored(registry, 1).checks[0].output == f"TCP connect localhost:{port}: success"
    assert spawned[:2] == ["web-1", "web-1"]


async def test_checks_run_at_once_keep_every_other_check_on_time(registry, start) -> None:
    """Checks run inside the timer callback plan their next runs there: the timer must
    still wake for the next due check of any instance, not only for theirs."""
    instant = Instant()
    times: dict[str, list[float]] = {}

    def check_now(spec: CheckSpec, found: Instance) -> Result:
        times.setdefault(found.id, []).append(time.monotonic())
        return Result(P, "up")

    instant.check_now = check_now  # type: ignore[method-assign]
    await start(checkers={CheckKind.TCP: instant})
    for n in range(1, 6):  # five checks, due 40 ms apart
        await registry.register(instance(n, tcp_spec(interval=0.2)))
        await asyncio.sleep(0.04)
    await asyncio.sleep(1.0)
    for n in range(1, 6):
        runs = times[f"web-{n}"]
        gaps = [b - a for a, b in itertools.pairwise(runs)]
        assert len(runs) >= 4
        assert max(gaps) < 0.2 + 0.1, (n, gaps)  # the interval, a grid step and slack


async def test_a_burst_of_checks_that_end_at_once_all_runs(registry, start) -> None:
    """``BATCH`` per pass holds for checks run inside the timer callback too: the rest
    run in the next passes, none waits for the next interval."""
    instant = Instant()
    count = BATCH * 2 + 5
    for n in range(1, count + 1):
        await registry.register(instance(n, tcp_spec(interval=30)))
    await start(rng=AllAtOnce(), checkers={CheckKind.TCP: instant})
    await until(lambda: len(instant.calls) == count, timeout=2)  # the interval is 30 s
    assert sorted(instant.calls) == sorted(f"web-{n}" for n in range(1, count + 1))


def passing_results(loop: HealthLoop, kind: str) -> float:
    """``srvdns_health_checks_total`` of ``kind`` and status passing, as scraped."""
    prefix = f'srvdns_health_checks_total{{kind="{kind}",status="passing"}} '
    for line in generate_latest(loop.metrics.registry).decode().splitlines():
        if line.startswith(prefix):
            return float(line.split()[1])
    return 0.0


async def test_every_result_is_counted_live_in_the_metrics_and_at_shutdown(
    tmp_path: Path, checker: Scripted
) -> None:
    """Results that repeat the last one are counted, not built into the check one by
    one: the live state, a scrape and the counters saved at shutdown still show every
    one, for checks run at once and checks run in a task alike."""
    registry = Registry.open(f"sqlite:///{tmp_path / 'r.db'}")
    instant = Instant()
    loop = HealthLoop(
        registry,
        HealthConfig(jitter=0.0),
        checkers={CheckKind.TCP: instant, CheckKind.HTTP: checker},
    )
    try:
        await loop.start()
        await registry.register(instance(1, tcp_spec(interval=0.02)))
        await registry.register(instance(2, spec(interval=0.02)))
        await until(lambda: len(instant.calls) >= 8 and len(checker.finished) >= 8)
        for _ in range(3):  # between two awaits no result is half recorded
            assert loop.states("web", "web-1")["tcp"].successes == len(instant.calls)
            assert loop.states("web", "web-2")["http"].successes == len(checker.finished)
            assert passing_results(loop, "tcp") == len(instant.calls)
            assert passing_results(loop, "http") == len(checker.finished)
            await asyncio.sleep(0.03)
        await loop.stop()
    finally:
        registry.close()
    saved = Registry.open(f"sqlite:///{tmp_path / 'r.db'}")  # the catalog as read at start
    try:
        assert stored(saved, 1).checks[0].successes == len(instant.calls)
        assert stored(saved, 2).checks[0].successes == len(checker.finished)
    finally:
        saved.close()
