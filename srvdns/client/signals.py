"""Run a callback once on SIGTERM or SIGINT, then hand the signal on to the previous handler."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from srvdns.client.errors import ClientError

log = logging.getLogger("srvdns.client")

_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class SignalHook:
    """Installs a handler for ``signals`` that calls ``callback`` (the first time only) and
    then does what the handler it replaced would have done: calls it if it is a function
    (Python's SIGINT handler raises KeyboardInterrupt; asyncio.run's cancels the main task),
    re-raises the signal with the default action if it was the default (SIGTERM ends the
    process), nothing if the signal was ignored.

    Python lets only the main thread set signal handlers: ``install`` raises ClientError
    anywhere else.
    """

    def __init__(
        self,
        callback: Callable[[], None],
        signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
    ) -> None:
        self._callback = callback
        self._signals = tuple(signals)
        self._previous: dict[int, _Handler] = {}
        self._pending = False

    def install(self) -> None:
        """Put the handler in place, remembering the ones it replaces."""
        if threading.current_thread() is not threading.main_thread():
            raise ClientError("signal handlers can only be installed from the main thread")
        self._pending = True
        for sig in self._signals:
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        """Restore the previous handlers.  A handler installed after ours stays, and ours,
        which it may chain to, only passes the signal on from now on."""
        self._pending = False
        for sig, previous in self._previous.items():
            if signal.getsignal(sig) == self._handle:
                signal.signal(sig, signal.SIG_DFL if previous is None else previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._pending:
            self._pending = False
            try:
                self._callback()
            except Exception:
                log.exception("the %s handler failed", signal.Signals(signum).name)
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
