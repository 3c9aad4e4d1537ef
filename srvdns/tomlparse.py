"""TOML parsing for the config file: the standard library's parser, or a compiled one for
large files when the ``fast`` extra installed it.

``tomllib`` is pure Python: a config declaring 100,000 static instances (~5 MB) takes it
about 1.5 s, a third of such a server's start-up.  ``rtoml`` (Rust) reads the same file
about ten times faster.  It is used only for files of at least ``LARGE`` bytes, where
that matters, and any file it refuses is parsed again by ``tomllib``, so that every
error message is ``tomllib``'s whichever parser is installed.
"""

from __future__ import annotations

import tomllib
from typing import Any

LARGE = 256 * 1024
"""Files from this size on go to the compiled parser when it is installed."""

TOMLDecodeError = tomllib.TOMLDecodeError


def loads(text: str) -> dict[str, Any]:
    """Parse TOML ``text``; raises ``tomllib.TOMLDecodeError``."""
    if len(text) >= LARGE:
        try:
            import rtoml
        except ImportError:
            pass
        else:
            try:
                data = rtoml.loads(text)
            except Exception:  # tomllib names the problem below
                pass
            else:
                if isinstance(data, dict):
                    return data
    return tomllib.loads(text)
