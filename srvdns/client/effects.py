"""The I/O the sans-I/O policies ask for, and the two drivers that perform it.

Every policy of the client library (discovery, calls, registration) is a generator that
yields effects - ``Query``, ``Http``, ``Sleep`` - and receives their results (or has their
exception thrown in).  ``run`` performs them with blocking calls, ``arun`` with awaited
ones; neither knows anything about the policy, and the policy knows nothing about
threads or event loops.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Query:
    """Resolve ``qname`` for ``rdtype``; the result is a ``dns.resolver.Answer`` (NODATA
    included), or ``dns.resolver.NXDOMAIN`` / another ``DNSException`` is thrown in."""

    qname: str
    rdtype: str


@dataclass(frozen=True, slots=True)
class Http:
    """Send an HTTP request; the result is an ``httpx.Response`` (any status), or an
    ``httpx.HTTPError`` is thrown in.  ``options`` go to ``httpx`` as they are."""

    method: str
    url: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds`` (None: until woken); the wait ends early when the owner is closed."""

    seconds: float | None


Effect = Query | Http | Sleep
Policy = Generator[Effect, Any, R]


@dataclass(frozen=True, slots=True)
class _Outcome:
    value: Any = None
    error: Exception | None = None

    @classmethod
    def of(cls, perform: Callable[[Effect], Any], effect: Effect) -> _Outcome:
        try:
            return cls(value=perform(effect))
        except Exception as exc:  # handed to the policy, which decides
            return cls(error=exc)


def _advance(policy: Policy[Any], outcome: _Outcome) -> tuple[bool, Any]:
    """Resume ``policy`` with ``outcome``: (False, next effect) or (True, its result)."""
    try:
        if outcome.error is not None:
            return False, policy.throw(outcome.error)
        return False, policy.send(outcome.value)
    except StopIteration as stop:
        return True, stop.value


def run(policy: Policy[R], perform: Callable[[Effect], Any]) -> R:
    """Drive ``policy`` to its end, performing each effect with the blocking ``perform``."""
    done, item = _advance(policy, _Outcome())
    while not done:
        done, item = _advance(policy, _Outcome.of(perform, item))
    result: R = item
    return result


async def arun(policy: Policy[R], perform: Callable[[Effect], Awaitable[Any]]) -> R:
    """Drive ``policy`` to its end, awaiting ``perform`` for each effect."""
    done, item = _advance(policy, _Outcome())
    while not done:
        try:
            outcome = _Outcome(value=await perform(item))
        except Exception as exc:  # handed to the policy, which decides
            outcome = _Outcome(error=exc)
        done, item = _advance(policy, outcome)
    result: R = item
    return result
