"""The registry's database thread: jobs in order, futures as an executor's, shutdown."""

from __future__ import annotations

import logging
import threading

import pytest

from srvdns.registry.worker import WorkerThread


def test_jobs_run_one_at_a_time_in_the_order_handed_over() -> None:
    worker = WorkerThread("test-worker")
    ran: list[int] = []
    threads: set[str] = set()

    def job(n: int) -> int:
        ran.append(n)
        threads.add(threading.current_thread().name)
        return n * 2

    futures = []
    for n in range(20):
        if n % 3:
            worker.call(lambda n=n: job(n))  # type: ignore[misc]
        else:
            futures.append(worker.submit(job, n))
    worker.shutdown(wait=True)
    assert ran == list(range(20))
    assert threads == {"test-worker"}
    assert [f.result() for f in futures] == [n * 2 for n in range(0, 20, 3)]


def test_a_failing_job_fails_its_future_and_the_thread_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    worker = WorkerThread("test-worker")

    def boom() -> None:
        raise ValueError("boom")

    failed = worker.submit(boom)
    with caplog.at_level(logging.ERROR, logger="srvdns.registry.worker"):
        worker.call(boom)
        after = worker.submit(lambda: "still here")
        assert after.result(5) == "still here"
    worker.shutdown()
    with pytest.raises(ValueError, match="boom"):
        failed.result()
    assert "a registry job failed" in caplog.text


def test_a_job_cancelled_before_it_started_is_not_run() -> None:
    worker = WorkerThread("test-worker")
    hold = threading.Event()
    held = worker.submit(hold.wait, 5)
    ran: list[str] = []
    skipped = worker.submit(ran.append, "skipped")
    assert skipped.cancel()
    hold.set()
    worker.submit(ran.append, "ran").result(5)
    worker.shutdown()
    assert held.result() is True
    assert ran == ["ran"]


def test_shutdown_finishes_the_jobs_handed_over_then_refuses_more() -> None:
    worker = WorkerThread("test-worker")
    hold = threading.Event()
    worker.submit(hold.wait, 5)
    ran: list[int] = []
    worker.call(lambda: ran.append(1))
    hold.set()
    worker.shutdown(wait=True)
    assert ran == [1]
    with pytest.raises(RuntimeError):
        worker.submit(ran.append, 2)
    with pytest.raises(RuntimeError):
        worker.call(lambda: ran.append(3))
    worker.shutdown()  # twice is fine
    assert ran == [1]


def test_shutdown_can_cancel_the_jobs_not_started() -> None:
    worker = WorkerThread("test-worker")
    hold = threading.Event()
    worker.submit(hold.wait, 5)
    waiting = worker.submit(lambda: "never")
    worker.shutdown(wait=False, cancel_futures=True)
    hold.set()
    worker.shutdown(wait=True)
    assert waiting.cancelled()
