"""Blocking queries: ``?index=N&wait=D`` long polls on the registry's change index.

Consul's documentation: "A blocking query is used to wait for a potential change using
long polling ... the query blocks until the X-Consul-Index is greater than index or the
wait time elapses.  wait is limited to 10 minutes; if not set, it defaults to 5 minutes.
... A small random amount of additional wait time is added to the supplied maximum wait
time to spread out the wake up time of any concurrent requests.  This adds up to
wait / 16 additional time to the maximum duration."  ``index=0`` does not block.

srvdns's index is the registry's persistent change counter (also the SOA serial): every
committed write that changes what the registry reports bumps it, health status changes
included, and the registry wakes every waiting query at once (no polling).  It is one
index for the whole registry, so a query may return when another service changed;
Consul's documentation asks clients to expect that.
"""

from __future__ import annotations

import random
import re

from srvdns.registry.registry import Registry

DEFAULT_WAIT = 300.0
"""Seconds a blocking query waits when it gives no ``wait`` (Consul: 5 minutes)."""
MAX_WAIT = 600.0
"""The longest ``wait`` honoured, in seconds (Consul: 10 minutes); longer ones are cut."""
JITTER_FRACTION = 16
"""Up to ``wait / JITTER_FRACTION`` is added to each wait, as Consul does."""

_GO_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_GO_DURATION = re.compile(r"^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$")


def parse_go_duration(text: str) -> float:
    """Seconds from a Go duration (Consul's format): ``"10s"``, ``"1m30s"``, ``"500ms"``,
    ``"0"``; raises ValueError for anything else (negatives included)."""
    value = text.strip()
    if value == "0":
        return 0.0
    if not _GO_DURATION.match(value):
        raise ValueError(f"{text!r} is not a duration such as '10s', '1m30s' or '500ms'")
    return sum(float(number) * _GO_UNITS[unit] for number, unit in _GO_PART.findall(value))


def format_go_duration(seconds: float) -> str:
    """A duration as Go prints it: ``"10s"``, ``"1m30s"``, ``"500ms"``, ``"1h0m0s"``."""
    nanos = round(seconds * 1e9)
    if nanos == 0:
        return "0s"
    if nanos < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if nanos >= size:
                return f"{_decimal(nanos / size)}{unit}"
    hours, rest = divmod(nanos, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = f"{_decimal(rest / 1e9)}s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return text


def _decimal(value: float) -> str:
    return f"{value:.9f}".rstrip("0").rstrip(".")


def parse_index(text: str) -> int:
    """The ``index`` of a blocking query: an unsigned integer; raises ValueError."""
    if not text.isdigit():
        raise ValueError(f"index {text!r} is not an unsigned integer")
    return int(text)


def parse_wait(text: str | None) -> float:
    """The ``wait`` of a blocking query in seconds: a Go duration, at most ``MAX_WAIT``;
    ``DEFAULT_WAIT`` when absent; raises ValueError."""
    if text is None or text == "":
        return DEFAULT_WAIT
    return min(parse_go_duration(text), MAX_WAIT)


async def block(
    registry: Registry, index: int | None, wait: float, rng: random.Random | None = None
) -> int:
    """Wait until the registry's index is above ``index`` or ``wait`` (plus up to
    ``wait / 16`` of jitter) has passed; return the index.  No ``index`` (or 0): return
    at once."""
    if not index:
        return registry.holder.current.index
    jitter = (rng or random).uniform(0.0, wait / JITTER_FRACTION)
    return await registry.wait_for_index(index, wait + jitter)


def index_headers(index: int) -> dict[str, str]:
    """The headers of a read: ``X-Consul-Index`` (never 0, as in Consul), and the leader
    headers Consul's Go client parses on every query (srvdns is its own leader)."""
    return {
        "X-Consul-Index": str(max(index, 1)),
        "X-Consul-KnownLeader": "true",
        "X-Consul-LastContact": "0",
    }
