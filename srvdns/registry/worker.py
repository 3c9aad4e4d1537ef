"""The registry's one database thread: jobs run in the order they were handed over.

A ``concurrent.futures.ThreadPoolExecutor`` of one worker would do, but it costs a lone
registration more than it needs: per job a ``Future``, a work item, a semaphore
acquired on the submitting side and released on the worker's, a check whether to start
another thread.  ``WorkerThread`` is one thread started once, fed through a
``queue.SimpleQueue`` (its hand-off is a C lock, the cheapest wake-up CPython has), with
``call`` for the registry's own drain, which needs no ``Future`` because its outcome
goes to the event loop another way.  It is an ``Executor`` so that the change follower
and the start-up reads run on the same thread, in the same order as the writes.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

_Job = tuple["Future[Any] | None", Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class WorkerThread(Executor):
    """One daemon thread that runs submitted jobs one at a time, first in first run."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._shut_down = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` after every job handed over before; its outcome
        in the returned future (which, cancelled before the job starts, skips it).
        Raises RuntimeError after ``shutdown``, as an executor does."""
        future: Future[T] = Future()
        self._put((future, fn, args, kwargs))
        return future

    def call(self, fn: Callable[[], object]) -> None:
        """Run ``fn()`` after every job handed over before, with nobody waiting for its
        outcome: it must deliver that itself (an exception it raises is logged).
        Raises RuntimeError after ``shutdown``."""
        self._put((None, fn, (), {}))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Take no more jobs; the thread ends after those already handed over (joined
        when ``wait``).  ``cancel_futures`` cancels the submitted jobs not started yet."""
        with self._lock:
            if not self._shut_down:
                self._shut_down = True
                if cancel_futures:
                    self._cancel_pending()
                self._jobs.put(None)
        if wait and threading.current_thread() is not self._thread:
            self._thread.join()

    def _put(self, job: _Job) -> None:
        with self._lock:
            if self._shut_down:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._jobs.put(job)

    def _cancel_pending(self) -> None:
        kept: list[_Job] = []
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None and (job[0] is None or not job[0].cancel()):
                kept.append(job)
        for job in kept:
            self._jobs.put(job)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, fn, args, kwargs = job
            if future is None:
                try:
                    fn()
                except BaseException:
                    log.exception("a registry job failed")
                continue
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)
