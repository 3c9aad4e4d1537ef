"""The page's files, read once from the installed package and served from memory.

Only files shipped in ``srvdns/ui/static`` exist; a name is looked up in that fixed
set, so no request can reach another file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import cache
from importlib import resources

from fastapi import Response

from srvdns.errors import NotFoundError

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


@cache
def files() -> Mapping[str, tuple[bytes, str, str]]:
    """name -> (content, media type, ETag) of every shipped file."""
    out = {}
    for entry in resources.files("srvdns.ui").joinpath("static").iterdir():
        suffix = entry.name[entry.name.rfind(".") :]
        if entry.is_file() and suffix in _TYPES:
            content = entry.read_bytes()
            etag = '"' + hashlib.sha256(content).hexdigest()[:16] + '"'
            out[entry.name] = (content, _TYPES[suffix], etag)
    return out


def response(name: str, headers: Mapping[str, str], if_none_match: str | None = None) -> Response:
    """The file ``name`` with ``headers``; raises NotFoundError for an unknown name.

    Revalidated on every load (``no-cache`` with an ETag, 304 when ``if_none_match``
    names it), so an upgrade is seen at once and an unchanged file is not sent again.
    """
    found = files().get(name)
    if found is None:
        raise NotFoundError(f"no file {name!r}")
    content, media_type, etag = found
    cache = {**headers, "ETag": etag, "Cache-Control": "no-cache"}
    if if_none_match is not None and etag in (tag.strip() for tag in if_none_match.split(",")):
        return Response(status_code=304, headers=cache)
    return Response(content, media_type=media_type, headers=cache)
