"""One line per bad config file: the file, the TOML key as written, and what is wrong.

pydantic reports a problem at its own location: union members (``server.version.str``
and ``server.version.bool`` for one bad ``version``), validator names, the parent list
again ("Tuple should have at least 1 item") when an item in it failed, and the model
itself for a rule that spans keys.  ``describe`` turns that into what a person wrote in
the file - ``zone[0].ttl`` - once per key, the most telling problem first, all on one
line, as ``srvdns check-config`` prints it.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError


class KeyedValueError(ValueError):
    """A validation failure about a key below where the validator runs, such as
    ``zone[1].name`` for "the same zone is declared twice", found by a model validator
    of the whole file; ``key`` is relative to the validated model (``"zone[1].name"``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _key(loc: tuple[int | str, ...], data: Any, *, missing: bool) -> str:
    """The key path of ``loc`` as written in the TOML: only parts that are keys or
    indexes of ``data`` (a missing key, last, too), e.g. ``zone[0].soa.refresh``."""
    out, current = "", data
    for n, part in enumerate(loc):
        last = n == len(loc) - 1
        if isinstance(part, int) and isinstance(current, list) and 0 <= part < len(current):
            out += f"[{part}]"
            current = current[part]
        elif isinstance(current, dict) and part in current:
            out += ("." if out else "") + str(part)
            current = current[part]
        elif last and missing and isinstance(current, dict):
            out += ("." if out else "") + str(part)
    return out


def _join(base: str, relative: str) -> str:
    if not base:
        return relative
    return base + relative if relative.startswith("[") else f"{base}.{relative}"


_ORDER = {"extra_forbidden": 0, "missing": 2}


def describe(exc: ValidationError, data: Any, source: str) -> str:
    """``<source>: <key>: <problem>``, then ``; <key>: <problem>`` for each other key."""
    problems: dict[str, list[str]] = {}
    ranks: dict[str, int] = {}
    errors = exc.errors()
    keys = []
    for error in errors:
        key = _key(tuple(error["loc"]), data, missing=error["type"] == "missing")
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, KeyedValueError):
            key = _join(key, cause.key)
        keys.append(key)
    for error, key in zip(errors, keys, strict=True):
        if error["type"] == "too_short" and any(
            other.startswith(key + "[") for other in keys if other != key
        ):
            continue  # an item of the list failed; the list is not really too short
        message = _message(error)
        shown = key or "(top level)"
        if message not in problems.setdefault(shown, []):
            problems[shown].append(message)
        rank = _ORDER.get(error["type"], 1)
        ranks[shown] = min(ranks.get(shown, rank), rank)
    ordered = sorted(problems, key=lambda k: ranks[k])
    parts = [f"{key}: {_either(problems[key])}" for key in ordered]
    return f"{source}: " + "; ".join(parts)


_TYPES = {
    "model_type": "must be a table",
    "dict_type": "must be a table",
    "tuple_type": "must be an array",
    "list_type": "must be an array",
}


def _message(error: Any) -> str:
    """pydantic's message in the file's terms: keys, tables, arrays, "must be"."""
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind in _TYPES:
        return str(_TYPES[kind])
    if kind == "too_short":
        return f"must have at least {error.get('ctx', {}).get('min_length', 1)} item(s)"
    message = str(error["msg"]).removeprefix("Value error, ")
    message = message.removesuffix(", unable to interpret input")
    return message.replace("Input should be", "must be")


def _either(messages: list[str]) -> str:
    """Several problems with one key (the members of a union): "must be a or b"."""
    first, *others = messages
    return " or ".join([first, *(m.removeprefix("must be ") for m in others)])


_TOML_AT = re.compile(r"\(at line (\d+), column (\d+)\)")
_SHOWN_LINE = 80


def describe_toml(error: Exception, text: str, source: str) -> str:
    """A TOML syntax error with the offending line quoted, which names the key (tomllib
    says only "Cannot overwrite a value (at line 5, column 8)")."""
    message = str(error)
    match = _TOML_AT.search(message)
    if match is None:
        return f"{source}: not valid TOML: {message}"
    lines = text.splitlines()
    number = int(match.group(1))
    if not 1 <= number <= len(lines):
        return f"{source}: not valid TOML: {message}"
    line = lines[number - 1].strip()
    if len(line) > _SHOWN_LINE:
        line = line[: _SHOWN_LINE - 3] + "..."
    return f"{source}: not valid TOML: {message}: {line}"
