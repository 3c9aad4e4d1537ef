"""The registration policy (``Lease``), driven by a scripted API."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

from srvdns.client.backoff import Backoff
from srvdns.client.effects import Effect, Http, Sleep, arun, run
from srvdns.client.errors import ClientError, RegistrationError
from srvdns.client.registration import Lease, lease_seconds, registration_body

PATH = "/v1/services/web/instances/web-1"
BODY = {"address": "127.0.0.1", "port": 8080, "ttl": "3s"}


class Api:
    """Answers the lease's requests from a script of statuses or exceptions (200 once the
    script is used up) and records every effect; ``stop_after`` effects, it closes the
    lease."""

    def __init__(self, lease: Lease, *script: int | Exception, stop_after: int = 50) -> None:
        self.lease = lease
        self.script = list(script)
        self.effects: list[Effect] = []
        self.stop_after = stop_after

    def perform(self, effect: Effect) -> Any:
        self.effects.append(effect)
        if len(self.effects) >= self.stop_after:
            self.lease.close()
        if isinstance(effect, Sleep):
            return None
        assert isinstance(effect, Http)
        answer = self.script.pop(0) if self.script else 200
        if isinstance(answer, Exception):
            raise answer
        body = {"error": "no such instance"} if answer == 404 else {}
        return httpx.Response(answer, json=body, request=httpx.Request(effect.method, effect.url))

    async def aperform(self, effect: Effect) -> Any:
        return self.perform(effect)

    def steps(self) -> list[str]:
        """The effects as text: "sleep 1.0", "PUT /heartbeat", "PUT", "DELETE"."""
        out = []
        for effect in self.effects:
            if isinstance(effect, Sleep):
                out.append(f"sleep {effect.seconds}")
            else:
                out.append(f"{effect.method}{effect.url.removeprefix(PATH)}".replace("/", " /"))
        return out


REFUSED = httpx.ConnectError("refused")


def lease(ttl: float | None = 3.0, jitter: float = 0.0) -> Lease:
    backoff = Backoff(base=0.1, factor=2, cap=30, jitter=jitter)
    return Lease(PATH, BODY, ttl=ttl, backoff=backoff, rng=random.Random(1))


def test_register_sends_the_body() -> None:
    keeper = lease()
    api = Api(keeper, 201)
    assert run(keeper.register(strict=True), api.perform) is True
    assert keeper.registered
    effect = api.effects[0]
    assert isinstance(effect, Http)
    assert (effect.method, effect.url, effect.options) == ("PUT", PATH, {"json": BODY})


@pytest.mark.parametrize("status", [400, 401, 403, 422])
def test_a_refused_first_registration_raises(status: int) -> None:
    keeper = lease()
    with pytest.raises(RegistrationError) as raised:
        run(keeper.register(strict=True), Api(keeper, status).perform)
    assert raised.value.status == status
    assert not keeper.registered


@pytest.mark.parametrize("failure", [REFUSED, 503])
def test_an_unreachable_srvdns_is_retried_later(failure: int | Exception) -> None:
    keeper = lease()
    assert run(keeper.register(strict=True), Api(keeper, failure).perform) is False
    assert keeper.failures == 1


def test_heartbeats_every_third_of_the_ttl() -> None:
    keeper = lease(ttl=3.0)
    api = Api(keeper, 201, stop_after=7)
    run(keeper.register(), api.perform)
    run(keeper.keep_alive(), api.perform)
    assert api.steps() == ["PUT"] + ["sleep 1.0", "PUT /heartbeat"] * 3


def test_without_a_lease_it_only_waits_to_be_closed() -> None:
    keeper = lease(ttl=None)
    api = Api(keeper, 201, stop_after=2)
    run(keeper.register(), api.perform)
    run(keeper.keep_alive(), api.perform)
    assert api.steps() == ["PUT", "sleep None"]


def test_failures_back_off_exponentially_capped_by_the_interval() -> None:
    keeper = lease(ttl=3.0)
    failures = [REFUSED, 503, REFUSED, 500, REFUSED, REFUSED]
    api = Api(keeper, 201, *failures, 200, stop_after=2 + 2 * len(failures) + 3)
    run(keeper.register(), api.perform)
    run(keeper.keep_alive(), api.perform)
    sleeps = [float(s.split()[1]) for s in api.steps() if s.startswith("sleep")]
    # the interval, then 0.1, 0.2, 0.4, 0.8, capped at 1.0 (the interval), then the
    # interval again once a heartbeat worked
    assert sleeps == [1.0, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    assert keeper.failures == 0


def test_backoff_jitter_stays_in_bounds() -> None:
    keeper = lease(ttl=30.0, jitter=0.5)
    api = Api(keeper, 201, *[REFUSED] * 8, stop_after=2 + 16)
    run(keeper.register(), api.perform)
    run(keeper.keep_alive(), api.perform)
    sleeps = [e.seconds for e in api.effects if isinstance(e, Sleep)][1:]
    for attempt, seconds in enumerate(sleeps):
        nominal = min(10.0, 0.1 * 2**attempt)
        assert seconds is not None
        assert nominal / 2 <= seconds <= nominal


def test_a_404_heartbeat_registers_again_at_once() -> None:
    keeper = lease(ttl=3.0)
    api = Api(keeper, 201, 404, 201, stop_after=8)
    run(keeper.register(), api.perform)
    run(keeper.keep_alive(), api.perform)
    assert api.steps() == [
        "PUT",
        "sleep 1.0",
        "PUT /heartbeat",  # 404: srvdns forgot it
        "sleep 0.0",
        "PUT",
        "sleep 1.0",
        "PUT /heartbeat",
        "sleep 1.0",
    ]
    assert keeper.registered


def test_registration_is_retried_until_it_works() -> None:
    keeper = lease(ttl=3.0)
    api = Api(keeper, REFUSED, REFUSED, 201, stop_after=6)
    assert run(keeper.register(strict=True), api.perform) is False
    run(keeper.keep_alive(), api.perform)
    assert api.steps() == ["PUT", "sleep 0.1", "PUT", "sleep 0.2", "PUT", "sleep 1.0"]
    assert keeper.registered


def test_close_stops_before_the_next_request() -> None:
    keeper = lease()
    api = Api(keeper, 201, stop_after=2)  # closed during the first sleep
    run(keeper.register(), api.perform)
    run(keeper.keep_alive(), api.perform)
    assert api.steps() == ["PUT", "sleep 1.0"]


@pytest.mark.parametrize("answer", [204, 404, 503, REFUSED])
def test_deregister_once_whatever_the_answer(answer: int | Exception) -> None:
    keeper = lease()
    api = Api(keeper, 201, answer)
    run(keeper.register(), api.perform)
    run(keeper.deregister(), api.perform)
    run(keeper.deregister(), api.perform)
    assert api.steps() == ["PUT", "DELETE"]
    assert keeper.closed


def test_a_registration_in_flight_during_deregistration_is_undone() -> None:
    keeper = lease()
    api = Api(keeper, 204, 201)

    def perform(effect: Effect) -> Any:
        if isinstance(effect, Http) and effect.method == "PUT":
            run(keeper.deregister(), api.perform)  # a signal, while the PUT travels
        return api.perform(effect)

    run(keeper.register(), perform)
    assert api.steps() == ["DELETE", "PUT", "DELETE"]


async def test_the_async_driver_runs_the_same_policy() -> None:
    keeper = lease(ttl=3.0)
    api = Api(keeper, 201, 404, 201, stop_after=8)
    await arun(keeper.register(), api.aperform)
    await arun(keeper.keep_alive(), api.aperform)
    assert api.steps()[:5] == ["PUT", "sleep 1.0", "PUT /heartbeat", "sleep 0.0", "PUT"]


def test_body_leaves_unset_fields_to_srvdns() -> None:
    assert registration_body(address="::1", port=1) == {"address": "::1", "port": 1}
    full = registration_body(
        address="10.0.0.1",
        port=80,
        tags=["v2"],
        meta={"k": "v"},
        weight=0,
        priority=1,
        ttl="1s",
        checks=[{"http": "/health"}],
    )
    assert full == {
        "address": "10.0.0.1",
        "port": 80,
        "tags": ["v2"],
        "meta": {"k": "v"},
        "weight": 0,
        "priority": 1,
        "ttl": "1s",
        "checks": [{"http": "/health"}],
    }


@pytest.mark.parametrize(
    ("ttl", "checks", "expected"),
    [
        ("30s", None, 30.0),
        (1.5, None, 1.5),
        (None, None, None),
        (None, [{"http": "/h"}, {"ttl": "10s"}, {"ttl": "500ms"}], 0.5),
        ("2s", [{"ttl": "10s"}], 2.0),
    ],
)
def test_the_lease_to_renew(
    ttl: str | float | None, checks: list[dict[str, Any]] | None, expected: float | None
) -> None:
    assert lease_seconds(ttl, checks) == expected


def test_a_bad_ttl() -> None:
    with pytest.raises(ClientError, match="ttl"):
        lease_seconds("soon", None)
