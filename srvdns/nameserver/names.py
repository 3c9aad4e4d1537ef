"""Route a query name inside a zone to the kind of srvdns name it is; pure."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from srvdns.catalog import TARGET_PARENT_LABEL

Labels = tuple[str, ...]
"""A domain name as lower-case labels, leftmost first, without the root."""

PROTOCOL_LABELS = frozenset({"_tcp", "_udp"})
"""RFC 2782 ``_proto`` labels; they mean "no tag filter"."""


@dataclass(frozen=True, slots=True)
class Apex:
    """The zone itself: SOA and NS."""


@dataclass(frozen=True, slots=True)
class NameServer:
    """An in-zone NS host (``ns.<zone>``); it answers its configured addresses."""

    host: str


@dataclass(frozen=True, slots=True)
class ServiceName:
    """``<service>``, ``<tag>.<service>`` or ``_<service>._<proto or tag>``.

    ``tag`` is None when every answerable instance of the service is meant.
    """

    service: str
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class TargetName:
    """``<target-label>.instance.<service>``: one instance's SRV target."""

    service: str
    target: str


@dataclass(frozen=True, slots=True)
class TargetParent:
    """``instance.<service>``: the empty non-terminal above a service's SRV targets."""

    service: str


@dataclass(frozen=True, slots=True)
class ProtocolParent:
    """``_tcp``, ``_udp`` (``tag`` None) or ``_<tag>``: the parent of RFC 2782 names."""

    tag: str | None


@dataclass(frozen=True, slots=True)
class Unknown:
    """A name srvdns never has: NXDOMAIN."""


Route = Apex | NameServer | ServiceName | TargetName | TargetParent | ProtocolParent | Unknown


@functools.lru_cache(maxsize=4096)
def lower_labels(labels: tuple[bytes, ...]) -> Labels:
    """Wire labels as lower-case text, the one place a query name is lower-cased.

    RFC 4343 §3: case-insensitive comparison folds ASCII letters only, which is what
    ``bytes.lower`` does; latin-1 keeps any other byte distinct.  Worked out once per
    name as asked (clients ask the same few names again and again); a flood of distinct
    names only pushes older ones out.
    """
    return tuple(label.lower().decode("latin-1") for label in labels)


def relative_to(qname: Labels, origin: Labels) -> Labels | None:
    """The labels of ``qname`` left of ``origin``, or None when it is not at or below it."""
    if len(qname) < len(origin) or qname[len(qname) - len(origin) :] != origin:
        return None
    return qname[: len(qname) - len(origin)]


def _tag_of(label: str) -> str | None:
    """The tag a RFC 2782 second label filters on: ``_tcp``/``_udp`` mean none."""
    return None if label in PROTOCOL_LABELS else label[1:]


@functools.lru_cache(maxsize=4096)
def route(relative: Labels, name_servers: frozenset[str] = frozenset()) -> Route:
    """Classify a name by its labels relative to the zone origin.

    ``name_servers`` holds the labels of in-zone NS hosts; they take precedence over
    any service of that name, and nothing exists below them.  RFC 2782 names are
    ``_Service._Proto.Name``; here a ``_Proto`` other than ``_tcp``/``_udp`` is a tag.
    Worked out once per name (routes are immutable, so one object serves every query).
    """
    if not relative:
        return Apex()
    if relative[-1] in name_servers:
        return NameServer(relative[-1]) if len(relative) == 1 else Unknown()
    underscored = tuple(label.startswith("_") for label in relative)
    match relative, underscored:
        case (label,), (True,):
            return ProtocolParent(_tag_of(label))
        case (service,), (False,):
            return ServiceName(service)
        case (first, second), (True, True):
            return ServiceName(first[1:], _tag_of(second))
        case (first, service), (False, False):
            if first == TARGET_PARENT_LABEL:
                return TargetParent(service)
            return ServiceName(service, first)
        case (target, parent, service), (False, False, False) if parent == TARGET_PARENT_LABEL:
            return TargetName(service, target)
    return Unknown()
