"""srvdns.health.damping: consecutive-result counters decide when a status moves."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from srvdns.health.damping import MAX_COUNTER, clip_output, repeat, repeat_moves, step
from srvdns.health.definitions import MAX_OUTPUT
from srvdns.model import Check, CheckKind, CheckSpec, Status

P, W, C = Status.PASSING, Status.WARNING, Status.CRITICAL
SPEC = CheckSpec(id="http", kind=CheckKind.HTTP, interval=1, timeout=1, target="http://x/")


def run(results: str, *, start: Status = C, sbp: int = 1, fbc: int = 1, first: bool = False):
    """Feed results ("p", "w", "c") one per second; the statuses after each."""
    spec = replace(SPEC, success_before_passing=sbp, failures_before_critical=fbc)
    check = Check(spec=spec, status=start, last_change=0.0)
    out = []
    for n, letter in enumerate(results, 1):
        status = {"p": P, "w": W, "c": C}[letter]
        check = step(check, status, letter, float(n), first=first and n == 1)
        out.append(check.status)
    return out, check


@pytest.mark.parametrize(
    ("results", "start", "sbp", "fbc", "expected"),
    [
        ("ppp", C, 1, 1, [P, P, P]),
        ("ppp", C, 2, 1, [C, P, P]),
        ("pppp", C, 3, 1, [C, C, P, P]),
        ("ccc", P, 1, 1, [C, C, C]),
        ("ccc", P, 1, 3, [P, P, C]),
        # a flapping instance never comes back while it flaps faster than the threshold
        ("pcpcpcpc", C, 2, 1, [C] * 8),
        # nor leaves while it fails less often than failures_before_critical in a row
        ("cpcpcpcp", P, 1, 2, [P] * 8),
        ("ccpcc", P, 1, 2, [P, C, P, P, C]),
        # warning and passing are both good: between them the status follows at once
        ("wpw", P, 2, 1, [W, P, W]),
        ("pww", C, 2, 1, [C, W, W]),  # warning results count as successes
        ("wc", P, 1, 2, [W, W]),
    ],
)
def test_transitions(results, start, sbp, fbc, expected) -> None:
    statuses, _ = run(results, start=start, sbp=sbp, fbc=fbc)
    assert statuses == expected


def test_counters_and_last_change() -> None:
    _, check = run("ccpp", start=P, sbp=2, fbc=1)
    assert (check.status, check.successes, check.failures) == (P, 2, 0)
    assert check.last_change == 4.0  # critical at 1, passing again at 4
    _, check = run("ppcc", start=P, sbp=2, fbc=3)
    assert (check.status, check.successes, check.failures, check.last_change) == (P, 0, 2, 0.0)
    assert check.output == "c"


def test_first_result_sets_the_status_directly() -> None:
    statuses, _ = run("pc", start=C, sbp=5, first=True)
    assert statuses == [P, C]
    statuses, _ = run("cp", start=P, sbp=3, fbc=5, first=True)
    assert statuses == [C, C]


def test_ttl_checks_are_not_damped() -> None:
    spec = CheckSpec(
        id="ttl", kind=CheckKind.TTL, interval=5, timeout=0, ttl=5, success_before_passing=9
    )
    check = step(Check(spec=spec, status=P), C, "expired", 1.0)
    assert check.status is C
    assert step(check, P, "", 2.0).status is P


def test_output_is_clipped_to_4_kib() -> None:
    assert clip_output("é" * 3000).encode() == ("é" * (MAX_OUTPUT // 2)).encode()
    check = step(Check(spec=SPEC, status=P), P, "x" * 10_000, 1.0)
    assert len(check.output) == MAX_OUTPUT


def reference_step(check: Check, status: Status, output: str, now: float, first: bool) -> Check:
    """The plain rule, without the shortcut for a repeated result: ``step`` must agree."""
    spec = check.spec
    if status is C:
        successes, failures = 0, min(check.failures + 1, MAX_COUNTER)
    else:
        successes, failures = min(check.successes + 1, MAX_COUNTER), 0
    if first or spec.kind is CheckKind.TTL:
        new_status = status
    elif status is C:
        new_status = status if failures >= spec.failures_before_critical else check.status
    elif check.status is C:
        new_status = status if successes >= spec.success_before_passing else check.status
    else:
        new_status = status
    last_change = now if new_status is not check.status else check.last_change
    return replace(
        check,
        status=new_status,
        output=clip_output(output),
        last_change=last_change,
        successes=successes,
        failures=failures,
    )


@settings(max_examples=100, deadline=None)
@given(
    results=st.lists(
        st.tuples(st.sampled_from([P, W, C]), st.sampled_from(["a", "b"])), max_size=30
    ),
    start=st.sampled_from([P, W, C]),
    sbp=st.integers(1, 4),
    fbc=st.integers(1, 4),
    near_max=st.booleans(),
    kind=st.sampled_from([CheckKind.HTTP, CheckKind.TTL]),
)
def test_a_repeated_result_moves_only_a_counter_as_the_rule_says(
    results: list[tuple[Status, str]],
    start: Status,
    sbp: int,
    fbc: int,
    near_max: bool,
    kind: CheckKind,
) -> None:
    spec = replace(SPEC, kind=kind, success_before_passing=sbp, failures_before_critical=fbc)
    counter = MAX_COUNTER - 2 if near_max else 0
    fast = slow = Check(spec=spec, status=start, output="a", successes=counter)
    for n, (status, output) in enumerate(results, 1):
        fast = step(fast, status, output, float(n), first=n == 1 and near_max)
        slow = reference_step(slow, status, output, float(n), n == 1 and near_max)
        assert fast == slow


@settings(max_examples=200, deadline=None)
@given(
    status=st.sampled_from([P, W, C]),
    successes=st.sampled_from([0, 1, 7, MAX_COUNTER - 2, MAX_COUNTER]),
    failures=st.sampled_from([0, 1, 7, MAX_COUNTER - 2, MAX_COUNTER]),
    times=st.integers(0, 5),
    kind=st.sampled_from([CheckKind.HTTP, CheckKind.TTL]),
)
def test_repeat_is_that_many_steps_of_the_same_result(
    status: Status, successes: int, failures: int, times: int, kind: CheckKind
) -> None:
    spec = replace(SPEC, kind=kind, success_before_passing=3, failures_before_critical=3)
    check = Check(spec, status, "out", 5.0, successes, failures)
    stepped = check
    for n in range(times):
        stepped = step(stepped, status, "out", 10.0 + n)
    assert repeat(check, times) == stepped
    assert repeat_moves(check) == (step(check, status, "out", 10.0) != check)


def test_repeat_keeps_the_check_when_nothing_moves() -> None:
    check = Check(SPEC, P, "out", 5.0, MAX_COUNTER, 0)
    assert repeat(check, 3) is check
    assert not repeat_moves(check)
    assert repeat_moves(replace(check, successes=1))
