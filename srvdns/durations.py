"""Durations as people write them in config files and API bodies: "500ms", "10s", "5m", "1h"."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """Seconds from a duration string ("500ms", "10s", "5m", "1h", "1d") or a number of seconds.

    Raises ValueError with a readable message for anything else, including negatives.
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '500ms', '10s' or '5m'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            number, unit = match.groups()
            return float(number) * _UNIT_SECONDS[unit or "s"]
    raise ValueError(f"{value!r} is not a duration such as '500ms', '10s' or '5m'")


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of a duration: 0.5 -> "500ms", 30 -> "30s", 300 -> "5m"."""
    if seconds == int(seconds):
        whole = int(seconds)
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if whole and whole % size == 0:
                return f"{whole // size}{unit}"
        return f"{whole}s"
    return f"{round(seconds * 1000)}ms"
