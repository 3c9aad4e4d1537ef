"""TSIG (RFC 8945): reading signed requests and signing replies, on dnspython's HMAC code.

dnspython checks MACs and times; this module turns its outcomes into what RFC 8945 §5.2
asks a server to answer, and signs packed replies, one message or a sequence (§5.3.1).
"""

from __future__ import annotations

import enum
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.tsig

FUDGE = 300
"""Seconds of clock difference a signature may carry (RFC 8945 §10 recommends 300)."""

_ARCOUNT = 10

_TSIG: Any = dns.rdtypes.ANY.TSIG.TSIG  # dnspython's constructors and sign() are untyped
_sign: Any = dns.tsig.sign


class Verdict(enum.Enum):
    """What the TSIG record of a request, if any, says."""

    UNSIGNED = "unsigned"
    VALID = "valid"
    BADKEY = "badkey"
    """Signed with a key name we do not know (or another algorithm)."""
    BADSIG = "badsig"
    BADTIME = "badtime"


_ERRORS = {
    Verdict.BADKEY: dns.rcode.BADKEY,
    Verdict.BADSIG: dns.rcode.BADSIG,
    Verdict.BADTIME: dns.rcode.BADTIME,
}


@dataclass(frozen=True)
class Signed:
    """A parsed request and its TSIG verdict; ``key`` is set only when VALID."""

    message: dns.message.Message
    verdict: Verdict
    key: dns.tsig.Key | None = None

    @property
    def key_name(self) -> str | None:
        """The key the request was signed with, valid or not (lower-case, no dot)."""
        if self.message.tsig is None:
            return None
        return self.message.tsig.name.to_text(omit_final_dot=True).lower()


class Keyring:
    """The configured keys by name (lower-case, without the final dot)."""

    def __init__(self, secrets: Mapping[str, tuple[str, bytes]]) -> None:
        self._keys = {
            dns.name.from_text(name): dns.tsig.Key(name + ".", secret, algorithm)
            for name, (algorithm, secret) in secrets.items()
        }

    def __bool__(self) -> bool:
        return bool(self._keys)

    def get(self, name: str) -> dns.tsig.Key | None:
        """The key called ``name``, or None."""
        return self._keys.get(dns.name.from_text(name))

    def read(self, wire: bytes) -> Signed:
        """Parse ``wire`` and check its signature.

        Raises dns.exception.DNSException when it does not parse.
        """

        def known(_message: dns.message.Message, name: dns.name.Name) -> dns.tsig.Key | bool:
            return self._keys.get(name.canonicalize(), False)

        try:
            message = dns.message.from_wire(wire, keyring=known)
        except dns.tsig.BadSignature:
            return Signed(_unchecked(wire), Verdict.BADSIG)
        except dns.tsig.BadTime:
            return Signed(_unchecked(wire), Verdict.BADTIME)
        except (dns.tsig.BadAlgorithm, dns.tsig.BadKey):
            return Signed(_unchecked(wire), Verdict.BADKEY)
        if message.tsig is None:
            return Signed(message, Verdict.UNSIGNED)
        key = message.keyring
        if not isinstance(key, dns.tsig.Key):
            return Signed(message, Verdict.BADKEY)
        return Signed(message, Verdict.VALID, key)


def _unchecked(wire: bytes) -> dns.message.Message:
    return dns.message.from_wire(wire, keyring=lambda _m, _n: False)


class Signer:
    """Signs the replies to one request: each message of a transfer continues the MAC
    chain of the one before (RFC 8945 §5.3.1)."""

    def __init__(self, request: Signed) -> None:
        self._request = request
        self._ctx: object = None
        self._multi = False

    def sign(self, wire: bytes) -> bytes:
        """``wire`` with a TSIG record appended: signed for a valid request, with an
        empty MAC and the error for a failed one (RFC 8945 §5.3.2), as is otherwise."""
        request = self._request
        tsig = request.message.tsig
        if request.verdict is Verdict.UNSIGNED or tsig is None:
            return wire
        rdata = tsig[0]
        original_id = struct.unpack_from("!H", wire)[0]
        if request.verdict is not Verdict.VALID or request.key is None:
            error = _ERRORS[request.verdict]
            other = struct.pack("!HI", int(time.time()) >> 32, int(time.time()) & 0xFFFFFFFF)
            unsigned = _TSIG(
                dns.rdataclass.ANY,
                dns.rdatatype.TSIG,
                rdata.algorithm,
                int(time.time()),
                FUDGE,
                b"",
                original_id,
                error,
                other if request.verdict is Verdict.BADTIME else b"",
            )
            return _append(wire, tsig.name, unsigned)
        template = _TSIG(
            dns.rdataclass.ANY,
            dns.rdatatype.TSIG,
            request.key.algorithm,
            0,
            FUDGE,
            b"",
            original_id,
            0,
            b"",
        )
        mac = b"" if self._multi else request.message.mac
        signed, ctx = _sign(wire, request.key, template, int(time.time()), mac, self._ctx, True)
        self._ctx, self._multi = ctx, True
        return _append(wire, tsig.name, signed)


def _append(wire: bytes, owner: dns.name.Name, rdata: dns.rdtypes.ANY.TSIG.TSIG) -> bytes:
    """``wire`` with the TSIG RR added at the end of the additional section."""
    rdata_wire = rdata.to_wire()
    owner_wire = owner.to_wire()
    assert rdata_wire is not None
    assert owner_wire is not None
    record = (
        owner_wire
        + struct.pack("!HHIH", dns.rdatatype.TSIG, dns.rdataclass.ANY, 0, len(rdata_wire))
        + rdata_wire
    )
    (arcount,) = struct.unpack_from("!H", wire, _ARCOUNT)
    return wire[:_ARCOUNT] + struct.pack("!H", arcount + 1) + wire[_ARCOUNT + 2 :] + record


def parses(wire: bytes) -> bool:
    """Whether ``wire`` is a DNS message dnspython can read at all (signature unchecked)."""
    try:
        _unchecked(wire)
    except dns.exception.DNSException:
        return False
    return True
