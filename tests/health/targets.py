"""Health-check targets for tests: small HTTP servers on 127.0.0.1 whose behaviour the test
sets, served from a thread of their own (so sync end-to-end tests and async unit tests can
both use them)."""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

REASONS = {200: "OK", 204: "No Content", 429: "Too Many Requests", 500: "Internal Server Error"}

MODES = ("ok", "warn", "error", "slow", "dead")
"""ok: 200; warn: 429; error: 500; slow: reads the request and never answers; dead: the
port is closed (connection refused)."""


class Target:
    """One server; ``mode`` (see MODES) and ``body`` may be changed at any time."""

    def __init__(self, pool: TargetPool, mode: str = "ok", body: bytes = b"ok") -> None:
        self.pool = pool
        self.mode = mode
        self.body = body
        self.raw: bytes | None = None
        """A full raw response to send instead (for malformed or chunked answers)."""
        self.port = 0
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None
        self._handlers: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hits(self) -> int:
        return len(self.requests)

    def set(self, mode: str, body: bytes | None = None) -> None:
        """Change the behaviour; "dead" closes the port, leaving "dead" opens it again."""
        assert mode in MODES, mode
        if body is not None:
            self.body = body
        was = self.mode
        self.mode = mode
        if mode == "dead" and was != "dead":
            self.pool.call(self._close())
        elif mode != "dead" and was == "dead":
            self.pool.call(self._listen())

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task, writer in list(self._handlers.items()):
            writer.close()
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await asyncio.sleep(0.01)  # let the closed transports finish closing

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # called in connection_made, so every connection is known before its task runs
        task = asyncio.get_running_loop().create_task(self._handle(reader, writer))
        self._handlers[task] = writer

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head)
            if self.mode == "slow":
                await asyncio.sleep(3600)
            if self.raw is not None:
                writer.write(self.raw)
            else:
                status = {"ok": 200, "warn": 429, "error": 500}[self.mode]
                writer.write(
                    f"HTTP/1.1 {status} {REASONS[status]}\r\n"
                    f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n".encode()
                    + self.body
                )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, KeyError):
            pass
        finally:
            self._handlers.pop(task, None)
            writer.close()


class TargetPool:
    """A thread running an event loop that serves any number of targets."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.targets: list[Target] = []

    def call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout=10)

    def http(self, mode: str = "ok", body: bytes = b"ok") -> Target:
        """A new server, listening unless ``mode`` is "dead" (then its port is free)."""
        target = Target(self, "ok", body)
        self.call(target._listen())
        self.targets.append(target)
        target.set(mode)
        return target

    async def _shutdown(self) -> None:
        for target in self.targets:
            await target._close()
        await asyncio.sleep(0.02)  # connections accepted just before the close
        for target in self.targets:
            await target._close()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def close(self) -> None:
        self.call(self._shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.run_until_complete(asyncio.sleep(0.01))
        self.loop.close()
        # A connection the OS accepted while its server was closing can be left without a
        # protocol by asyncio; collect it here rather than in some later test.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


@contextmanager
def target_pool() -> Iterator[TargetPool]:
    pool = TargetPool()
    try:
        yield pool
    finally:
        pool.close()
