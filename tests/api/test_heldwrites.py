"""``HeldWrites`` sends what the protocol writes, in order, in fewer sends: a write goes out
with the next one, or at the end of the loop's round, or before the transport closes."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from srvdns.api.heldwrites import HeldWrites, held_writes_protocol


class Recording(asyncio.Transport):
    """A transport that records every send and call."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.calls: list[str] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.sent.append(bytes(data))

    def close(self) -> None:
        self.calls.append("close")
        self.closing = True

    def abort(self) -> None:
        self.calls.append("abort")
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 5

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 4000)}.get(name, default)

    def pause_reading(self) -> None:
        self.calls.append("pause_reading")

    def resume_reading(self) -> None:
        self.calls.append("resume_reading")


async def next_round() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_a_write_goes_out_with_the_next() -> None:
    real = Recording()
    held = HeldWrites(real, asyncio.get_running_loop())
    held.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert real.sent == []
    assert held.get_write_buffer_size() == 5 + 19
    held.write(memoryview(b"{}"))
    assert real.sent == [b"HTTP/1.1 200 OK\r\n\r\n{}"]  # at once, as one send
    await next_round()
    assert real.sent == [b"HTTP/1.1 200 OK\r\n\r\n{}"]  # nothing left to flush


async def test_an_empty_write_sends_nothing() -> None:
    """h11 (uvicorn's protocol without httptools) ends each message with ``write(b"")``."""
    real = Recording()
    held = HeldWrites(real, asyncio.get_running_loop())
    held.write(b"head")
    held.write(b"body")
    held.write(b"")
    await next_round()
    assert real.sent == [b"headbody"]


async def test_a_lone_write_goes_out_at_the_end_of_the_round() -> None:
    real = Recording()
    held = HeldWrites(real, asyncio.get_running_loop())
    held.writelines([b"a", b"b"])
    await next_round()
    assert real.sent == [b"ab"]
    held.write(b"c")
    held.write(b"d")
    held.write(b"e")
    await next_round()
    assert real.sent == [b"ab", b"cd", b"e"]  # every byte, in order


async def test_close_sends_what_is_held_first_and_abort_drops_it() -> None:
    real = Recording()
    held = HeldWrites(real, asyncio.get_running_loop())
    held.write(b"bye")
    held.close()
    assert real.sent == [b"bye"]
    assert real.calls == ["close"]
    assert held.is_closing()
    await next_round()
    assert real.sent == [b"bye"]
    other = Recording()
    held = HeldWrites(other, asyncio.get_running_loop())
    held.write(b"lost")
    held.abort()
    await next_round()
    assert other.sent == []
    assert other.calls == ["abort"]


async def test_the_rest_is_the_real_transports() -> None:
    real = Recording()
    held = HeldWrites(real, asyncio.get_running_loop())
    held.pause_reading()
    held.resume_reading()
    assert real.calls == ["pause_reading", "resume_reading"]
    assert held.get_extra_info("peername") == ("127.0.0.1", 4000)
    assert held.get_extra_info("sockname", "none") == "none"


@pytest.mark.parametrize("method", ["GET", "PUT"])
async def test_uvicorn_answers_over_it_in_one_send(method: str) -> None:
    """The protocol uvicorn would choose, on ``HeldWrites``: a whole answer, head and
    body, leaves in one send."""
    import uvicorn

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b'{"ok":true}'
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    config = uvicorn.Config(app, http=held_writes_protocol(), log_config=None, lifespan="off")
    config.load()
    server = uvicorn.Server(config)
    protocol = config.http_protocol_class(  # type: ignore[call-arg]
        config=config, server_state=server.server_state, app_state={}
    )
    real = Recording()
    protocol.connection_made(real)
    protocol.data_received(f"{method} / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n".encode())
    for _ in range(10):
        await asyncio.sleep(0)
    assert len(real.sent) == 1
    assert real.sent[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert real.sent[0].endswith(b'\r\n\r\n{"ok":true}')


async def test_a_real_server_answers_through_it(tmp_path: Any) -> None:
    import uvicorn

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"x" * 100_000, "more_body": True})
        await send({"type": "http.response.body", "body": b"y"})

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, http=held_writes_protocol(), log_config=None, lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(3):  # keep-alive: one connection, several answers
                answer = await client.get(f"http://127.0.0.1:{port}/")
                assert answer.status_code == 201
                assert answer.content == b"x" * 100_000 + b"y"
    finally:
        server.should_exit = True
        await task
