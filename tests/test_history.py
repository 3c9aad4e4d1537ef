"""The in-memory record of status changes: what counts as a change, and its bounds."""

from __future__ import annotations

from dataclasses import replace

from srvdns.history import CheckChange, StatusHistory
from srvdns.model import Check, CheckKind, CheckSpec, Instance, Service, Status

START = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def _instance(iid: str, status: Status = Status.PASSING, output: str = "") -> Instance:
    spec = CheckSpec(id="http", kind=CheckKind.HTTP, interval=10.0, timeout=1.0)
    return Instance(
        service="web",
        id=iid,
        address="10.0.0.1",
        port=80,
        status=status,
        checks=(Check(spec=spec, status=status, output=output),),
    )


def _web(*instances: Instance) -> Service:
    return Service("web", instances)


def test_seeded_state_is_not_a_change() -> None:
    history = StatusHistory(clock=Clock())
    history.seed([_web(_instance("a"))])
    history.observe([_web(_instance("a"))])
    assert history.events() == []


def test_registration_status_change_and_deregistration() -> None:
    clock = Clock()
    history = StatusHistory(clock=clock)
    history.observe([_web(_instance("a"))])
    clock.now += 5
    history.observe([_web(_instance("a", Status.CRITICAL, "HTTP 500"))])
    clock.now += 5
    history.observe([_web()])
    events = history.events()
    assert [(e.time - START, e.instance, e.before, e.after) for e in events] == [
        (0, "a", None, Status.PASSING),
        (5, "a", Status.PASSING, Status.CRITICAL),
        (10, "a", Status.CRITICAL, None),
    ]
    assert events[1].checks == (CheckChange("http", Status.PASSING, Status.CRITICAL, "HTTP 500"),)
    assert events[2].checks == (CheckChange("http", Status.CRITICAL, None, ""),)


def test_new_output_without_a_status_change_is_not_recorded() -> None:
    history = StatusHistory(clock=Clock())
    history.seed([_web(_instance("a", Status.CRITICAL, "refused"))])
    history.observe([_web(_instance("a", Status.CRITICAL, "timed out"))])
    assert history.events() == []


def test_a_check_that_moves_under_an_unchanged_worst_status_is_recorded() -> None:
    history = StatusHistory(clock=Clock())
    tcp = CheckSpec(id="tcp", kind=CheckKind.TCP, interval=10.0, timeout=1.0)
    before = _instance("a", Status.CRITICAL)
    two = replace(before, checks=(*before.checks, Check(spec=tcp, status=Status.PASSING)))
    history.seed([_web(two)])
    failed = replace(two, checks=(two.checks[0], Check(spec=tcp, status=Status.CRITICAL)))
    history.observe([_web(failed)])
    [event] = history.events()
    assert (event.before, event.after) == (Status.CRITICAL, Status.CRITICAL)
    assert event.checks == (CheckChange("tcp", Status.PASSING, Status.CRITICAL, ""),)


def test_other_services_are_left_alone() -> None:
    history = StatusHistory(clock=Clock())
    history.seed([_web(_instance("a")), Service("db", (replace(_instance("x"), service="db"),))])
    history.observe([_web()])
    assert [(e.service, e.instance) for e in history.events()] == [("web", "a")]
    assert history.events(service="db") == []


def test_events_older_than_the_retention_are_dropped() -> None:
    clock = Clock()
    history = StatusHistory(clock=clock, retention=60)
    history.observe([_web(_instance("a"))])
    clock.now += 30
    history.observe([_web(_instance("a", Status.CRITICAL))])
    clock.now += 31
    assert [e.after for e in history.events()] == [Status.CRITICAL]
    assert history.events(since=clock.now) == []


def test_the_count_is_bounded_oldest_first() -> None:
    clock = Clock()
    history = StatusHistory(clock=clock, max_events=3)
    for n in range(5):
        clock.now += 1
        status = Status.PASSING if n % 2 else Status.CRITICAL
        history.observe([_web(_instance("a", status))])
    assert [e.time - START for e in history.events()] == [3, 4, 5]


def _steps() -> list[tuple[Service, list[tuple[str, str]]]]:
    """Services as a sequence of writes left them, with the instances each write named."""
    a, b, c = _instance("a"), _instance("b"), _instance("c")
    b_bad = _instance("b", Status.CRITICAL)
    return [
        (_web(a, c), [("web", "a"), ("web", "c")]),
        (_web(a, b, c), [("web", "b")]),
        (_web(a, b_bad, c), [("web", "b")]),
        (_web(a, replace(b_bad, port=81), c), [("web", "b")]),  # no status change
        (_web(c, a), [("web", "b")]),  # out of id order, b removed
        (_web(), [("web", "a"), ("web", "c")]),  # the service deleted
    ]


def test_observing_only_the_named_instances_records_what_a_full_look_does() -> None:
    full, keyed = StatusHistory(clock=Clock()), StatusHistory(clock=Clock())
    for service, keys in _steps():
        full.observe([service])
        keyed.observe([service], keys)
    events = full.events()
    assert [(e.instance, e.before, e.after) for e in events] == [
        ("a", None, Status.PASSING),
        ("c", None, Status.PASSING),
        ("b", None, Status.PASSING),
        ("b", Status.PASSING, Status.CRITICAL),
        ("b", Status.CRITICAL, None),
        ("c", Status.PASSING, None),
        ("a", Status.PASSING, None),
    ]
    # the deleted service's instances may go in either order (the same instant)
    assert keyed.events()[:5] == events[:5]
    assert set(keyed.events()[5:]) == set(events[5:])


def test_instances_not_named_are_not_looked_at() -> None:
    history = StatusHistory(clock=Clock())
    history.observe([_web(_instance("a"), _instance("b"))])
    history.observe([_web(_instance("a", Status.CRITICAL), _instance("b"))], [("web", "b")])
    assert len(history.events()) == 2  # a's change was not named: trusted not to be one


def test_a_seeded_service_is_compared_when_a_change_names_its_instances() -> None:
    """Seeded state is indexed when a change first touches the service, by keys or not."""
    history = StatusHistory(clock=Clock())
    history.seed([_web(_instance("a"), _instance("b")), Service("db", ())])
    history.observe([_web(_instance("a"), _instance("b"))], keys=[("web", "a")])
    assert history.events() == []  # equal to what was seeded: no event
    history.observe([_web(_instance("b", Status.CRITICAL))], keys=[("web", "a"), ("web", "b")])
    assert [(e.instance, e.before, e.after) for e in history.events()] == [
        ("a", Status.PASSING, None),
        ("b", Status.PASSING, Status.CRITICAL),
    ]


def test_seeding_again_replaces_what_was_seen() -> None:
    history = StatusHistory(clock=Clock())
    history.observe([_web(_instance("a"))])
    history.seed([_web(_instance("a", Status.CRITICAL))])
    history.observe([_web(_instance("a", Status.CRITICAL))])
    assert [(e.before, e.after) for e in history.events()] == [(None, Status.PASSING)]
