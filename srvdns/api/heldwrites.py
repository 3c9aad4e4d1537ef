"""An API answer in one send: the HTTP protocol's writes held until the next one comes.

uvicorn writes a response's status line and headers as soon as the application starts
the response, and its body when that follows: two sends for every answer.  On uvloop
each ``write`` goes to the socket at once, and over TCP every send costs the server a
system call, a segment through the network stack and a wake-up of the client: for the
API's small answers (a registration's, a heartbeat's), the second send costs about as
much CPU as everything else the answer takes on the event loop.

``HeldWrites`` wraps the connection's transport: a write is held until the next write,
and the two go out as one (so the head and the body of an answer leave together, when
the body is written, exactly when the body left before); a write nothing follows goes
out at the end of the loop's current round, and before the transport is closed.  The
bytes sent, their order and the flow control (the real transport's) are unchanged; only
fewer, larger segments carry them.  ``held_writes_protocol`` is the HTTP protocol
uvicorn would choose (httptools, else h11), on such a transport.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol


class HeldWrites(asyncio.Transport):
    """A transport that holds each write until the next one or the end of the round."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:  # h11 ends a message with an empty write: nothing to send
            return
        held = self._held
        if held is None:
            self._held = bytes(data)
            self._loop.call_soon(self._flush)
            return
        self._held = None
        self._transport.write(held + data)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def _flush(self) -> None:
        """Send what is held (the end of the round): nothing followed it."""
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        held = self._held
        return self._transport.get_write_buffer_size() + (0 if held is None else len(held))

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()


def held_writes_protocol() -> type[asyncio.Protocol]:
    """uvicorn's own choice of HTTP protocol (its ``http="auto"``), whose connections
    write through ``HeldWrites``: for ``uvicorn.Config(http=...)``."""
    base: Any = AutoHTTPProtocol

    class HeldWritesProtocol(base):  # type: ignore[misc]
        """The HTTP protocol uvicorn chose, on a ``HeldWrites`` transport."""

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(HeldWrites(transport, asyncio.get_running_loop()))

    return HeldWritesProtocol
