"""The two drivers: results are sent in, exceptions thrown in, the return value comes out."""

from __future__ import annotations

from typing import Any

import pytest

from srvdns.client.effects import Effect, Policy, Query, Sleep, arun, run


def policy() -> Policy[list[Any]]:
    seen: list[Any] = []
    seen.append((yield Query("a.", "A")))
    try:
        yield Query("fails.", "A")
    except LookupError as exc:
        seen.append(f"caught {exc}")
    yield Sleep(1)
    yield Query("unhandled.", "A")
    return seen


def perform(effect: Effect) -> Any:
    if isinstance(effect, Query) and effect.qname == "fails.":
        raise LookupError("fails")
    return "answer" if isinstance(effect, Query) else None


async def aperform(effect: Effect) -> Any:
    return perform(effect)


def test_run() -> None:
    assert run(policy(), perform) == ["answer", "caught fails"]


async def test_arun() -> None:
    assert await arun(policy(), aperform) == ["answer", "caught fails"]


def test_an_exception_the_policy_does_not_handle_comes_out() -> None:
    def broken(effect: Effect) -> Any:
        raise KeyError(effect)

    with pytest.raises(KeyError):
        run(policy(), broken)
