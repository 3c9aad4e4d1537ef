"""Service answers (SRV, A, AAAA at a service's own name) written straight into octets.

Under write churn, most answer-cache misses are these: a write drops one service's
answers, and the next questions about it are answered anew.  The general path builds
dnslib records (``authority.lookup``), packs them with name compression
(``packing.Packer``) and later takes the packed reply apart to put further orders
together (``packing.Arrangement``).  In these answers every name is known in advance:
each owner is a pointer to the question, each SRV target is written out whole (RFC
2782 forbids compressing it) and the owner of each target's address record points at
that target.  So a reply is the header, the question as sent, then one piece of octets
per record, each worked out once per instance (``_target_octets``) or per RRset, and
the pointers; an order is a join of pieces.

The orders are drawn as ``authority`` draws them (``authority.shuffle`` for SRV,
``authority.AddressOrders`` for addresses), by the same calls on the same generator, so
a reply is octet for octet the one the general path gives (a test asks both).  Whatever
is not the plain case goes to the general path, decided before any number is drawn: a
tag, another type, no answerable instance (NXDOMAIN) or none of the family (NODATA), an
RRset over ``udp_answer_limit`` records, a reply over its size limit (the general path
drops additional records or truncates), a pointer past 16383 octets, a target name over
255 octets, a TTL that cannot be written.
"""

from __future__ import annotations

import functools
import random
import struct
from collections.abc import Sequence

from dnslib import QTYPE  # type: ignore[import-untyped]

from srvdns.catalog import ServiceView
from srvdns.config import ZoneConfig
from srvdns.model import Instance
from srvdns.nameserver import authority, records
from srvdns.nameserver.packing import MAX_POINTER, name_octets

_A, _AAAA, _SRV = QTYPE.A, QTYPE.AAAA, QTYPE.SRV
_IN = 1
_TTL_MAX = 0xFFFFFFFF
_HEADER = struct.Struct("!6H")
_OWNER = b"\xc0\x0c"
"""A pointer to the question's name, the owner of every answer record here."""
_FIXED = struct.Struct("!HHIH")
"""TYPE, CLASS, TTL and RDLENGTH."""
_SRV_FIXED = struct.Struct("!HHI")
"""An SRV record's TYPE, CLASS and TTL: its RDLENGTH comes with its RDATA."""
_SRV_DATA = struct.Struct("!HHHH")
"""An SRV record's RDLENGTH, then its priority, weight and port."""
_POINTER = struct.Struct("!H")
_TARGET_AT = len(_OWNER) + _SRV_FIXED.size + _SRV_DATA.size
"""Where an SRV record's target starts, from the start of the record."""

TYPES = frozenset({_SRV, _A, _AAAA})
"""The question types answered here."""


class _Replies:
    """The replies of one answer, each in an order of its own, between ``head`` (header
    and question) and ``tail`` (the OPT record, or nothing); ``rng`` draws the orders."""

    __slots__ = ("_head", "_rng", "_tail")

    def __init__(self, head: bytes, tail: bytes, rng: random.Random) -> None:
        self._head = head
        self._tail = tail
        self._rng = rng

    def keep(self) -> None:
        """The answer is cached: nothing more to hold than this object."""


class TargetReplies(_Replies):
    """The replies of one SRV answer: a call shuffles the previous ``order`` in place,
    as ``authority._ShuffledTargets.draw`` does, and joins the records' octets in it (the
    first call makes the first reply)."""

    __slots__ = ("_addresses", "_order", "_srvs")

    def __init__(
        self,
        head: bytes,
        tail: bytes,
        rng: random.Random,
        srvs: list[bytes],
        addresses: list[bytes],
        order: list[int],
    ) -> None:
        super().__init__(head, tail, rng)
        self._srvs = srvs
        self._addresses = addresses
        self._order = order

    def join(self) -> bytes:
        """The reply in the current order."""
        at = len(self._head)
        srvs, addresses = self._srvs, self._addresses
        parts = [self._head]
        owners = []
        pointer = _POINTER.pack
        for n in self._order:
            piece = srvs[n]
            parts.append(piece)
            owners.append(pointer(0xC000 | (at + _TARGET_AT)))
            at += len(piece)
        for n, owner in zip(self._order, owners, strict=True):
            parts.append(owner)
            parts.append(addresses[n])
        parts.append(self._tail)
        return b"".join(parts)

    def __call__(self) -> bytes:
        authority.shuffle(self._order, self._rng)
        return self.join()


class AddressReplies(_Replies):
    """The replies of one address answer: a call draws an order anew, as
    ``authority._WeightedAddresses.draw`` does, and joins the records' octets in it (the
    first call makes the first reply)."""

    __slots__ = ("_orders", "_pieces")

    def __init__(
        self,
        head: bytes,
        tail: bytes,
        rng: random.Random,
        pieces: list[bytes],
        orders: authority.AddressOrders,
    ) -> None:
        super().__init__(head, tail, rng)
        self._pieces = pieces
        self._orders = orders

    def join(self, order: Sequence[int]) -> bytes:
        """The reply with the records at the places ``order``."""
        pieces = self._pieces
        return b"".join([self._head, *[pieces[n] for n in order], self._tail])

    def __call__(self) -> bytes:
        return self.join(self._orders.order(self._rng))


Replies = TargetReplies | AddressReplies


def service_reply(
    view: ServiceView,
    instances: list[Instance],
    zone: ZoneConfig,
    head: tuple[int, int, bytes],
    qtype: int,
    tail: bytes,
    limit: int,
    answer_limit: int | None,
    now: float,
    rng: random.Random,
) -> tuple[bytes, Replies | None] | None:
    """The reply of ``qtype`` (SRV, A or AAAA) about ``instances``, the answerable ones
    of ``view`` at ``now`` (at least one), and what makes the replies in further orders (None
    when the records have one order); None when the general path answers instead (see
    the module's docstring).

    ``head`` is the reply's message ID, its flags and the question as sent; ``tail`` the
    OPT record (or nothing); ``limit`` the largest reply; ``answer_limit`` the most
    records of the RRset (None: no limit).
    """
    ttl = zone.ttl_for(view.name)
    if qtype == _SRV:
        return _targets(view, instances, zone.name, ttl, head, tail, limit, answer_limit, now, rng)
    want_v6 = qtype == _AAAA
    # ``records.is_ipv6``, inline, as ``authority._instances`` does
    eligible = [i for i in instances if (":" in i.address) is want_v6]
    if not eligible:
        return None
    rrset_ttl = authority.capped_ttl(ttl, eligible, now)
    unique: dict[str, int] = {}  # address -> its record's place in the RRset
    places = [unique.setdefault(i.address, len(unique)) for i in eligible]
    count = len(unique)
    if (answer_limit is not None and count > answer_limit) or rrset_ttl > _TTL_MAX:
        return None
    data = records.aaaa_data if want_v6 else records.a_data
    raws = [data(ip).wire for ip in unique]
    owner = _OWNER + _FIXED.pack(qtype, _IN, rrset_ttl, len(raws[0]))
    pieces = [owner + raw for raw in raws]
    msg_id, flags, question = head
    header = _HEADER.pack(msg_id, flags, 1, count, 0, 1 if tail else 0) + question
    if len(header) + len(pieces[0]) * count + len(tail) > limit:
        return None
    weights = [(i.priority, i.srv_weight) for i in eligible]
    drawn = authority.AddressOrders(weights, places, count)
    replies = AddressReplies(header, tail, rng, pieces, drawn)
    return replies(), (replies if count > 1 else None)


def _targets(
    view: ServiceView,
    instances: list[Instance],
    zone: str,
    ttl: int,
    head: tuple[int, int, bytes],
    tail: bytes,
    limit: int,
    answer_limit: int | None,
    now: float,
    rng: random.Random,
) -> tuple[bytes, Replies | None] | None:
    """SRV records of ``instances`` with their targets' address records, as
    ``authority._service_targets`` gives them."""
    rests: list[bytes] = []
    addresses: list[bytes] = []
    rrset_ttl = ttl
    for own, built in authority.each_target(view, instances, zone, ttl, now, _target_octets):
        if built is None:
            return None
        rests.append(built[0])
        addresses.append(built[1])
        if own < rrset_ttl:
            rrset_ttl = own
    count = len(rests)
    if answer_limit is not None and count > answer_limit:
        return None  # (every TTL is writable: ``target_records`` checked each instance's)
    fixed = _OWNER + _SRV_FIXED.pack(_SRV, _IN, rrset_ttl)
    srvs = [fixed + rest for rest in rests]
    msg_id, flags, question = head
    header = _HEADER.pack(msg_id, flags, 1, count, 0, count + (1 if tail else 0)) + question
    answers = len(header) + sum(map(len, srvs))
    if answers - min(map(len, srvs)) + _TARGET_AT > MAX_POINTER:
        return None  # the last record's target, in some order, could not be pointed at
    if answers + (2 * count) + sum(map(len, addresses)) + len(tail) > limit:
        return None
    replies = TargetReplies(header, tail, rng, srvs, addresses, list(range(count)))
    return replies(), (replies if count > 1 else None)


@functools.lru_cache(maxsize=8192)
def _target_octets(
    label: str, service: str, zone: str, priority: int, weight: int, port: int, ip: str, ttl: int
) -> tuple[bytes, bytes] | None:
    """An instance's SRV RDLENGTH and RDATA, and its target's address record after the
    owner name (``ttl``: the instance's own capped TTL), as octets; None when the target
    cannot exist (``authority.target_records``, which checks every field)."""
    built = authority.target_records(label, service, zone, priority, weight, port, ip, ttl)
    if built is None:
        return None
    srv, address = built
    target = name_octets(srv.target.label)
    raw = address.rdata.wire
    return (
        _SRV_DATA.pack(_SRV_DATA.size - 2 + len(target), srv.priority, srv.weight, srv.port)
        + target,
        _FIXED.pack(address.rtype, _IN, ttl, len(raw)) + raw,
    )
