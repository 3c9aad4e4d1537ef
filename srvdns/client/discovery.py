"""Discovery policy: SRV answers to instances, TTL cache, stale-on-error, breakers; sans-I/O."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import dns.resolver
import dns.rrset

from srvdns.client.breaker import Breakers
from srvdns.client.cache import TtlCache
from srvdns.client.effects import Policy, Query
from srvdns.client.errors import DiscoveryError, NoInstancesError
from srvdns.client.selection import rfc2782_order

log = logging.getLogger("srvdns.client")

DEFAULT_ZONE = "service.local"


@dataclass(frozen=True, slots=True)
class Instance:
    """One instance of a service as DNS publishes it: an SRV record and its target's address."""

    service: str
    target: str
    """The SRV target, absolute and lower-case (``web-1.instance.web.service.local.``)."""
    address: str
    """The target's IPv4 address, or its IPv6 address when it has no IPv4 one."""
    port: int
    priority: int
    weight: int

    @property
    def key(self) -> tuple[str, int]:
        """What its circuit breaker is known by."""
        return (self.target, self.port)

    @property
    def netloc(self) -> str:
        """``address:port``, the address in brackets if it is IPv6."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"

    def url(self, path: str = "/", scheme: str = "http") -> str:
        """``scheme://address:port/path``."""
        return f"{scheme}://{self.netloc}/{path.lstrip('/')}"


Found = tuple[Instance, ...]


class Discovery:
    """What the resolvers share: lookups (cached for the answer's TTL, stale on error),
    RFC 2782 ordering and the per-instance breakers.

    ``clock`` is monotonic seconds, ``rng`` the only source of randomness; both are
    injectable for tests.  An answer is fresh for the smallest TTL among its SRV RRset
    and the address records used, counted from when the query was sent; NXDOMAIN and
    NODATA mean no instances, cached for the negative TTL of RFC 2308 §5.
    """

    def __init__(
        self,
        zone: str = DEFAULT_ZONE,
        *,
        clock: Callable[[], float],
        rng: random.Random,
        stale_for: float = 60.0,
        recheck: float = 1.0,
        failure_threshold: int = 3,
        cooldown: float = 10.0,
    ) -> None:
        self.zone = zone.strip(".").lower()
        self.clock = clock
        self.rng = rng
        self.cache: TtlCache[Found] = TtlCache(stale_for=stale_for, recheck=recheck)
        self.breakers = Breakers(clock, threshold=failure_threshold, cooldown=cooldown)

    def qname(self, service: str, tag: str | None = None) -> str:
        """The name that lists the instances: ``[<tag>.]<service>.<zone>.``."""
        labels = [service] if tag is None else [tag, service]
        return ".".join([*labels, self.zone]).lower() + "."

    def lookup(self, service: str, tag: str | None = None) -> Policy[Found]:
        """The instances of ``service`` (carrying ``tag``), from the cache while it is fresh.

        When srvdns cannot answer (timeout, SERVFAIL, REFUSED) the last answer is served
        for up to ``stale_for`` seconds after it expired; after that, DiscoveryError.
        """
        qname = self.qname(service, tag)
        sent = self.clock()
        cached = self.cache.fresh(qname, sent)
        if cached is not None:
            return cached
        try:
            found, ttl = yield from self._fetch(service, qname)
        except (dns.exception.DNSException, OSError) as exc:
            stale = self.cache.stale(qname, self.clock())
            if stale is None:
                raise DiscoveryError(f"cannot resolve {qname} SRV: {exc}") from exc
            log.warning("serving a stale answer for %s: %s", qname, exc)
            return stale
        self.cache.put(qname, found, ttl, sent)
        return found

    def ordered(self, found: Iterable[Instance]) -> list[Instance]:
        """``found`` in RFC 2782 order, whatever their circuits."""
        return rfc2782_order(list(found), self.rng)

    def usable(self, found: Iterable[Instance]) -> list[Instance]:
        """The instances whose circuit lets a request through, in RFC 2782 order."""
        return self.ordered(i for i in found if self.breakers.available(i.key))

    def pick(self, found: Found, service: str) -> Instance:
        """The instance to use next: RFC 2782's choice among those whose circuit is not open
        (claiming a half-open circuit's trial).  NoInstancesError when there is none."""
        for instance in self.usable(found):
            if self.breakers.acquire(instance.key):
                return instance
        raise self.no_instances(found, service)

    def report(self, instance: Instance, ok: bool) -> None:
        """Tell the breaker how a request to ``instance`` went."""
        if ok:
            self.breakers.succeeded(instance.key)
        else:
            self.breakers.failed(instance.key)

    def no_instances(self, found: Found, service: str) -> NoInstancesError:
        """The error for a service none of whose ``found`` instances can be used now."""
        if not found:
            return NoInstancesError(f"{service}: no instances in {self.zone}")
        return NoInstancesError(f"{service}: the circuits of all {len(found)} instances are open")

    def _fetch(self, service: str, qname: str) -> Policy[tuple[Found, float]]:
        try:
            answer: dns.resolver.Answer = yield Query(qname, "SRV")
        except dns.resolver.NXDOMAIN as exc:
            responses = exc.kwargs.get("responses") or {}
            return (), _negative_ttl(next(iter(responses.values()), None))
        if answer.rrset is None:
            return (), _negative_ttl(answer.response)
        ttl = float(answer.rrset.ttl)
        glue = _addresses(answer.response.additional)
        instances = []
        for srv in answer.rrset:
            if srv.target == dns.name.root:  # RFC 2782: "." means not available here
                continue
            target = srv.target.to_text().lower()
            address = glue.get(target)
            if address is None:
                address = yield from self._address(target)
            if address is None:
                continue
            ttl = min(ttl, address[1])
            instances.append(
                Instance(service, target, address[0], srv.port, srv.priority, srv.weight)
            )
        return tuple(instances), ttl

    def _address(self, target: str) -> Policy[tuple[str, float] | None]:
        """A target left out of the additional section: ask for its A, then its AAAA."""
        for rdtype in ("A", "AAAA"):
            try:
                answer: dns.resolver.Answer = yield Query(target, rdtype)
            except dns.resolver.NXDOMAIN:
                return None
            if answer.rrset is not None:
                return answer.rrset[0].to_text(), float(answer.rrset.ttl)
        return None


def _addresses(rrsets: Iterable[dns.rrset.RRset]) -> dict[str, tuple[str, float]]:
    """Target name -> (address, TTL) from an additional section; IPv4 preferred."""
    found: dict[str, tuple[str, float]] = {}
    for rrset in rrsets:
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA) and len(rrset):
            name = rrset.name.to_text().lower()
            entry = (rrset[0].to_text(), float(rrset.ttl))
            if rrset.rdtype == dns.rdatatype.A:
                found[name] = entry
            else:
                found.setdefault(name, entry)
    return found


def _negative_ttl(response: dns.message.Message | None) -> float:
    """RFC 2308 §5: a negative answer is cached for min(SOA TTL, SOA minimum); 0 without SOA."""
    if response is not None:
        for rrset in response.authority:
            if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
                return float(min(rrset.ttl, rrset[0].minimum))
    return 0.0
