"""The discovery policy, driven through both drivers against a fake name server."""

from __future__ import annotations

import random

import dns.exception
import dns.resolver
import pytest
from client.support import Clock, FakeDns, srv_sections

from srvdns.client.discovery import Discovery, Found, Instance
from srvdns.client.effects import arun, run
from srvdns.client.errors import DiscoveryError, NoInstancesError

WEB = "web.service.local."


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake() -> FakeDns:
    return FakeDns()


@pytest.fixture
def core(clock: Clock) -> Discovery:
    return Discovery(clock=clock, rng=random.Random(5), stale_for=60, recheck=1, cooldown=10)


def lookup(core: Discovery, fake: FakeDns, service: str = "web", tag: str | None = None) -> Found:
    return run(core.lookup(service, tag), fake.perform)


def test_instances_from_the_srv_answer_and_its_additional_section(
    core: Discovery, fake: FakeDns
) -> None:
    fake.set(WEB, "SRV", srv_sections(("a", 0, 1, 80, "10.0.0.1"), ("b", 1, 2, 81, "10.0.0.2")))
    found = lookup(core, fake)
    assert sorted(found, key=lambda i: i.target) == [
        Instance("web", "a.instance.web.service.local.", "10.0.0.1", 80, 0, 1),
        Instance("web", "b.instance.web.service.local.", "10.0.0.2", 81, 1, 2),
    ]
    assert fake.asked == [(WEB, "SRV")]


def test_addresses_missing_from_the_additional_section_are_asked_for(
    core: Discovery, fake: FakeDns
) -> None:
    fake.set(
        WEB,
        "SRV",
        """\
        ;ANSWER
        web.service.local. 5 IN SRV 0 1 80 a.instance.web.service.local.
        web.service.local. 5 IN SRV 0 1 81 b.instance.web.service.local.
        web.service.local. 5 IN SRV 0 1 82 gone.instance.web.service.local.
        web.service.local. 5 IN SRV 0 1 83 .
        """,
    )
    fake.set(
        "a.instance.web.service.local.",
        "A",
        ";ANSWER\na.instance.web.service.local. 5 IN A 10.0.0.1\n",
    )
    fake.set("b.instance.web.service.local.", "A", "")  # NODATA
    fake.set(
        "b.instance.web.service.local.",
        "AAAA",
        ";ANSWER\nb.instance.web.service.local. 5 IN AAAA ::1\n",
    )
    found = lookup(core, fake)
    assert sorted((i.address, i.port) for i in found) == [("10.0.0.1", 80), ("::1", 81)]
    assert sorted(fake.asked) == sorted(
        [
            (WEB, "SRV"),
            ("a.instance.web.service.local.", "A"),
            ("b.instance.web.service.local.", "A"),
            ("b.instance.web.service.local.", "AAAA"),
            ("gone.instance.web.service.local.", "A"),  # NXDOMAIN: skipped
        ]
    )
    assert next(i for i in found if i.port == 81).url("/x") == "http://[::1]:81/x"


def test_cached_for_exactly_the_smallest_ttl(core: Discovery, fake: FakeDns, clock: Clock) -> None:
    fake.set(
        WEB,
        "SRV",
        """\
        ;ANSWER
        web.service.local. 5 IN SRV 0 1 80 a.instance.web.service.local.
        ;ADDITIONAL
        a.instance.web.service.local. 2 IN A 10.0.0.1
        """,
    )
    lookup(core, fake)
    clock.advance(1.999)
    lookup(core, fake)
    assert len(fake.asked) == 1
    clock.advance(0.001)
    lookup(core, fake)
    assert len(fake.asked) == 2


def test_ttl_zero_is_asked_every_time(core: Discovery, fake: FakeDns) -> None:
    fake.set(WEB, "SRV", srv_sections(("a", 0, 1, 80, "10.0.0.1"), ttl=0))
    lookup(core, fake)
    lookup(core, fake)
    assert len(fake.asked) == 2


def test_nxdomain_means_no_instances_cached_for_the_negative_ttl(
    core: Discovery, fake: FakeDns, clock: Clock
) -> None:
    assert lookup(core, fake, "nothing") == ()
    with pytest.raises(NoInstancesError, match="no instances"):
        core.pick(lookup(core, fake, "nothing"), "nothing")
    clock.advance(2.9)  # min(SOA TTL 5, SOA minimum 3)
    lookup(core, fake, "nothing")
    assert len(fake.asked) == 1
    clock.advance(0.1)
    lookup(core, fake, "nothing")
    assert len(fake.asked) == 2


def test_nodata_means_no_instances(core: Discovery, fake: FakeDns) -> None:
    fake.set(WEB, "A", ";ANSWER\nweb.service.local. 5 IN A 10.0.0.1\n")
    assert lookup(core, fake) == ()


def test_tags_are_looked_up_under_the_service(core: Discovery, fake: FakeDns) -> None:
    fake.set(
        "v2.web.service.local.",
        "SRV",
        srv_sections(("a", 0, 1, 80, "10.0.0.1"), owner="v2.web.service.local."),
    )
    assert len(lookup(core, fake, "Web", "V2")) == 1
    assert core.qname("web", "v2") == "v2.web.service.local."


@pytest.mark.parametrize(
    "error",
    [
        dns.resolver.NoNameservers(),  # SERVFAIL or REFUSED from every server
        dns.resolver.LifetimeTimeout(timeout=2.0, errors=[]),
        ConnectionRefusedError(),
    ],
)
def test_stale_on_error_for_a_bounded_time(
    core: Discovery, fake: FakeDns, clock: Clock, error: Exception
) -> None:
    fake.set(WEB, "SRV", srv_sections(("a", 0, 1, 80, "10.0.0.1")))
    first = lookup(core, fake)
    fake.down = error
    clock.advance(5 + 58)  # expired 58 s ago: still served
    assert lookup(core, fake) == first
    clock.advance(0.999)  # held for `recheck`: srvdns is not asked again meanwhile
    assert lookup(core, fake) == first
    assert len(fake.asked) == 2
    clock.advance(0.5)  # asked again, and still served
    assert lookup(core, fake) == first
    assert len(fake.asked) == 3
    clock.advance(0.501)  # expired 60 s ago: gone, however long it was held
    with pytest.raises(DiscoveryError, match=r"cannot resolve web\.service\.local\. SRV"):
        lookup(core, fake)
    assert len(fake.asked) == 4


def test_an_error_without_an_earlier_answer(core: Discovery, fake: FakeDns) -> None:
    fake.down = dns.exception.Timeout()
    with pytest.raises(DiscoveryError):
        lookup(core, fake)


def test_recovery_after_stale(core: Discovery, fake: FakeDns, clock: Clock) -> None:
    fake.set(WEB, "SRV", srv_sections(("a", 0, 1, 80, "10.0.0.1")))
    lookup(core, fake)
    fake.down = dns.resolver.NoNameservers()
    clock.advance(6)
    lookup(core, fake)
    fake.down = None
    fake.set(WEB, "SRV", srv_sections(("b", 0, 1, 80, "10.0.0.2")))
    clock.advance(1)
    assert [i.address for i in lookup(core, fake)] == ["10.0.0.2"]


def found_with_priorities(core: Discovery, fake: FakeDns) -> Found:
    fake.set(
        WEB,
        "SRV",
        srv_sections(
            ("a", 0, 1, 80, "10.0.0.1"), ("b", 0, 1, 80, "10.0.0.2"), ("c", 1, 1, 80, "10.0.0.3")
        ),
    )
    return lookup(core, fake)


def break_(core: Discovery, instance: Instance) -> None:
    for _ in range(core.breakers.threshold):
        core.report(instance, ok=False)


def test_lower_priority_only_when_every_higher_one_is_broken(
    core: Discovery, fake: FakeDns
) -> None:
    found = found_with_priorities(core, fake)
    by_name = {i.target.split(".")[0]: i for i in found}
    assert {core.pick(found, "web").address for _ in range(200)} == {"10.0.0.1", "10.0.0.2"}
    break_(core, by_name["a"])
    assert {core.pick(found, "web").address for _ in range(200)} == {"10.0.0.2"}
    break_(core, by_name["b"])
    assert {core.pick(found, "web").address for _ in range(200)} == {"10.0.0.3"}
    break_(core, by_name["c"])
    with pytest.raises(NoInstancesError, match="circuits of all 3 instances are open"):
        core.pick(found, "web")


def test_half_open_instance_gets_one_trial_then_is_preferred_again(
    core: Discovery, fake: FakeDns, clock: Clock
) -> None:
    found = found_with_priorities(core, fake)
    a = next(i for i in found if i.address == "10.0.0.1")
    b = next(i for i in found if i.address == "10.0.0.2")
    break_(core, a)
    break_(core, b)
    clock.advance(10)
    trials = [core.pick(found, "web") for _ in range(3)]
    assert sorted(t.address for t in trials[:2]) == ["10.0.0.1", "10.0.0.2"]
    assert trials[2].address == "10.0.0.3"  # both trials are out
    core.report(trials[0], ok=True)
    assert core.pick(found, "web") == trials[0]


def test_resolve_order_ignores_breakers_usable_does_not(core: Discovery, fake: FakeDns) -> None:
    found = found_with_priorities(core, fake)
    break_(core, found[0])
    assert len(core.ordered(found)) == 3
    assert found[0] not in core.usable(found)
    assert [i.priority for i in core.ordered(found)] == [0, 0, 1]


async def test_the_async_driver_runs_the_same_policy(clock: Clock, fake: FakeDns) -> None:
    fake.set(WEB, "SRV", srv_sections(("a", 0, 1, 80, "10.0.0.1"), ("b", 0, 1, 80, "10.0.0.2")))
    sync_core = Discovery(clock=clock, rng=random.Random(1))
    async_core = Discovery(clock=clock, rng=random.Random(1))
    assert await arun(async_core.lookup("web"), fake.aperform) == run(
        sync_core.lookup("web"), fake.perform
    )
