"""The call policy: failover to other instances, never one twice, breaker reports."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
from client.support import Clock, FakeDns, srv_sections

from srvdns.client.breaker import State
from srvdns.client.discovery import Discovery
from srvdns.client.effects import Effect, Http, arun, run
from srvdns.client.errors import CallError, NoInstancesError
from srvdns.client.http import CallPolicy

A, B, C = "http://10.0.0.1:80", "http://10.0.0.2:80", "http://10.0.0.3:80"


class Backends:
    """Instances behind a fake network: base URL -> status to answer, or an exception."""

    def __init__(self, fake: FakeDns) -> None:
        self.fake = fake
        self.answers: dict[str, int | Exception] = {}
        self.sent: list[str] = []

    def perform(self, effect: Effect) -> Any:
        if not isinstance(effect, Http):
            return self.fake.perform(effect)
        self.sent.append(effect.url)
        base = effect.url.rsplit("/", 1)[0]
        answer = self.answers.get(base, 200)
        request = httpx.Request(effect.method, effect.url)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, request=request)

    async def aperform(self, effect: Effect) -> Any:
        return self.perform(effect)

    def bases(self) -> list[str]:
        return [url.rsplit("/", 1)[0] for url in self.sent]


REFUSED = httpx.ConnectError("connection refused")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def core(clock: Clock) -> Discovery:
    return Discovery(clock=clock, rng=random.Random(11), failure_threshold=2, cooldown=10)


@pytest.fixture
def backends() -> Backends:
    fake = FakeDns()
    fake.set(
        "web.service.local.",
        "SRV",
        srv_sections(
            ("a", 0, 1, 80, "10.0.0.1"), ("b", 0, 1, 80, "10.0.0.2"), ("c", 1, 1, 80, "10.0.0.3")
        ),
    )
    return Backends(fake)


def call(core: Discovery, backends: Backends, attempts: int = 3, **options: Any) -> httpx.Response:
    policy = CallPolicy(core, attempts=attempts)
    return run(policy.call("web", "/hello", "GET", None, options), backends.perform)


@pytest.mark.parametrize("failure", [503, 500, REFUSED, httpx.ReadTimeout("slow")])
def test_a_failure_is_retried_on_another_instance(
    core: Discovery, backends: Backends, failure: int | Exception
) -> None:
    backends.answers[A] = failure
    for _ in range(20):
        backends.sent.clear()
        assert call(core, backends).status_code == 200
        assert backends.bases()[-1] != A
        assert len(set(backends.bases())) == len(backends.sent)


def test_never_the_same_instance_twice_in_one_call(core: Discovery, backends: Backends) -> None:
    backends.answers.update({A: REFUSED, B: REFUSED, C: REFUSED})
    with pytest.raises(CallError, match="no answer from 3 instance") as raised:
        call(core, backends, attempts=10)
    assert sorted(backends.bases()) == [A, B, C]
    assert [url for url, _ in raised.value.attempts] == backends.sent
    assert backends.sent[-1] == C + "/hello"  # the lower priority last


def test_attempts_bound_the_instances_tried(core: Discovery, backends: Backends) -> None:
    backends.answers.update({A: REFUSED, B: REFUSED})
    with pytest.raises(CallError):
        call(core, backends, attempts=2)
    assert sorted(backends.bases()) == [A, B]


def test_the_last_5xx_is_returned_when_every_instance_fails(
    core: Discovery, backends: Backends
) -> None:
    backends.answers.update({A: 502, B: REFUSED, C: 503})
    assert call(core, backends).status_code == 503
    assert len(backends.sent) == 3


def test_a_4xx_is_an_answer(core: Discovery, backends: Backends) -> None:
    backends.answers.update({A: 404, B: 404})
    assert call(core, backends).status_code == 404
    assert len(backends.sent) == 1


def test_failures_open_the_breaker_and_the_instance_is_skipped(
    core: Discovery, backends: Backends, clock: Clock
) -> None:
    backends.answers[A] = REFUSED
    key = ("a.instance.web.service.local.", 80)
    while core.breakers.state(key) is State.CLOSED:
        call(core, backends)
    backends.sent.clear()
    for _ in range(50):
        assert call(core, backends).status_code == 200
    assert A not in backends.bases()
    assert set(backends.bases()) == {B}  # priority 1 is not needed
    clock.advance(10)  # half-open: one call tries A again
    backends.sent.clear()
    for _ in range(50):
        call(core, backends)
    assert backends.bases().count(A) == 1


def test_no_instances(core: Discovery, backends: Backends) -> None:
    policy = CallPolicy(core)
    with pytest.raises(NoInstancesError):
        run(policy.call("nothing", "/", "GET", None, {}), backends.perform)
    assert backends.sent == []


def test_options_reach_the_request(core: Discovery, backends: Backends) -> None:
    seen: list[Http] = []

    def perform(effect: Effect) -> Any:
        if isinstance(effect, Http):
            seen.append(effect)
        return backends.perform(effect)

    policy = CallPolicy(core, scheme="https")
    run(policy.call("web", "api/v1?x=1", "POST", None, {"json": {"a": 1}}), perform)
    assert seen[0].method == "POST"
    assert seen[0].url.startswith("https://10.0.0.")
    assert seen[0].url.endswith(":80/api/v1?x=1")
    assert seen[0].options == {"json": {"a": 1}}


async def test_the_async_driver_runs_the_same_policy(core: Discovery, backends: Backends) -> None:
    backends.answers.update({A: 503, B: REFUSED})
    policy = CallPolicy(core, attempts=3)
    response = await arun(policy.call("web", "/hello", "GET", None, {}), backends.aperform)
    assert response.status_code == 200
    assert sorted(backends.bases()) == [A, B, C]


def test_at_least_one_attempt(core: Discovery) -> None:
    with pytest.raises(ValueError, match="attempt"):
        CallPolicy(core, attempts=0)
