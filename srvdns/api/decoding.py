"""Why a request body is not JSON, in words a client can act on.

FastAPI turns a ``json.JSONDecodeError`` into a field error, but any other failure of
``json.loads`` - octets that are not UTF-8, nesting deeper than the parser's recursion
limit, an integer of more than 4300 digits - into a bare "There was an error parsing
the body".  Both APIs (native and Consul) name the reason instead.
"""

from __future__ import annotations

import json
import sys

FASTAPI_PARSE_ERROR = "There was an error parsing the body"
"""The detail of the HTTPException FastAPI raises, with the failure as its cause."""


def decode_failure(exc: BaseException) -> str:
    """What went wrong decoding a JSON body, from the exception ``json.loads`` raised."""
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 (octet 0x{exc.object[exc.start]:02x} at {exc.start})"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return f"a number with more than {sys.get_int_max_str_digits()} digits"
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc) or type(exc).__name__


def loads(raw: bytes) -> object:
    """``json.loads``, raising ValueError with ``decode_failure``'s words on any failure."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ValueError(decode_failure(exc)) from None
