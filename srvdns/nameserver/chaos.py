"""CHAOS-class TXT answers: the server's version and identity, as NSD and BIND give them."""

from __future__ import annotations

from dnslib import CLASS, QTYPE, RR, TXT, DNSLabel  # type: ignore[import-untyped]

from srvdns.nameserver.names import Labels

VERSION_NAMES = frozenset({("version", "bind"), ("version", "server")})
"""Names that ask for the server's version (RFC 4892 §2.2 and BIND's convention)."""

IDENTITY_NAMES = frozenset({("id", "server"), ("hostname", "bind")})
"""Names that ask which server answered (RFC 4892 §2.1 and BIND's convention)."""


def chaos_txt(
    qname: Labels, owner: DNSLabel, qtype: int, *, version: str | None, identity: str | None
) -> RR | None:
    """The ``CH TXT`` record for ``qname`` (lower-case labels), or None to refuse.

    Like NSD and Knot: TXT (or ANY) at version.bind / version.server answers
    ``version``, at id.server / hostname.bind ``identity``, TTL 0 and class CH, with
    ``owner`` (the name as asked) and without AA; None when that text is not
    configured, for any other type and for any other name.
    """
    if qtype not in (QTYPE.TXT, QTYPE.ANY):
        return None
    if qname in VERSION_NAMES:
        text = version
    elif qname in IDENTITY_NAMES:
        text = identity
    else:
        return None
    if text is None:
        return None
    return RR(owner, QTYPE.TXT, rclass=CLASS.CH, ttl=0, rdata=TXT([text.encode()[:255]]))
