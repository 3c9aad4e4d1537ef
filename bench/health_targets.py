"""Health-check targets for the benches: N HTTP servers on 127.0.0.1 in one process.

Run by the benches as a child process.  It prints one JSON line with the ports, then
obeys commands on stdin, one per line, answering each with a line "ok <unix time>":

    kill 3 7 9    close those servers (connections are refused from then on)
    hang 4 5      keep accepting, never answer (checks time out)
    quit
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\nok"
)


class _Http(asyncio.Protocol):
    def __init__(self, server: _Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.hits += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if b"\r\n\r\n" in self.buffer and not self.server.hung and self.transport is not None:
            self.transport.write(RESPONSE)
            self.transport.close()


class _Server:
    def __init__(self) -> None:
        self.hung = False
        self.hits = 0
        self.handle: asyncio.Server | None = None


async def main(count: int) -> None:
    loop = asyncio.get_running_loop()
    servers = []
    for _ in range(count):
        server = _Server()
        server.handle = await loop.create_server(
            lambda s=server: _Http(s), "127.0.0.1", 0, backlog=1024
        )
        servers.append(server)
    ports = [s.handle.sockets[0].getsockname()[1] for s in servers if s.handle]
    print(json.dumps({"ports": ports}), flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        command, *args = line.split()
        if command == "quit":
            break
        for index in map(int, args):
            server = servers[index]
            if command == "kill" and server.handle is not None:
                server.handle.close()
                server.handle = None
            elif command == "hang":
                server.hung = True
        print(f"ok {time.monotonic()}", flush=True)


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(int(sys.argv[1])))
    else:
        uvloop.run(main(int(sys.argv[1])))
