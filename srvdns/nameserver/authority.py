"""The answer logic: (zone, snapshot, route, qtype, now, rng) -> Answer; pure."""

from __future__ import annotations

import enum
import functools
import math
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from dnslib import QTYPE, RR, DNSLabel  # type: ignore[import-untyped]

from srvdns.catalog import TARGET_PARENT_LABEL, Catalog, ServiceView
from srvdns.config import ZoneConfig
from srvdns.model import Instance
from srvdns.nameserver import records
from srvdns.nameserver.names import (
    Apex,
    NameServer,
    ProtocolParent,
    Route,
    ServiceName,
    TargetName,
    TargetParent,
)


class Outcome(enum.Enum):
    """What a lookup found; the handler alone turns it into rcode, AA and authority."""

    SUCCESS = "success"
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Answer:
    """The outcome of a lookup and the records of each response section.

    A negative answer's SOA is not here: the handler adds it (RFC 2308 §3).
    """

    outcome: Outcome
    answer: tuple[RR, ...] = ()
    authority: tuple[RR, ...] = ()
    additional: tuple[RR, ...] = ()
    reorder: Reordering | None = field(default=None, compare=False)
    """For records in a random order: the same records in another order drawn the same
    way (without building them again), e.g. to pack more orders of a cached answer."""


class Reordering(Protocol):
    """Further orders of one answer's records, each drawn as the first order was.

    An order is the places of each section's records in a fixed order of them
    (``draw``), so that a packed reply's records can be put together in it without a
    record or an ``Answer`` built (``packing.Arrangement``); ``answer`` makes the
    ``Answer`` of a draw, for packing anew.  Calling it does both.
    """

    def first_order(self) -> tuple[Sequence[int], Sequence[int]] | None:
        """The order of the answer it came with (None if not known), asked once before
        any draw: it holds nothing after."""

    def draw(self, rng: random.Random) -> tuple[Sequence[int], Sequence[int]]:
        """Another order: the places of the answer's records, then the additional
        ones', each a permutation (valid until the next draw)."""

    def answer(self, answer: Sequence[int], additional: Sequence[int]) -> Answer:
        """The answer of a draw, whose own ``reorder`` draws on from it."""

    def __call__(self, rng: random.Random) -> Answer:
        """``answer(*draw(rng))``."""


_A, _AAAA, _SRV, _TXT, _ANY = QTYPE.A, QTYPE.AAAA, QTYPE.SRV, QTYPE.TXT, QTYPE.ANY
"""The types of service answers, looked up once (``QTYPE.X`` is a method call)."""

NXDOMAIN = Answer(Outcome.NXDOMAIN)
NODATA = Answer(Outcome.NODATA)
REFUSED = Answer(Outcome.REFUSED)


class _Query:
    """One lookup's question and context.  A plain class, not a frozen dataclass: one is
    made per answer-cache miss, and a frozen dataclass sets each field through
    ``object.__setattr__`` (three times the cost)."""

    __slots__ = ("catalog", "now", "owner", "qtype", "rng", "zone")

    def __init__(
        self,
        zone: ZoneConfig,
        catalog: Catalog,
        owner: DNSLabel,
        qtype: int,
        now: float,
        rng: random.Random,
    ) -> None:
        self.zone = zone
        self.catalog = catalog
        self.owner = owner
        self.qtype = qtype
        self.now = now
        self.rng = rng


def lookup(
    zone: ZoneConfig,
    catalog: Catalog,
    route: Route,
    qtype: int,
    *,
    owner: DNSLabel,
    now: float,
    rng: random.Random,
) -> Answer:
    """Answer ``qtype`` at ``route`` from ``catalog``, with ``owner`` (the qname as asked,
    case preserved) as the answer's owner name.

    Only instances answerable at ``now`` exist: passing and warning ones (warning ones
    with their ``warning_weight``; only passing ones in a zone with ``only_passing``), or
    all of a service's instances while it is in panic mode (``catalog.in_panic``).  A
    name that does not exist is NXDOMAIN, and so is everything below it (RFC 8020 §2);
    an existing name without records of ``qtype`` - including an empty non-terminal - is
    NODATA (RFC 2308 §2.2).  ``ANY`` gets one RRset, never everything (RFC 8482 §4.2).
    ``rng`` alone orders the records.
    """
    query = _Query(zone, catalog, owner, qtype, now, rng)
    # isinstance, most frequent first: a ``match`` on class patterns reads
    # ``__match_args__`` for every capture.
    if isinstance(route, ServiceName):
        return _service(query, route.service, route.tag)
    if isinstance(route, TargetName):
        return _target(query, route.service, route.target)
    if isinstance(route, Apex):
        return _apex(query)
    if isinstance(route, NameServer):
        return _name_server(query, route.host)
    if isinstance(route, TargetParent):
        return _target_parent(query, route.service)
    if isinstance(route, ProtocolParent):
        return _protocol_parent(query, route.tag)
    return NXDOMAIN


def serial(catalog: Catalog) -> int:
    """The SOA serial: the registry's change counter in serial-number space (RFC 1982)."""
    return catalog.index % 2**32


def negative_ttl(zone: ZoneConfig) -> int:
    """RFC 2308 §5: a negative answer lives min(SOA TTL, SOA minimum) seconds."""
    return min(_soa_ttl(zone), _minimum(zone))


def zone_soa(zone: ZoneConfig, catalog: Catalog, *, owner: DNSLabel | None = None) -> RR:
    """The zone's SOA record (TTL = the SOA TTL; minimum = the negative TTL)."""
    return _soa(zone, catalog, owner, _soa_ttl(zone))


def negative_soa(zone: ZoneConfig, catalog: Catalog) -> RR:
    """The SOA for the authority section of NXDOMAIN and NODATA (RFC 2308 §3)."""
    return _soa(zone, catalog, None, negative_ttl(zone))


def capped_ttl(ttl: int, instances: Iterable[Instance], now: float) -> int:
    """``ttl``, shortened to the whole seconds left on the soonest-ending heartbeat lease,
    so that no resolver caches an instance past its lease; never below 0."""
    for instance in instances:
        expires = instance.lease_expires
        if expires is not None:
            ttl = min(ttl, max(0, math.floor(expires - now)))
    return ttl


def weighted_order(instances: Sequence[Instance], rng: random.Random) -> list[Instance]:
    """Instances by priority, then in a random order weighted by their SRV weight.

    RFC 2782: lower priorities first; within one, a target is picked with probability
    proportional to its weight, and weight 0 targets have a very small chance.  This is
    the Efraimidis-Spirakis sampling order (key ``u ** (1 / weight)``), weight 0 last.
    """

    order = _weighted_indices([(i.priority, i.srv_weight) for i in instances], rng)
    return [instances[index] for index in order]


def _weighted_indices(weights: Sequence[tuple[int, int]], rng: random.Random) -> list[int]:
    """The indices of ``(priority, weight)`` pairs in ``weighted_order``: one key drawn
    per pair in turn, ties kept in their order (a stable sort).  Apart so that a
    reordered answer draws from weights read once, not from the instances every time."""
    draw = rng.random
    keys: list[tuple[int, int, float, int]] = []
    for index, (priority, weight) in enumerate(weights):
        u = draw()
        if weight == 1:  # the usual weight: ``u ** 1.0`` is ``u``, exactly
            keys.append((priority, 0, -u, index))
        elif weight <= 0:
            keys.append((priority, 1, u, index))
        else:
            keys.append((priority, 0, -(u ** (1.0 / weight)), index))
    keys.sort()
    return [key[3] for key in keys]


def _soa_ttl(zone: ZoneConfig) -> int:
    return zone.ttl if zone.soa.ttl is None else zone.soa.ttl


def _minimum(zone: ZoneConfig) -> int:
    return zone.ttl if zone.negative_ttl is None else zone.negative_ttl


def _soa(zone: ZoneConfig, catalog: Catalog, owner: DNSLabel | None, ttl: int) -> RR:
    soa = zone.soa
    mname = soa.mname or zone.ns[0].name
    rname = soa.rname or f"hostmaster.{zone.name}"
    times = (serial(catalog), soa.refresh, soa.retry, soa.expire, _minimum(zone))
    origin = records.name(zone.name) if owner is None else owner
    return records.soa(origin, ttl, records.name(mname), records.name(rname), times)


def _address_records(owner: DNSLabel, ttl: int, addresses: Iterable[str], qtype: int) -> list[RR]:
    want_v6 = qtype == QTYPE.AAAA
    return [records.address(owner, ttl, ip) for ip in addresses if records.is_ipv6(ip) == want_v6]


def _in_zone_addresses(zone: ZoneConfig, host: str) -> tuple[str, ...]:
    for server in zone.ns:
        if server.name == host:
            return server.address
    return ()


def _apex(query: _Query) -> Answer:
    # NS records and in-zone NS host addresses are zone infrastructure, not service
    # data: they live as long as the SOA, not the (short) service TTL.
    zone = query.zone
    if query.qtype in (QTYPE.SOA, QTYPE.ANY):
        return Answer(Outcome.SUCCESS, (zone_soa(zone, query.catalog, owner=query.owner),))
    if query.qtype != QTYPE.NS:
        return NODATA
    ttl = _soa_ttl(zone)
    answer = tuple(records.ns(query.owner, ttl, records.name(s.name)) for s in zone.ns)
    glue = [
        records.address(records.name(server.name), ttl, ip)
        for server in zone.ns
        if server.name.endswith("." + zone.name)
        for ip in server.address
    ]
    return Answer(Outcome.SUCCESS, answer, additional=tuple(glue))


def _name_server(query: _Query, host: str) -> Answer:
    addresses = _in_zone_addresses(query.zone, f"{host}.{query.zone.name}")
    qtype = query.qtype
    if qtype == QTYPE.ANY:
        qtype = QTYPE.A if any(not records.is_ipv6(ip) for ip in addresses) else QTYPE.AAAA
    if qtype not in (QTYPE.A, QTYPE.AAAA):
        return NODATA
    answer = _address_records(query.owner, _soa_ttl(query.zone), addresses, qtype)
    return Answer(Outcome.SUCCESS, tuple(answer)) if answer else NODATA


@functools.lru_cache(maxsize=4096)
def _target_label(label: str, service: str, zone: str) -> DNSLabel | None:
    """``label.instance.service.zone``, or None over 255 octets (RFC 1035 §3.1).  Worked
    out once: the same targets are in every answer about a service, and a name is never
    changed once built."""
    name = records.name(f"{label}.{TARGET_PARENT_LABEL}.{service}.{zone}")
    return name if records.fits(name) else None


@functools.lru_cache(maxsize=8192)
def target_records(
    label: str, service: str, zone: str, priority: int, weight: int, port: int, ip: str, ttl: int
) -> tuple[records.PlainSRV, RR] | None:
    """An instance's SRV RDATA and the address record of its target (``ttl``: the
    instance's own capped TTL), or None when the target cannot exist (RFC 1035 §3.1: a
    target name over 255 octets, possible only under a zone name of more than 116
    characters).  Worked out once per instance as it is: a write replaces the snapshot's
    view of a service but keeps the instances it did not write, and records are never
    changed once built."""
    target = _target_label(label, service, zone)
    if target is None:
        return None
    return records.srv_data(priority, weight, port, target), records.address(target, ttl, ip)


_Built = TypeVar("_Built")


def each_target(
    view: ServiceView,
    instances: list[Instance],
    zone: str,
    ttl: int,
    now: float,
    build: Callable[[str, str, str, int, int, int, str, int], _Built],
) -> Iterator[tuple[int, _Built]]:
    """For each of ``instances`` of ``view``: its own TTL (``ttl`` capped by its lease
    alone) and what ``build`` makes of its target (``target_records``' arguments)."""
    service, target_of = view.name, view.target_of
    for instance in instances:
        own = ttl
        expires = instance.lease_expires
        if expires is not None:  # ``capped_ttl`` of the instance alone, inline
            own = min(ttl, max(0, math.floor(expires - now)))
        yield (
            own,
            build(
                target_of[instance.id],
                service,
                zone,
                instance.priority,
                instance.srv_weight,
                instance.port,
                instance.address,
                own,
            ),
        )


def _answerable(query: _Query, service: str) -> tuple[ServiceView | None, list[Instance]]:
    view = query.catalog.get_service(service)
    return view, ([] if view is None else view.answerable(query.now, query.zone))


def _service(query: _Query, service: str, tag: str | None) -> Answer:
    view = query.catalog.get_service(service)
    if view is None:
        return NXDOMAIN
    instances = view.answerable(query.now, query.zone)
    if tag is not None:
        instances = [i for i in instances if tag in i.tags]
    if not instances:
        return NXDOMAIN
    return _instances(query, view, instances)


def _instances(query: _Query, view: ServiceView, instances: list[Instance]) -> Answer:
    ttl = query.zone.ttl_for(view.name)
    qtype = query.qtype
    if qtype in (_SRV, _ANY):
        return _service_targets(query, view, instances, ttl)
    if qtype in (_A, _AAAA):
        want_v6 = qtype == _AAAA
        # ``records.is_ipv6``, inline: it is asked of every instance of every answer.
        eligible = [i for i in instances if (":" in i.address) is want_v6]
        if not eligible:
            return NODATA
        rrset_ttl = capped_ttl(ttl, eligible, query.now)
        unique: dict[str, int] = {}  # address -> its record's place in the RRset
        places = [unique.setdefault(i.address, len(unique)) for i in eligible]
        data = records.aaaa_data if want_v6 else records.a_data
        rrset = records.rrs(query.owner, qtype, rrset_ttl, [data(ip) for ip in unique])
        weights = [(i.priority, i.srv_weight) for i in eligible]
        return _WeightedAddresses(weights, places, rrset).first_answer(query.rng)
    if qtype == _TXT:
        with_meta = [i for i in instances if i.meta]
        texts = dict.fromkeys(_meta_strings(i) for i in with_meta)
        rrset_ttl = capped_ttl(ttl, with_meta, query.now)
        answer = [records.txt(query.owner, rrset_ttl, strings) for strings in texts]
        return Answer(Outcome.SUCCESS, tuple(answer)) if answer else NODATA
    return NODATA


def _service_targets(
    query: _Query, view: ServiceView, instances: list[Instance], ttl: int
) -> Answer:
    """SRV records of ``instances`` (the RRset's TTL capped by every lease), each target's
    address record (its own lease's cap) in the additional section; NODATA when no
    target can exist."""
    rdatas: list[records.PlainSRV] = []
    addresses: list[RR] = []
    rrset_ttl = ttl
    for own, built in each_target(view, instances, query.zone.name, ttl, query.now, target_records):
        if built is not None:
            rdatas.append(built[0])
            addresses.append(built[1])
            if own < rrset_ttl:
                rrset_ttl = own
    if not rdatas:
        return NODATA
    srvs = records.rrs(query.owner, _SRV, rrset_ttl, rdatas)
    return _shuffled_targets(srvs, addresses, query.rng)


class _ShuffledTargets:
    """SRV records in a random order, each target's address record in the same order.

    Each draw shuffles the previous order in place (``random.shuffle``, which draws the
    same numbers whatever the list holds): the order is the only state, the records are
    the lookup's own lists, never copied.
    """

    __slots__ = ("_addresses", "_order", "_srvs")

    def __init__(self, srvs: Sequence[RR], addresses: Sequence[RR], order: list[int]) -> None:
        self._srvs = srvs
        self._addresses = addresses
        self._order = order

    def first_order(self) -> tuple[Sequence[int], Sequence[int]] | None:
        order = self._order[:]
        return order, order

    def draw(self, rng: random.Random) -> tuple[Sequence[int], Sequence[int]]:
        order = self._order
        shuffle(order, rng)
        return order, order

    def answer(self, answer: Sequence[int], additional: Sequence[int]) -> Answer:
        return self._answer(
            answer, additional, _ShuffledTargets(self._srvs, self._addresses, list(answer))
        )

    def _answer(
        self, answer: Sequence[int], additional: Sequence[int], reorder: Reordering
    ) -> Answer:
        """The answer of a draw, whose further orders ``reorder`` draws: a new object
        from that order (``answer``), or this one for the first (``_shuffled_targets``)."""
        srvs, addresses = self._srvs, self._addresses
        return _success(
            tuple([srvs[n] for n in answer]), tuple([addresses[n] for n in additional]), reorder
        )

    def __call__(self, rng: random.Random) -> Answer:
        return self.answer(*self.draw(rng))


def shuffle(items: list[int], rng: random.Random) -> None:
    """``rng.shuffle(items)``: the same numbers drawn by the same calls, without a call of
    ``rng._randbelow`` per item.  CPython's ``shuffle`` draws each swap's place ``j``
    below ``i + 1`` by ``getrandbits`` of its bit length until one is below it; that is
    written out here for a ``random.Random`` itself (a subclass may draw otherwise: it
    gets ``rng.shuffle``).  A test checks both shuffle alike."""
    if type(rng) is not random.Random:
        rng.shuffle(items)
        return
    getrandbits = rng.getrandbits
    for i in range(len(items) - 1, 0, -1):
        bound = i + 1
        bits = bound.bit_length()
        j = getrandbits(bits)
        while j >= bound:
            j = getrandbits(bits)
        items[i], items[j] = items[j], items[i]


def _shuffled_targets(srvs: list[RR], addresses: list[RR], rng: random.Random) -> Answer:
    """The first order of ``_ShuffledTargets``: it becomes the answer's ``reorder``."""
    targets = _ShuffledTargets(srvs, addresses, list(range(len(srvs))))
    return targets._answer(*targets.draw(rng), targets)


class AddressOrders:
    """Orders of the address records of instances (their ``weights``, see
    ``_weighted_indices``, and the ``places`` of their addresses' records among ``count``)
    in ``weighted_order``, an address several instances share where it first comes.  The
    keys of the weighted order are drawn independently per instance, so ordering the
    instances of one family alone is the same draw as ordering all of them and keeping
    that family.

    When every instance has one priority and weight 1 (the usual case), a key is the
    number drawn itself, so the order is the places sorted by it, largest first (ties in
    their order, as the keys' sort keeps them): no key tuples built.  Apart from the
    records, so that answers written straight into octets (``serviceoctets``) draw the
    same orders from the same numbers.
    """

    __slots__ = ("_count", "_places", "_uniform", "_weights")

    def __init__(self, weights: list[tuple[int, int]], places: list[int], count: int) -> None:
        self._weights = weights
        self._places = places
        self._count = count
        first = weights[0]
        self._uniform = first[1] == 1 and weights.count(first) == len(weights)

    def order(self, rng: random.Random) -> list[int]:
        """Another order: the places of the records, a permutation of ``range(count)``."""
        weights = self._weights
        if len(weights) == 1:  # one key drawn, one order
            rng.random()
            return [0]
        if self._uniform:
            draw = rng.random
            keys = [draw() for _ in weights]
            order = sorted(range(len(keys)), key=keys.__getitem__, reverse=True)
        else:
            order = _weighted_indices(weights, rng)
        places = self._places
        if self._count < len(places):  # shared addresses; else places[i] == i
            order = list(dict.fromkeys([places[index] for index in order]))
        return order


class _WeightedAddresses(AddressOrders):
    """The records of an address RRset (``rrset``, at the ``places`` of
    ``AddressOrders``) in a weighted order."""

    __slots__ = ("_first", "_rrset")

    def __init__(self, weights: list[tuple[int, int]], places: list[int], rrset: list[RR]) -> None:
        super().__init__(weights, places, len(rrset))
        self._rrset = rrset
        self._first: Sequence[int] | None = None
        """The first answer's order, until ``first_order`` takes it."""

    def first_answer(self, rng: random.Random) -> Answer:
        """The first order, kept for ``first_order``."""
        order, _ = self.draw(rng)
        self._first = order
        return self.answer(order, ())

    def first_order(self) -> tuple[Sequence[int], Sequence[int]] | None:
        first, self._first = self._first, None
        return None if first is None else (first, ())

    def draw(self, rng: random.Random) -> tuple[Sequence[int], Sequence[int]]:
        return self.order(rng), ()

    def answer(self, answer: Sequence[int], additional: Sequence[int]) -> Answer:
        rrset = self._rrset
        return _success(tuple([rrset[place] for place in answer]), (), self)

    def __call__(self, rng: random.Random) -> Answer:
        return self.answer(*self.draw(rng))


def _success(
    answer: tuple[RR, ...],
    additional: tuple[RR, ...],
    reorder: Reordering,
) -> Answer:
    """``Answer(SUCCESS, answer, (), additional, reorder)``, its slots set directly: a
    frozen dataclass's own ``__init__`` sets each through ``object.__setattr__`` (twice
    the cost, on every answer-cache miss)."""
    made: Answer = _new(Answer)
    _set_outcome(made, Outcome.SUCCESS)
    _set_answer(made, answer)
    _set_authority(made, ())
    _set_additional(made, additional)
    _set_reorder(made, reorder)
    return made


_new = object.__new__
_set_outcome, _set_answer, _set_authority, _set_additional, _set_reorder = (
    Answer.__dict__[name].__set__
    for name in ("outcome", "answer", "authority", "additional", "reorder")
)


def _meta_strings(instance: Instance) -> tuple[str, ...]:
    return _strings_of(instance.meta)


@functools.lru_cache(maxsize=4096)
def _strings_of(meta: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """``key=value`` strings of metadata, sorted; worked out once per set of metadata
    (an instance's, kept by the writes that do not change it)."""
    return tuple(f"{key}={value}" for key, value in sorted(meta))


def _target(query: _Query, service: str, target: str) -> Answer:
    view = query.catalog.get_service(service)
    instance = None if view is None else view.targets.get(target)
    if view is None or instance is None or not view.selects(instance, query.now, query.zone):
        return NXDOMAIN
    ttl = capped_ttl(query.zone.ttl_for(view.name), [instance], query.now)
    qtype = query.qtype
    if qtype == QTYPE.ANY:
        qtype = QTYPE.AAAA if records.is_ipv6(instance.address) else QTYPE.A
    if qtype in (QTYPE.A, QTYPE.AAAA):
        answer = _address_records(query.owner, ttl, [instance.address], qtype)
        return Answer(Outcome.SUCCESS, tuple(answer)) if answer else NODATA
    if qtype == QTYPE.TXT and instance.meta:
        rr = records.txt(query.owner, ttl, _meta_strings(instance))
        return Answer(Outcome.SUCCESS, (rr,))
    return NODATA


def _target_parent(query: _Query, service: str) -> Answer:
    # ``instance.<service>`` is also the name of the tag "instance": data wins if any.
    view, instances = _answerable(query, service)
    if view is None or not instances:
        return NXDOMAIN
    tagged = [i for i in instances if TARGET_PARENT_LABEL in i.tags]
    return _instances(query, view, tagged) if tagged else NODATA


def _protocol_parent(query: _Query, tag: str | None) -> Answer:
    now = query.now
    for view in query.catalog.services.values():
        for instance in view.answerable(now, query.zone):
            if tag is None or tag in instance.tags:
                return NODATA
    return NXDOMAIN
