"""Pack a reply record by record with name compression, never past a size limit."""

from __future__ import annotations

import bisect
import itertools
import random
import struct
from collections.abc import Sequence

from dnslib import AAAA, QTYPE, RR, SRV, TXT, A, DNSBuffer, DNSLabel  # type: ignore[import-untyped]

from srvdns.nameserver.records import (
    TXT_STRING_MAX,
    PlainA,
    PlainAAAA,
    PlainSRV,
    PlainTXT,
)
from srvdns.nameserver.wire import HEADER_SIZE, MAX_LABEL, MAX_NAME, Question

MAX_POINTER = 0x3FFF
"""RFC 1035 §4.1.4: a pointer holds a 14-bit offset."""


_FIXED = struct.Struct("!HHIH")
"""TYPE, CLASS, TTL and RDLENGTH: what follows the owner name of every record."""
_SRV_FIXED = struct.Struct("!HHIHHHH")
"""The same, then an SRV record's priority, weight and port."""
_POINTER = struct.Struct("!H")
_HEADER = struct.Struct("!6H")
_LENGTHS = [bytes((n,)) for n in range(TXT_STRING_MAX + 1)]
"""The length octet of each <character-string> length."""


class _Name:
    """A name as written out, worked out once: the uncompressed wire form, each suffix
    (the keys of compression) and where in the wire form each suffix starts."""

    __slots__ = ("as_question", "starts", "suffixes", "wire")

    def __init__(self, labels: tuple[bytes, ...]) -> None:
        self.suffixes = tuple(labels[i:] for i in range(len(labels)))
        self.as_question: dict[tuple[bytes, ...], int] | None = None
        """Its suffixes' offsets when written as a message's question (``Packer``)."""
        starts = []
        wire = bytearray()
        for label in labels:
            starts.append(len(wire))
            wire.append(len(label))
            wire += label
        wire.append(0)
        self.starts = tuple(starts)
        self.wire = bytes(wire)


class _Buffer(DNSBuffer):  # type: ignore[misc]
    """dnslib's buffer with compression that is safe for large messages and can undo.

    RFC 1035 §4.1.4: a name may point to any prior occurrence of its suffix.  dnslib
    would also remember offsets past 16383, which a pointer cannot hold, and never
    remembers names written uncompressed (SRV targets, RFC 2782), so the owner of each
    SRV target's address record could not point back at the target.

    Writing only ever appends, so ``offset`` is always the length of ``data``.
    """

    fixed = 1 << 31
    """Where the records start: pointers to offsets from here on are ``links``, and names
    written out again from here on are ``repeated`` (past any message unless ``track``)."""

    settled = True
    """False once a record's name was compressed against only part of it, or not at all:
    then another order of the records could compress it differently."""

    def __init__(self) -> None:
        super().__init__()
        self._added: list[tuple[bytes, ...]] = []

    def track(self) -> None:
        """From now on, note what ``ArrangingPacker.arrangement`` needs to know."""
        self.fixed = self.offset
        self.links: list[tuple[int, int, tuple[bytes, ...]]] = []
        """(where, to, name) of each pointer to a whole name written in a record."""
        self.repeated: set[tuple[bytes, ...]] = set()
        """Suffixes written out in more than one record (the first is the one remembered),
        the longest of each name: its own suffixes are written out again too."""

    def remember(self, labels: Sequence[bytes], offset: int, count: int | None = None) -> None:
        """Record that the name ``labels`` is written out at ``offset``: its first
        ``count`` suffixes (all by default) can be pointed to from now on."""
        self._remember(_name(tuple(labels)), offset, count)

    def _remember(self, name: _Name, offset: int, count: int | None = None) -> None:
        names, added, fixed = self.names, self._added, self.fixed
        suffixes, starts = name.suffixes, name.starts
        for i in range(len(suffixes) if count is None else count):
            at = offset + starts[i]
            if at > MAX_POINTER:
                return
            suffix = suffixes[i]
            known = names.get(suffix)
            if known is not None:  # so are its own suffixes: they were remembered with it
                if known >= fixed:
                    self.repeated.add(suffix)
                return
            names[suffix] = at
            added.append(suffix)

    def encode_name(self, name: DNSLabel | str | bytes) -> None:
        self._encode(_name(_labels(name)))

    def _encode(self, name: _Name) -> None:
        """Write ``name``, its longest suffix already written out as a pointer."""
        data, names = self.data, self.names
        suffixes = name.suffixes
        if suffixes:
            pointer = names.get(suffixes[0])
            if pointer is not None:  # the whole name (most owners: the question's)
                if pointer >= self.fixed:
                    self.links.append((len(data), pointer, suffixes[0]))
                data += _POINTER.pack(0xC000 | pointer)
                self.offset = len(data)
                return
        start = len(data)
        self.settled = False
        for i in range(1, len(suffixes)):
            pointer = names.get(suffixes[i])
            if pointer is not None:
                data += name.wire[: name.starts[i]]
                data += _POINTER.pack(0xC000 | pointer)
                self.offset = len(data)
                self._remember(name, start, i)
                return
        data += name.wire
        self.offset = len(data)
        self._remember(name, start)

    def encode_name_nocompress(self, name: DNSLabel | str | bytes) -> None:
        encoded = _name(_labels(name))
        start = len(self.data)
        self.data += encoded.wire
        self.offset = len(self.data)
        self._remember(encoded, start)

    def pack_rr(self, rr: RR) -> None:
        """``rr.pack(self)``, written out directly for A, AAAA, SRV and TXT records: the
        records of every service answer, where dnslib's generic packing (a struct format
        parsed per field, the RDLENGTH patched afterwards) is most of a cache miss."""
        rdata = rr.rdata
        kind = type(rdata)
        if kind is PlainA or kind is PlainAAAA:
            raw = rdata.wire
        elif kind is PlainSRV or kind is SRV:
            self._encode(_NAMES.get(rr.rname.label) or _name(rr.rname.label))
            target = _NAMES.get(rdata.target.label) or _name(rdata.target.label)
            data = self.data
            data += _SRV_FIXED.pack(
                rr.rtype,
                rr.rclass,
                rr.ttl,
                6 + len(target.wire),
                rdata.priority,
                rdata.weight,
                rdata.port,
            )
            start = len(data)
            data += target.wire
            self.offset = len(data)
            self._remember(target, start)
            return
        elif kind is PlainTXT or kind is TXT:
            strings = rdata.data
            if any(len(text) > TXT_STRING_MAX for text in strings):
                rr.pack(self)  # dnslib's own error
                return
            raw = b"".join([_LENGTHS[len(text)] + text for text in strings])
        elif kind is A or kind is AAAA:
            raw = bytes(rdata.data)
        else:
            rr.pack(self)
            return
        self._encode(_NAMES.get(rr.rname.label) or _name(rr.rname.label))
        data = self.data
        data += _FIXED.pack(rr.rtype, rr.rclass, rr.ttl, len(raw))
        data += raw
        self.offset = len(data)

    def mark(self) -> tuple[int, int]:
        """A point to ``undo`` to."""
        return self.offset, len(self._added)

    def undo(self, mark: tuple[int, int]) -> None:
        """Forget everything written after ``mark`` (and what ``links`` and ``repeated``
        say: another order of the records is packed anew)."""
        offset, added = mark
        del self.data[offset:]
        self.offset = offset
        for suffix in self._added[added:]:
            del self.names[suffix]
        del self._added[added:]
        self.settled = False


def name_octets(labels: tuple[bytes, ...]) -> bytes:
    """A name written out uncompressed; ValueError if it cannot be a name."""
    return _name(labels).wire


def _labels(name: DNSLabel | str | bytes) -> tuple[bytes, ...]:
    """A name's labels, from any form dnslib takes a name in."""
    labels: tuple[bytes, ...] = (name if isinstance(name, DNSLabel) else DNSLabel(name)).label
    return labels


def _name(labels: tuple[bytes, ...]) -> _Name:
    """The ``_Name`` of ``labels``; ValueError if they cannot be a name (RFC 1035 §3.1)."""
    name = _NAMES.get(labels)
    if name is not None:
        return name
    if any(len(label) > MAX_LABEL for label in labels):
        raise ValueError(f"a label of {DNSLabel(labels)!r} is longer than 63 octets")
    if sum(len(label) + 1 for label in labels) + 1 > MAX_NAME:
        raise ValueError(f"{DNSLabel(labels)!r} is longer than 255 octets")
    if len(_NAMES) >= _NAMES_MAX:
        _NAMES.clear()
    name = _NAMES[labels] = _Name(labels)
    return name


_NAMES: dict[tuple[bytes, ...], _Name] = {}
"""Names seen, worked out (the same few names recur in every answer about a service)."""
_NAMES_MAX = 4096


class Packer:
    """A reply being written: header, the query's question as sent, then records.

    ``add`` appends a record only if the message, with ``reserve`` octets left over
    (for the OPT record), still fits in ``limit``; otherwise nothing changes.
    """

    def __init__(
        self, msg_id: int, flags: int, question: Question | None, *, limit: int, reserve: int = 0
    ) -> None:
        self._buffer = buffer = _Buffer()
        buffer.data += _HEADER.pack(msg_id, flags, 0, 0, 0, 0)
        self._counts = [0, 0, 0, 0]
        if question is not None:
            name = _name(question.labels)
            if name.as_question is None:
                name.as_question = {
                    suffix: HEADER_SIZE + start
                    for suffix, start in zip(name.suffixes, name.starts, strict=True)
                }
            buffer.names = name.as_question.copy()
            buffer.data += question.wire
            self._counts[0] = 1
        buffer.offset = len(buffer.data)
        self._space = limit - reserve

    def add(self, section: int, rr: RR) -> bool:
        """Append ``rr`` to ``section`` (1 answer, 2 authority, 3 additional) if it fits."""
        return self.add_all(section, (rr,))

    def add_all(self, section: int, rrs: Sequence[RR]) -> bool:
        """Append all of ``rrs`` to ``section`` if they all fit, else none of them.

        Sections are written in order: answer, then authority, then additional.
        """
        if not rrs:
            return True
        if any(self._counts[section + 1 :]):
            raise ValueError(f"section {section} comes before records already written")
        mark = self._buffer.mark()
        try:
            pack = self._buffer.pack_rr
            for rr in rrs:
                pack(rr)
        except BaseException:
            self._buffer.undo(mark)
            raise
        if len(self._buffer.data) > self._space:
            self._buffer.undo(mark)
            return False
        self._counts[section] += len(rrs)
        return True

    def finish(self, *, tail: bytes = b"", tail_count: int = 0) -> bytes:
        """The message, with ``tail`` (``tail_count`` records) appended to additional."""
        data = self._buffer.data
        counts = self._counts[:]
        counts[3] += tail_count
        struct.pack_into("!4H", data, 4, *counts)
        return bytes(data) + tail


class ArrangingPacker(Packer):
    """A ``Packer`` that also notes where each record starts, so that the message it
    writes can be put together again in another order (``arrangement``).  Apart, so
    that replies never asked for another order (most) pay nothing for it."""

    def __init__(
        self, msg_id: int, flags: int, question: Question | None, *, limit: int, reserve: int = 0
    ) -> None:
        super().__init__(msg_id, flags, question, limit=limit, reserve=reserve)
        self._buffer.track()
        self._starts: list[int] = []
        """Where each record written starts."""
        self._groups = 0
        """How many ``add_all`` calls wrote the additional records."""

    def add_all(self, section: int, rrs: Sequence[RR]) -> bool:
        """``Packer.add_all``, noting each record written."""
        if not rrs:
            return True
        if any(self._counts[section + 1 :]):
            raise ValueError(f"section {section} comes before records already written")
        buffer = self._buffer
        mark = buffer.mark()
        try:
            pack, starts = buffer.pack_rr, self._starts
            for rr in rrs:
                starts.append(buffer.offset)
                pack(rr)
        except BaseException:
            buffer.undo(mark)  # no arrangement after it: ``starts`` is left as it is
            raise
        if len(buffer.data) > self._space:
            buffer.undo(mark)
            return False
        self._counts[section] += len(rrs)
        if section == 3:
            self._groups += 1
        return True

    def arrangement(
        self, message: bytes, answer: Sequence[int], additional: Sequence[int]
    ) -> Arrangement | None:
        """``message`` (what ``finish`` returned) as an ``Arrangement``: its answer
        records are, in the order written, those at the places ``answer`` in a fixed
        order of them, and its additional records those at the places ``additional``
        (``Arrangement.reordered`` takes places in the same orders; the lists are not
        changed after).  None when another order of them could be compressed differently
        (see there), when records were left out (``add_all`` found no room for some), when
        the places are not as many as the records, or when an additional RRset holds
        several records (a new order of them would be grouped anew: left to packing)."""
        buffer = self._buffer
        counts = self._counts
        if (
            not buffer.settled
            or len(answer) != counts[1]
            or len(additional) != counts[3]
            or self._groups < counts[3]
        ):
            return None
        return Arrangement(
            (
                message,
                buffer.fixed,
                len(buffer.data),
                self._starts,
                (counts[1], counts[2], counts[3]),
                buffer.links,
                buffer.repeated,
                answer,
                additional,
            )
        )


_Raw = tuple[
    bytes,
    int,
    int,
    list[int],
    tuple[int, int, int],
    list[tuple[int, int, tuple[bytes, ...]]],
    set[tuple[bytes, ...]],
    Sequence[int],
    Sequence[int],
]
"""What ``ArrangingPacker.arrangement`` hands over: the message, where its records start
and end, where each record starts, the records in each section, the pointers between
records, the names written twice, and the places of the answer and additional records
written in the orders ``Arrangement.reordered`` counts places in."""

_Cut = tuple[bytes, int, int, int]
"""A pointer into another record: (the octets up to it since the last one, the record
pointed into, the offset there, the pointer's own offset in its record)."""


class Arrangement:
    """A packed message as the octets of each record, to be put together in another order.

    The other orders of a cached answer (``cache.ORDERS``) hold the same records, and
    packing them again is most of what a write costs the name server.  A record's octets
    are the same wherever it goes: its names are pointers to the question, or written out
    in full (SRV targets, which RFC 2782 forbids compressing), or pointers to such a name
    in another record (the owner of an SRV target's address record), which ``reordered``
    moves along with it.  It puts orders together only when that holds (each name
    compressed whole or never, each name pointed to written out once), so that the
    octets are exactly those ``Packer`` writes for the new order.

    Making one keeps only what the packer wrote down; the message is taken apart at the
    first ``reordered``, so that an answer never asked again pays nothing more for it.
    Taking it apart also works out, once, where each place of the answer and additional
    records given is written (the inverse of the orders written) and whether any order
    could put a pointer before what it points at: an order then costs a list of places
    and a join.
    """

    __slots__ = (
        "_additional",
        "_answer",
        "_authority",
        "_checked",
        "_count",
        "_cuts",
        "_head",
        "_lengths",
        "_pieces",
        "_raw",
        "_tail",
    )

    def __init__(self, raw: _Raw) -> None:
        self._raw: _Raw | None = raw
        self._head = self._tail = b""
        self._count = -1
        """How many records an order holds; -1 when no order can be put together."""
        self._answer: list[int] = []
        self._authority: list[int] = []
        self._additional: list[int] = []
        """The record written of each place in the answer and additional records, and
        the authority records, which keep their order."""
        self._lengths: list[int] = []
        self._pieces: list[bytes] = []
        """Each record's octets after its last pointer into another record."""
        self._cuts: list[tuple[_Cut, ...]] | None = None
        """Each record's pointers into other records (None: none has any)."""
        self._checked = False
        """Whether an order could put a pointer before the name it points at, or past
        16383: then each pointer of each order is checked."""

    def _take_apart(self, raw: _Raw) -> None:
        self._raw = None
        message, fixed, end, starts, counts, links, repeated, answer, additional = raw
        if repeated and links:
            # a name pointed to that is written out twice: another order points to the
            # copy that comes first (their own suffixes are written out twice too)
            longest = max(map(len, repeated))
            named = [name for _, _, name in links if len(name) <= longest]
            if named:
                twice = {name[i:] for name in repeated for i in range(len(name))}
                if any(name in twice for name in named):
                    return
        answers, authorities, additionals = counts
        # a permutation's inverse: the order of the places, sorted by the place written
        self._answer = sorted(range(answers), key=answer.__getitem__)
        later = answers + authorities
        if authorities:
            self._authority = list(range(answers, later))
        if additionals:
            self._additional = [
                later + n for n in sorted(range(additionals), key=additional.__getitem__)
            ]
        self._count = len(starts)
        self._head = message[:fixed]
        self._tail = message[end:]
        bounds = [*starts, end]
        pieces = self._pieces = [message[start:stop] for start, stop in itertools.pairwise(bounds)]
        if not links:  # e.g. address records, all owned by the question's name
            return
        self._lengths = list(map(len, pieces))
        cuts: list[tuple[_Cut, ...]] = [()] * len(starts)
        # links are in the order written, so each record's are in the order of their offsets
        source, at = -1, 0
        for where, to, _ in links:
            n = bisect.bisect_right(starts, where) - 1
            if n != source:
                if source >= 0:
                    pieces[source] = message[at : bounds[source + 1]]
                source, at = n, starts[n]
            target = bisect.bisect_right(starts, to) - 1
            cuts[n] += ((message[at:where], target, to - starts[target], where - starts[n]),)
            at = where + _POINTER.size
            if target != n and (target < answers) is (n < answers):
                self._checked = True  # in one section: another order may put it after
        pieces[source] = message[at : bounds[source + 1]]
        self._cuts = cuts
        if end > MAX_POINTER:
            self._checked = True

    def reordered(self, answer: Sequence[int], additional: Sequence[int]) -> bytes | None:
        """The message with its answer records in the order of the places ``answer``
        and its additional ones in that of ``additional`` (places counted as for
        ``ArrangingPacker.arrangement``, each a permutation), the authority as it was;
        None when a record would come before the one its pointer points into."""
        raw = self._raw
        if raw is not None:
            self._take_apart(raw)
        if self._count < 0:
            return None
        places = self._answer
        order = [places[n] for n in answer]
        if self._authority:
            order += self._authority
        if additional:
            places = self._additional
            order += [places[n] for n in additional]
        if len(order) != self._count:
            return None
        pieces = self._pieces
        cuts = self._cuts
        if cuts is None:
            return b"".join([self._head, *[pieces[n] for n in order], self._tail])
        head, lengths, checked = self._head, self._lengths, self._checked
        starts = [0] * len(lengths)
        at = len(head)
        if checked:  # every record's place first: a pointer may point at a later one
            for n in order:
                starts[n] = at
                at += lengths[n]
            at = len(head)
        parts = [head]
        pointer = _POINTER.pack
        for n in order:
            starts[n] = at
            for octets, target, offset, where in cuts[n]:
                # unchecked, every record pointed into comes before (or is) this one
                to = starts[target] + offset
                if checked and (to >= at + where or to > MAX_POINTER):
                    return None
                parts.append(octets)
                parts.append(pointer(0xC000 | to))
            parts.append(pieces[n])
            at += lengths[n]
        parts.append(self._tail)
        return b"".join(parts)


def rrsets(records: Sequence[RR]) -> list[list[RR]]:
    """``records`` grouped into RRsets (owner, type and class), in order of first appearance."""
    groups: dict[tuple[tuple[bytes, ...], int, int], list[RR]] = {}
    for rr in records:
        key = (_folded(rr.rname), rr.rtype, rr.rclass)
        groups.setdefault(key, []).append(rr)
    return list(groups.values())


def sample(
    answer: Sequence[RR], additional: Sequence[RR], limit: int, rng: random.Random
) -> tuple[list[RR], list[RR]]:
    """Each answer RRset cut down to ``limit`` records, and the additional records of the
    names only the dropped records pointed to (SRV targets, NS hosts) dropped with them.

    The records arrive in a random order (weighted for A/AAAA), so the first ``limit``
    are a random subset; an SRV RRset is first put in RFC 2782 order (lowest priority
    first, weighted by weight within one) so that the subset holds the preferred targets.
    """
    kept: list[RR] = []
    dropped: list[RR] = []
    for rrset in rrsets(answer):
        if len(rrset) > limit and rrset[0].rtype == QTYPE.SRV:
            rrset = sorted(rrset, key=lambda rr: _srv_key(rr, rng))
        kept.extend(rrset[:limit])
        dropped.extend(rrset[limit:])
    if not dropped:
        return list(answer), list(additional)
    gone = {_target(rr) for rr in dropped} - {_target(rr) for rr in kept}
    chosen = {id(rr) for rr in kept}
    return (
        [rr for rr in answer if id(rr) in chosen],
        [rr for rr in additional if _folded(rr.rname) not in gone],
    )


def _srv_key(rr: RR, rng: random.Random) -> tuple[int, int, float]:
    """Efraimidis-Spirakis weighted order within a priority; weight 0 last (RFC 2782)."""
    u = rng.random()
    weight = rr.rdata.weight
    if weight <= 0:
        return (rr.rdata.priority, 1, u)
    return (rr.rdata.priority, 0, -(u ** (1.0 / weight)))


def _folded(name: DNSLabel) -> tuple[bytes, ...]:
    """A name's labels with ASCII case folded (RFC 4343), for comparing names."""
    labels = name.label
    folded = _FOLDED.get(labels)
    if folded is None:
        if len(_FOLDED) >= _NAMES_MAX:
            _FOLDED.clear()
        folded = _FOLDED[labels] = tuple([label.lower() for label in labels])
    return folded


_FOLDED: dict[tuple[bytes, ...], tuple[bytes, ...]] = {}
"""Names seen, case folded (grouping the records of every answer folds the same few)."""


def _target(rr: RR) -> tuple[bytes, ...] | None:
    """The name in an answer record's RDATA that additional records may be about."""
    name = getattr(rr.rdata, "target", None) or getattr(rr.rdata, "label", None)
    return None if name is None else _folded(name)
