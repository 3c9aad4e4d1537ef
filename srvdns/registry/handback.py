"""Calls handed from the database thread to the event loop, woken without holding the GIL.

``loop.call_soon_threadsafe`` wakes the loop (a write to its eventfd or self-pipe) while
the calling thread still holds the GIL: the loop, woken at once, finds the GIL taken
and waits for it, and the two threads pass it back and forth (futex calls and context
switches, on the one core the server runs on).  ``Handback`` queues the call and then
wakes the loop with ``os.eventfd_write`` (``os.write`` on a pipe where there is no
eventfd), which lets go of the GIL around the system call, so the loop takes it without
waiting.  On uvloop a round trip through a worker thread costs the event loop about
half the CPU it costs through ``call_soon_threadsafe`` (``bench/handback_cost.py``).

The loop, woken, runs the queued calls in order at once, in the same round (not a
round later through ``call_soon``), so they may overtake calls the same thread handed
over through ``call_soon_threadsafe`` before.  A thread that also hands over calls that
way, whose order against the queued ones matters, sets ``threadsafe``: each call is
then run through ``call_soon_threadsafe`` too, with the calls queued before it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
from collections.abc import Callable
from typing import Any

_Call = tuple[Callable[..., object], tuple[Any, ...], bool]
"""A queued call: the function, its arguments, and whether it was made ``threadsafe``."""


class Handback:
    """A channel from other threads to one event loop: ``call`` queues a call, and the
    loop runs the queued calls in the order they came."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Listen on ``loop`` (on its thread, or before it runs).  Raises
        NotImplementedError when the loop cannot watch a file descriptor."""
        self.loop = loop
        self._calls: collections.deque[_Call] = collections.deque()
        self._closed = False
        self.threadsafe = False
        """Run each call through ``call_soon_threadsafe`` (still in order with the
        calls queued before), not through the GIL-free wake-up."""
        self._reader, self._writer = _wake_pair()
        try:
            loop.add_reader(self._reader, self._woken)
        except BaseException:
            self._release()
            raise

    def call(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop soon, after every call queued before (any
        thread).  Raises RuntimeError after ``close``."""
        if self._closed:
            raise RuntimeError("the hand-back is closed")
        if self.threadsafe:
            call = (fn, args, True)
            self._calls.append(call)
            self.loop.call_soon_threadsafe(self._run_through, call)
            return
        self._calls.append((fn, args, False))
        _wake(self._writer)

    def close(self) -> None:
        """Take no more calls (call it once the threads that call have stopped).  The
        calls queued still run on the loop if it runs on; the wake-up's descriptors are
        released on the loop's thread (at once, when the loop is closed or not running)."""
        if self._closed:
            return
        self._closed = True
        loop = self.loop
        if loop.is_closed():
            self._release()
        elif not loop.is_running() or asyncio._get_running_loop() is loop:
            self._detach()
        else:
            try:
                loop.call_soon_threadsafe(self._detach)
            except RuntimeError:  # closed meanwhile
                self._release()

    def _woken(self) -> None:
        """Loop thread: the wake-up is readable; run the calls queued."""
        _drain(self._reader)
        self._run()

    def _run(self) -> None:
        """Run the calls queued, up to the first one made ``threadsafe`` (which runs at
        its own place among the loop's calls: ``_run_through``)."""
        calls = self._calls
        while calls and not calls[0][2]:
            self._invoke(calls.popleft())

    def _run_through(self, call: _Call) -> None:
        """Run the calls queued up to ``call`` (a ``threadsafe`` one), if not run yet."""
        calls = self._calls
        if call in calls:
            while (first := calls.popleft()) is not call:
                self._invoke(first)
            self._invoke(call)

    def _invoke(self, call: _Call) -> None:
        fn, args, _ = call
        try:
            fn(*args)
        except Exception as exc:  # as the loop treats a callback's exception
            self.loop.call_exception_handler(
                {"message": f"exception in the hand-back call {fn!r}", "exception": exc}
            )

    def _detach(self) -> None:
        """Loop thread (or a loop not running): stop listening, release the descriptors,
        and leave the calls still queued to the loop."""
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self._reader)
        self._release()
        if self._calls:
            self.loop.call_soon(self._run)

    def _release(self) -> None:
        for fd in {self._reader, self._writer}:
            with contextlib.suppress(OSError):
                os.close(fd)


def _wake_pair() -> tuple[int, int]:
    """The descriptors to wait on and to write to: one eventfd, or a pipe's two ends."""
    if hasattr(os, "eventfd"):
        fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        return fd, fd
    reader, writer = os.pipe()
    for fd in (reader, writer):
        os.set_blocking(fd, False)
    return reader, writer


if hasattr(os, "eventfd"):

    def _wake(fd: int) -> None:
        os.eventfd_write(fd, 1)

    def _drain(fd: int) -> None:
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(fd)

else:  # pragma: no cover (every Linux has eventfd)

    def _wake(fd: int) -> None:
        with contextlib.suppress(BlockingIOError):  # full of wake-ups: it will wake
            os.write(fd, b"\0")

    def _drain(fd: int) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(fd, 4096):
                pass
