"""Test doubles of the client library's tests: a clock, and a name server that answers
from zone-file text through the ``Query`` effect."""

from __future__ import annotations

import textwrap
from typing import Any

import dns.exception
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from srvdns.client.effects import Effect, Query

SOA = "service.local. 5 IN SOA ns.service.local. hostmaster.service.local. 1 3600 600 86400 3"


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def message(qname: str, rdtype: str, sections: str, rcode: str = "NOERROR") -> dns.message.Message:
    """A response to ``qname rdtype`` whose sections are written as zone-file text:
    lines under ``;ANSWER``, ``;AUTHORITY`` and ``;ADDITIONAL`` headings."""
    text = (
        f"id 1\nopcode QUERY\nrcode {rcode}\nflags QR AA\n;QUESTION\n{qname} IN {rdtype}\n"
        + textwrap.dedent(sections)
    )
    return dns.message.from_text(text)


class FakeDns:
    """Answers queries from ``zone``: (qname, rdtype) -> section text, or an exception to
    raise; a name absent from it is NXDOMAIN with the SOA.  ``asked`` records every query."""

    def __init__(self) -> None:
        self.zone: dict[tuple[str, str], str | Exception] = {}
        self.asked: list[tuple[str, str]] = []
        self.down: Exception | None = None

    def set(self, qname: str, rdtype: str, sections: str | Exception) -> None:
        self.zone[(qname, rdtype)] = sections

    def perform(self, effect: Effect) -> Any:
        assert isinstance(effect, Query), effect
        self.asked.append((effect.qname, effect.rdtype))
        if self.down is not None:
            raise self.down
        name = dns.name.from_text(effect.qname)
        rdtype = dns.rdatatype.from_text(effect.rdtype)
        found = self.zone.get((effect.qname, effect.rdtype))
        if isinstance(found, Exception):
            raise found
        if found is None and not any(q == effect.qname for q, _ in self.zone):
            response = message(effect.qname, effect.rdtype, f";AUTHORITY\n{SOA}\n", "NXDOMAIN")
            raise dns.resolver.NXDOMAIN(qnames=[name], responses={name: response})
        sections = found if found is not None else f";AUTHORITY\n{SOA}\n"
        response = message(effect.qname, effect.rdtype, sections)
        return dns.resolver.Answer(name, rdtype, dns.rdataclass.IN, response)

    async def aperform(self, effect: Effect) -> Any:
        return self.perform(effect)


def srv_sections(
    *instances: tuple[str, int, int, int, str], ttl: int = 5, owner: str = "web.service.local."
) -> str:
    """Sections of an SRV answer of web's instances: (label, priority, weight, port, ip)."""
    answer = [
        f"{owner} {ttl} IN SRV {p} {w} {port} {label}.instance.web.service.local."
        for label, p, w, port, _ in instances
    ]
    additional = [
        f"{label}.instance.web.service.local. {ttl} IN A {ip}" for label, _, _, _, ip in instances
    ]
    return ";ANSWER\n" + "\n".join(answer) + "\n;ADDITIONAL\n" + "\n".join(additional) + "\n"
