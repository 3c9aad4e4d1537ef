"""Resolvers: ``Resolver`` (blocking) and ``AsyncResolver`` (asyncio) around dnspython."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import dns.asyncresolver
import dns.nameserver
import dns.resolver

from srvdns.client.discovery import DEFAULT_ZONE, Discovery, Found, Instance
from srvdns.client.effects import Effect, Query, arun, run
from srvdns.client.errors import ClientError

DNS_ENV = "SRVDNS_DNS"
"""Name servers to ask when none are given: ``host:port`` items separated by commas."""

Nameserver = tuple[str, int] | str
"""``("127.0.0.1", 8053)``, ``"127.0.0.1:8053"``, ``"[::1]:8053"`` or a bare address (port 53)."""


def parse_nameserver(value: Nameserver) -> dns.nameserver.Do53Nameserver:
    """A name server address as dnspython takes it."""
    if isinstance(value, tuple):
        host, port = value
    else:
        text = value.strip()
        host, port = text, 53
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else 53
        elif text.count(":") == 1:
            name, _, digits = text.partition(":")
            host, port = name, int(digits)
    if not host:
        raise ClientError(f"{value!r} is not a name server address such as 127.0.0.1:8053")
    return dns.nameserver.Do53Nameserver(host, port)


def configured_nameservers(
    nameservers: Sequence[Nameserver] | None,
) -> list[dns.nameserver.Do53Nameserver] | None:
    """The given name servers, else those of ``$SRVDNS_DNS``, else None (resolv.conf)."""
    if nameservers is None:
        env = os.environ.get(DNS_ENV, "").strip()
        nameservers = [item for item in env.split(",") if item.strip()] or None
    if nameservers is None:
        return None
    return [parse_nameserver(ns) for ns in nameservers]


class _ResolverBase:
    """What both resolvers share: configuration, the discovery policy, breaker reports."""

    def __init__(
        self,
        nameservers: Sequence[Nameserver] | None = None,
        *,
        zone: str = DEFAULT_ZONE,
        timeout: float = 2.0,
        stale_for: float = 60.0,
        recheck: float = 1.0,
        failure_threshold: int = 3,
        cooldown: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.core = Discovery(
            zone,
            clock=clock,
            rng=rng or random.Random(),
            stale_for=stale_for,
            recheck=recheck,
            failure_threshold=failure_threshold,
            cooldown=cooldown,
        )
        servers = configured_nameservers(nameservers)
        self._dns = self._new_dns(configure=servers is None)
        if servers is not None:
            self._dns.nameservers = servers
        self._dns.cache = None  # the policy caches, for exactly the TTL
        self._dns.lifetime = timeout
        self._dns.timeout = timeout

    def _new_dns(self, *, configure: bool) -> dns.resolver.BaseResolver:
        raise NotImplementedError

    def report(self, instance: Instance, ok: bool = True) -> None:
        """How a request to a discovered instance went: failures open its circuit."""
        self.core.report(instance, ok)


class Resolver(_ResolverBase):
    """Finds instances through DNS SRV, blocking; safe to share between threads.

    ``nameservers`` default to ``$SRVDNS_DNS``, else the system's resolv.conf; names are
    looked up under ``zone``.  ``timeout`` bounds one lookup.  Answers are cached for their
    TTL and served up to ``stale_for`` seconds past it while srvdns cannot answer (asked
    again at most every ``recheck`` seconds).  ``failure_threshold`` failed requests in a
    row open an instance's circuit for ``cooldown`` seconds.
    """

    _dns: dns.resolver.Resolver

    def _new_dns(self, *, configure: bool) -> dns.resolver.Resolver:
        return dns.resolver.Resolver(configure=configure)

    def perform(self, effect: Effect) -> Any:
        """Ask the name servers (the ``Query`` effect of the policy)."""
        if not isinstance(effect, Query):
            raise TypeError(f"a resolver cannot perform {effect!r}")
        return self._dns.resolve(
            effect.qname, effect.rdtype, raise_on_no_answer=False, search=False
        )

    def lookup(self, service: str, tag: str | None = None) -> Found:
        """Every instance DNS lists for ``service`` (with ``tag``), as DNS ordered them."""
        return run(self.core.lookup(service, tag), self.perform)

    def resolve(self, service: str, tag: str | None = None) -> list[Instance]:
        """Every instance DNS lists, in RFC 2782 order (a new random order every call)."""
        return self.core.ordered(self.lookup(service, tag))

    def discover(self, service: str, tag: str | None = None) -> Instance:
        """One instance to use, chosen per RFC 2782 among those whose circuit is not open.

        Report how it went with ``report``.  Raises NoInstancesError when there is none,
        DiscoveryError when srvdns cannot be asked and no stale answer is left.
        """
        return self.core.pick(self.lookup(service, tag), service)


class AsyncResolver(_ResolverBase):
    """``Resolver`` for asyncio: the same policy, with dnspython's asyncio resolver."""

    _dns: dns.asyncresolver.Resolver

    def _new_dns(self, *, configure: bool) -> dns.asyncresolver.Resolver:
        return dns.asyncresolver.Resolver(configure=configure)

    async def perform(self, effect: Effect) -> Any:
        """Ask the name servers (the ``Query`` effect of the policy)."""
        if not isinstance(effect, Query):
            raise TypeError(f"a resolver cannot perform {effect!r}")
        return await self._dns.resolve(
            effect.qname, effect.rdtype, raise_on_no_answer=False, search=False
        )

    async def lookup(self, service: str, tag: str | None = None) -> Found:
        """Every instance DNS lists for ``service`` (with ``tag``), as DNS ordered them."""
        return await arun(self.core.lookup(service, tag), self.perform)

    async def resolve(self, service: str, tag: str | None = None) -> list[Instance]:
        """Every instance DNS lists, in RFC 2782 order (a new random order every call)."""
        return self.core.ordered(await self.lookup(service, tag))

    async def discover(self, service: str, tag: str | None = None) -> Instance:
        """One instance to use; see ``Resolver.discover``."""
        return self.core.pick(await self.lookup(service, tag), service)


_default: Resolver | None = None
_default_lock = threading.Lock()


def default_resolver() -> Resolver:
    """The process-wide ``Resolver()`` that ``discover`` uses, created on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Resolver()
        return _default


def discover(service: str, tag: str | None = None) -> Instance:
    """One instance of ``service`` from the default resolver (``$SRVDNS_DNS`` or resolv.conf,
    zone service.local); see ``Resolver.discover``."""
    return default_resolver().discover(service, tag)
