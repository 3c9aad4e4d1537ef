"""Flap damping: how one check result moves a check's status; pure.

A check counts consecutive critical results (``failures``) and consecutive passing or
warning results (``successes``), as Consul does.  It turns critical after
``failures_before_critical`` critical results in a row, and back from critical after
``success_before_passing`` good results in a row, so an instance that flaps faster than
that never moves in and out of DNS.  Between passing and warning (both answered; only the
SRV weight differs) it follows each result at once.  The first result a check ever gets
sets its status directly: its initial status is a placeholder, not an observation.
"""

from __future__ import annotations

from dataclasses import replace

from srvdns.health.definitions import MAX_OUTPUT
from srvdns.model import Check, CheckKind, Status

MAX_COUNTER = 1_000_000
"""Counters stop here; only whether they passed a threshold matters."""


def clip_output(output: str) -> str:
    """``output`` cut to ``MAX_OUTPUT`` bytes of UTF-8 (never inside a character)."""
    if len(output) * 4 <= MAX_OUTPUT:  # no character takes more than 4 bytes
        return output
    data = output.encode("utf-8", errors="replace")
    if len(data) <= MAX_OUTPUT:
        return output
    return data[:MAX_OUTPUT].decode("utf-8", errors="ignore")


def step(check: Check, status: Status, output: str, now: float, *, first: bool = False) -> Check:
    """``check`` after a result of ``status`` with ``output`` at wall-clock time ``now``.

    ``first`` says this is the check's first result since it was registered.  A TTL
    check is not damped: a lapsed lease is critical and a heartbeat passing, at once.
    ``last_change`` moves only when the status does.
    """
    spec = check.spec
    if status is check.status and output == check.output and not first:
        # the same result again, the common case: the status stays (whatever the
        # thresholds), only a counter moves
        if status is Status.CRITICAL:
            failures = min(check.failures + 1, MAX_COUNTER)
            if failures == check.failures and not check.successes:
                return check
            return Check(spec, status, output, check.last_change, 0, failures)
        successes = min(check.successes + 1, MAX_COUNTER)
        if successes == check.successes and not check.failures:
            return check
        return Check(spec, status, output, check.last_change, successes, 0)
    if status is Status.CRITICAL:
        successes, failures = 0, min(check.failures + 1, MAX_COUNTER)
    else:
        successes, failures = min(check.successes + 1, MAX_COUNTER), 0
    if first or spec.kind is CheckKind.TTL:
        new_status = status
    elif status is Status.CRITICAL:
        enough = failures >= spec.failures_before_critical
        new_status = status if enough else check.status
    elif check.status is Status.CRITICAL:
        enough = successes >= spec.success_before_passing
        new_status = status if enough else check.status
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


def repeat(check: Check, times: int) -> Check:
    """``check`` after ``times`` more results with its own status and output: what
    ``times`` calls of ``step`` give (only a counter moves, up to ``MAX_COUNTER``), built
    once.  The health loop counts such results and builds the check when it is read."""
    if times <= 0:
        return check
    if check.status is Status.CRITICAL:
        failures = min(check.failures + times, MAX_COUNTER)
        if failures == check.failures and not check.successes:
            return check
        return Check(check.spec, check.status, check.output, check.last_change, 0, failures)
    successes = min(check.successes + times, MAX_COUNTER)
    if successes == check.successes and not check.failures:
        return check
    return Check(check.spec, check.status, check.output, check.last_change, successes, 0)


def repeat_moves(check: Check) -> bool:
    """Whether one more result with ``check``'s own status and output changes it (a
    counter below ``MAX_COUNTER``, or the other counter to clear)."""
    if check.status is Status.CRITICAL:
        return check.failures < MAX_COUNTER or bool(check.successes)
    return check.successes < MAX_COUNTER or bool(check.failures)
