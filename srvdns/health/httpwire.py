"""One HTTP/1.1 request per connection, straight on an asyncio protocol, for health checks.

Health checks need the status code and the start of the body, from thousands of targets,
on the event loop that also answers DNS.  A general client (httpx) spends about 650 µs of
CPU per request on connection pooling and abstractions; this spends about 60 µs, which
is the difference between ~1,500 and well over 5,000 checks per second on one core.

Each check opens a fresh connection (like Consul's HTTP checks, which disable
keep-alive) so it also proves that the server still accepts connections, sends
``Connection: close``, reads the status line, the headers and at most ``limit`` bytes of
body (Content-Length, chunked or until close), then closes with a reset so that no
TIME_WAIT socket is left behind on srvdns's side.  Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import struct
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

from srvdns import __version__

MAX_HEAD = 64 * 1024
"""A response whose status line and headers are longer than this is an error."""

USER_AGENT = f"srvdns-health/{__version__}"

_STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3})(?: ([^\r\n]*))?$")
_LINGER_RESET = struct.pack("ii", 1, 0)


class HttpCheckError(Exception):
    """The server's answer is not an HTTP/1.x response."""


@dataclass(frozen=True, slots=True)
class Response:
    """What a check needs of a response."""

    status: int
    reason: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Request:
    """A prepared request: where to connect and the bytes to send."""

    host: str
    port: int
    tls: bool
    server_hostname: str | None
    data: bytes
    head_only: bool

    @classmethod
    def build(
        cls, url: str, method: str = "GET", headers: tuple[tuple[str, str], ...] = ()
    ) -> Request:
        """Prepare ``method url`` with extra ``headers``; raises ValueError for a bad URL."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        tls = parts.scheme == "https"
        default_port = 443 if tls else 80
        port = parts.port or default_port
        host = parts.hostname
        host_header = f"[{host}]" if ":" in host else host
        if port != default_port:
            host_header += f":{port}"
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        names = {name.lower() for name, _ in headers}
        defaults = (
            ("User-Agent", USER_AGENT),
            ("Accept", "text/plain, text/*, application/json, */*"),
        )
        lines = [f"{method} {target} HTTP/1.1", f"Host: {host_header}"]
        lines += [f"{name}: {value}" for name, value in defaults if name.lower() not in names]
        lines += [f"{name}: {value}" for name, value in headers]
        lines.append("Connection: close")
        if method not in ("GET", "HEAD", "OPTIONS", "DELETE"):
            lines.append("Content-Length: 0")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return cls(
            host=host,
            port=port,
            tls=tls,
            server_hostname=host if tls else None,
            data=data,
            head_only=method == "HEAD",
        )


class _ResponseReader(asyncio.Protocol):
    """Sends the request and parses the response as it arrives."""

    def __init__(self, request: Request, limit: int, done: asyncio.Future[Response]) -> None:
        self._request = request
        self._limit = limit
        self._done = done
        self._buffer = bytearray()
        self._status = 0
        self._reason = ""
        self._body = bytearray()
        self._length: int | None = None
        self._chunked = False
        self._chunk_left = 0
        self._in_body = False
        self.transport: asyncio.Transport | None = None
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport.write(self._request.data)

    def data_received(self, data: bytes) -> None:
        if self._done.done():
            return
        self._buffer += data
        try:
            self._parse()
        except HttpCheckError as exc:
            self._done.set_exception(exc)

    def eof_received(self) -> bool:
        self.eof = True
        self._finish_at_close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        if exc is not None and not self._done.done() and not self._in_body:
            self._done.set_exception(exc)
            return
        self._finish_at_close()

    def _finish_at_close(self) -> None:
        if self._done.done():
            return
        if not self._in_body:
            self._done.set_exception(HttpCheckError("the connection closed before a response"))
            return
        self._complete()  # close-delimited body, or a short one: what arrived is the output

    def _complete(self) -> None:
        if not self._done.done():
            body = bytes(self._body[: self._limit])
            self._done.set_result(Response(self._status, self._reason, body))

    def _parse(self) -> None:
        while not self._in_body:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD:
                    raise HttpCheckError("the response headers are too long")
                return
            head = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            self._head(head)
        self._take_body()

    def _head(self, head: bytes) -> None:
        status_line, _, header_block = head.partition(b"\r\n")
        match = _STATUS_LINE.match(status_line)
        if match is None:
            raise HttpCheckError(f"not an HTTP/1.x response: {status_line[:80]!r}")
        status = int(match.group(1))
        if 100 <= status < 200 and status != 101:
            return  # interim response: the real one follows
        self._status = status
        self._reason = (match.group(2) or b"").decode("latin-1")
        for line in header_block.split(b"\r\n"):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                try:
                    self._length = int(value.strip())
                except ValueError:
                    raise HttpCheckError("bad Content-Length") from None
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                self._chunked = True
        self._in_body = True
        if self._request.head_only or status in (204, 304) or status < 200:
            self._length = 0
            self._chunked = False

    def _take_body(self) -> None:
        if self._chunked:
            self._take_chunks()
            return
        self._body += self._buffer
        self._buffer.clear()
        wanted = self._limit if self._length is None else min(self._length, self._limit)
        if len(self._body) >= wanted:
            self._complete()

    def _take_chunks(self) -> None:
        buffer = self._buffer
        while len(self._body) < self._limit:
            if self._chunk_left == 0:
                line_end = buffer.find(b"\r\n")
                if line_end < 0:
                    if len(buffer) > 1024:
                        raise HttpCheckError("bad chunk size line")
                    return
                size_text = bytes(buffer[:line_end]).split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise HttpCheckError("bad chunk size") from None
                del buffer[: line_end + 2]
                if size == 0:
                    self._complete()
                    return
                self._chunk_left = size + 2  # the data and its CRLF
            take = min(self._chunk_left, len(buffer))
            if take == 0:
                return
            data = bytes(buffer[:take])
            del buffer[:take]
            self._chunk_left -= take
            if self._chunk_left < 2:  # part of the trailing CRLF was taken
                data = data[: len(data) - (2 - self._chunk_left)]
            self._body += data
        self._complete()


def close(transport: asyncio.Transport, *, reset: bool) -> None:
    """Close ``transport``; with ``reset``, abortively (RST: no TIME_WAIT on this side)."""
    sock = transport.get_extra_info("socket")
    if reset and sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    if reset:
        transport.abort()
    else:
        transport.close()


async def fetch(request: Request, *, limit: int, ssl_context: ssl.SSLContext | None) -> Response:
    """Send ``request`` on a new connection; the status and up to ``limit`` body bytes.

    Raises OSError (connection refused, reset, unreachable), ssl.SSLError, or
    HttpCheckError for an answer that is not HTTP.  Cancel it to time it out.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Response] = loop.create_future()
    reader = _ResponseReader(request, limit, done)
    transport, _ = await loop.create_connection(
        lambda: reader,
        request.host,
        request.port,
        ssl=ssl_context if request.tls else None,
        server_hostname=request.server_hostname,
    )
    try:
        return await done
    finally:
        close(transport, reset=not reader.eof)
