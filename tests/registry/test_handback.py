"""Calls handed from a thread to the event loop: in order, on the loop, released at close."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from srvdns.model import Instance
from srvdns.registry.handback import Handback
from srvdns.registry.registry import Registry

uvloop = pytest.importorskip("uvloop")

LOOPS: dict[str, Callable[[Coroutine[Any, Any, None]], None]] = {
    "asyncio": asyncio.run,
    "uvloop": uvloop.run,
}


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, None]], None]:
    """Run a coroutine to the end on a fresh loop of each kind."""
    return LOOPS[request.param]


def in_thread(fn: Callable[[], None]) -> None:
    thread = threading.Thread(target=fn)
    thread.start()
    thread.join()


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_calls_from_a_thread_run_on_the_loop_in_order(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        handback = Handback(loop)
        ran: list[tuple[int, int]] = []
        done = loop.create_future()

        def note(n: int) -> None:
            ran.append((n, threading.get_ident()))
            if n == 99:
                done.set_result(None)

        def hand_over() -> None:
            for n in range(100):
                handback.call(note, n)

        in_thread(hand_over)
        await asyncio.wait_for(done, 5)
        assert [n for n, _ in ran] == list(range(100))
        assert {ident for _, ident in ran} == {threading.get_ident()}
        handback.close()

    run(main())


def test_threadsafe_calls_keep_their_order_with_the_loops_own_both_ways(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        handback = Handback(loop)
        handback.threadsafe = True
        ran: list[int] = []
        done = loop.create_future()

        def hand_over() -> None:
            for n in range(0, 200, 2):
                handback.call(ran.append, n)
                loop.call_soon_threadsafe(ran.append, n + 1)
            handback.call(done.set_result, None)

        in_thread(hand_over)
        await asyncio.wait_for(done, 5)
        assert ran == list(range(200))
        handback.close()

    run(main())


def test_a_failing_call_goes_to_the_loops_exception_handler_and_the_next_still_runs(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        reported: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _, context: reported.append(context))
        handback = Handback(loop)
        done = loop.create_future()

        def boom() -> None:
            raise ValueError("boom")

        def hand_over() -> None:
            handback.call(boom)
            handback.call(done.set_result, "after")

        in_thread(hand_over)
        assert await asyncio.wait_for(done, 5) == "after"
        assert [type(c["exception"]) for c in reported] == [ValueError]
        handback.close()

    run(main())


def test_close_from_another_thread_runs_what_is_queued_and_releases_the_descriptor(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        handback = Handback(loop)
        fd = handback._reader
        ran: list[int] = []

        def queue_then_close() -> None:
            handback.call(ran.append, 1)
            handback.close()
            with pytest.raises(RuntimeError):
                handback.call(ran.append, 2)

        await asyncio.to_thread(queue_then_close)
        for _ in range(10):
            await asyncio.sleep(0)
        assert ran == [1]
        assert not is_open(fd)

    run(main())


def test_close_after_the_loop_closed_releases_the_descriptor() -> None:
    loop = asyncio.new_event_loop()
    handback = Handback(loop)
    fd = handback._reader
    loop.close()
    handback.close()
    assert not is_open(fd)


def instance(n: int) -> Instance:
    return Instance(service="web", id=f"web-{n}", address="10.0.0.1", port=8000 + n)


def test_a_registry_hands_its_writes_back_on_each_loop_and_releases_them_at_close(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    registry = Registry.open(f"sqlite:///{tmp_path}/registry.db")
    published: list[int] = []
    registry.add_listener(lambda change: published.append(threading.get_ident()))
    try:
        for first in (0, 10):  # one loop, then another: each gets its own hand-back

            async def main(first: int = first) -> None:
                results = await asyncio.gather(
                    *(registry.register(instance(n)) for n in range(first, first + 10))
                )
                assert [i.id for i in results] == [f"web-{n}" for n in range(first, first + 10)]
                assert registry._handback is not None
                assert registry._handback.loop is asyncio.get_running_loop()

            run(main())
        assert published == [threading.get_ident()] * 20
        assert len(registry.find_service("web").instances) == 20
        fds = [handback._reader for handback in registry._handbacks]
        assert len(fds) == 2
        assert all(is_open(fd) for fd in fds)
    finally:
        registry.close()
    assert not any(is_open(fd) for fd in fds)


def test_a_registry_with_a_follower_hands_back_through_the_loops_own_call(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    registry = Registry.open(f"sqlite:///{tmp_path}/registry.db")
    try:

        async def main() -> None:
            await registry.register(instance(1))
            handback = registry._handback
            assert handback is not None
            assert not handback.threadsafe
            registry.follower()
            assert handback.threadsafe
            stored = await registry.register(instance(2))
            assert stored.id == "web-2"
            assert len(registry.find_service("web").instances) == 2

        run(main())
    finally:
        registry.close()
