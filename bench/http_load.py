"""A small keep-alive HTTP/1.1 load generator on asyncio, fast enough to load one srvdns core.

A thread pool of httpx clients tops out near 2,000 requests/s on this kind of machine,
below what the API now serves, so the API benchmarks use this instead: ``connections``
keep-alive connections, each sending its next request as soon as the previous answer
arrived (no pipelining), over prepared request bytes.  Each answer's status line and
``content-length`` are parsed; the body is read and dropped.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    """What one run did: answers by status, latencies in seconds, and the wall time."""

    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def count(self) -> int:
        return sum(self.statuses.values())

    @property
    def ok(self) -> int:
        """Requests answered with a 2xx status."""
        return sum(n for code, n in self.statuses.items() if 200 <= code < 300)

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    def line(self, name: str) -> str:
        return (
            f"{name:<14} {self.rate:8.0f}/s  p50 {self.percentile(0.5) * 1000:.1f} ms  "
            f"p99 {self.percentile(0.99) * 1000:.1f} ms  ({self.count} requests, {self.ok} 2xx, "
            f"{self.elapsed:.1f} s)"
        )


def request(method: str, host: str, path: str, body: bytes = b"", token: str = "") -> bytes:
    """The bytes of one HTTP/1.1 request with a JSON body (keep-alive)."""
    head = [f"{method} {path} HTTP/1.1", f"host: {host}", "connection: keep-alive"]
    if token:
        head.append(f"authorization: Bearer {token}")
    if body or method in ("PUT", "POST"):
        head += ["content-type: application/json", f"content-length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _connection(
    host: str,
    port: int,
    requests: list[bytes],
    result: LoadResult,
    pace: float | None,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    try:
        for raw in requests:
            if pace is not None:
                next_at += pace
                delay = next_at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            start = time.perf_counter()
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            code = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
                    break
            if length:
                await reader.readexactly(length)
            result.latencies.append(time.perf_counter() - start)
            result.statuses[code] = result.statuses.get(code, 0) + 1
    finally:
        writer.close()


async def run(
    host: str,
    port: int,
    requests: list[bytes],
    *,
    connections: int = 32,
    rate: float | None = None,
) -> LoadResult:
    """Send ``requests`` over ``connections`` keep-alive connections (round-robin split);
    at ``rate`` requests/s in total when given, else flat out."""
    result = LoadResult()
    chunks = [requests[n::connections] for n in range(connections)]
    pace = None if rate is None else connections / rate
    start = time.perf_counter()
    await asyncio.gather(
        *(_connection(host, port, chunk, result, pace) for chunk in chunks if chunk)
    )
    result.elapsed = time.perf_counter() - start
    return result


def run_sync(
    host: str,
    port: int,
    requests: list[bytes],
    *,
    connections: int = 32,
    rate: float | None = None,
) -> LoadResult:
    """``run`` on a fresh event loop (uvloop when installed)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run(host, port, requests, connections=connections, rate=rate))
    return uvloop.run(run(host, port, requests, connections=connections, rate=rate))
