"""SignalHook: the callback runs once, then the previous handler gets the signal."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from srvdns.client.errors import ClientError
from srvdns.client.signals import SignalHook


@pytest.fixture
def sigterm() -> Iterator[None]:
    """Restore SIGTERM's handler after the test."""
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


@pytest.mark.usefixtures("sigterm")
def test_callback_once_then_the_previous_handler() -> None:
    events: list[str] = []

    def previous(signum: int, frame: FrameType | None) -> None:
        events.append(f"previous {signum}")

    signal.signal(signal.SIGTERM, previous)
    hook = SignalHook(lambda: events.append("callback"), [signal.SIGTERM])
    hook.install()
    signal.raise_signal(signal.SIGTERM)
    signal.raise_signal(signal.SIGTERM)
    assert events == ["callback", f"previous {signal.SIGTERM}", f"previous {signal.SIGTERM}"]
    hook.uninstall()
    assert signal.getsignal(signal.SIGTERM) is previous


@pytest.mark.usefixtures("sigterm")
def test_an_ignored_signal_stays_ignored() -> None:
    events: list[str] = []
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    hook = SignalHook(lambda: events.append("callback"), [signal.SIGTERM])
    hook.install()
    signal.raise_signal(signal.SIGTERM)
    assert events == ["callback"]
    hook.uninstall()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN


@pytest.mark.usefixtures("sigterm")
def test_a_failing_callback_still_passes_the_signal_on() -> None:
    events: list[str] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: events.append("previous"))

    def fail() -> None:
        raise RuntimeError("boom")

    hook = SignalHook(fail, [signal.SIGTERM])
    hook.install()
    signal.raise_signal(signal.SIGTERM)
    hook.uninstall()
    assert events == ["previous"]


@pytest.mark.usefixtures("sigterm")
def test_a_handler_installed_later_is_left_in_place() -> None:
    events: list[str] = []
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    hook = SignalHook(lambda: events.append("callback"), [signal.SIGTERM])
    hook.install()
    ours = signal.getsignal(signal.SIGTERM)
    assert callable(ours)

    def later(signum: int, frame: FrameType | None) -> None:
        events.append("later")
        ours(signum, frame)

    signal.signal(signal.SIGTERM, later)
    hook.uninstall()
    assert signal.getsignal(signal.SIGTERM) is later
    signal.raise_signal(signal.SIGTERM)
    assert events == ["later"]  # ours only passes it on now


def test_sigint_becomes_keyboard_interrupt_after_the_callback() -> None:
    events: list[str] = []
    hook = SignalHook(lambda: events.append("callback"), [signal.SIGINT])
    hook.install()
    try:
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    finally:
        hook.uninstall()
    assert events == ["callback"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_default_action_still_ends_the_process() -> None:
    script = textwrap.dedent(
        """\
        import signal
        from srvdns.client.signals import SignalHook
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        SignalHook(lambda: print("deregistered", flush=True)).install()
        signal.raise_signal(signal.SIGTERM)
        print("still alive")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == -signal.SIGTERM
    assert done.stdout == "deregistered\n"


def test_only_the_main_thread() -> None:
    errors: list[BaseException] = []

    def install() -> None:
        try:
            SignalHook(lambda: None).install()
        except ClientError as exc:
            errors.append(exc)

    thread = threading.Thread(target=install)
    thread.start()
    thread.join()
    assert len(errors) == 1
    assert "main thread" in str(errors[0])
