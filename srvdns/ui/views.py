"""What the status page shows, computed from the catalog: pure functions, no I/O.

The page's JSON is shaped for the page (counts per status, the DNS names of a service
in every zone, a ready ``dig`` command) so that the browser renders without further
requests; the native ``/v1`` API stays the place for programs.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from srvdns.api.schemas import InstanceOut
from srvdns.catalog import TARGET_PARENT_LABEL, ServiceView, target_label
from srvdns.config import ZoneConfig
from srvdns.history import StatusEvent
from srvdns.model import Check, Instance, Service, Status

_STATUS_NAMES = tuple(status.value for status in Status)

LiveChecks = Callable[[str, str], Mapping[str, Check] | None]
"""The health loop's live check state of (service, instance id), if it runs."""


def status_counts(instances: Sequence[Instance], now: float) -> dict[str, int]:
    """How many instances are passing, warning and critical at ``now`` (a lapsed lease
    counts as critical, as DNS sees it)."""
    counts = dict.fromkeys(_STATUS_NAMES, 0)
    for instance in instances:
        counts[instance.effective_status(now).value] += 1
    return counts


def service_ttls(service: str, zones: Sequence[ZoneConfig]) -> dict[str, int]:
    """The TTL each zone answers ``service`` with (its override, else the zone default)."""
    return {zone.name: zone.ttl_for(service) for zone in zones}


def tag_counts(instances: Sequence[Instance]) -> dict[str, int]:
    """Each tag of the service and how many instances carry it, sorted by tag."""
    counts: dict[str, int] = {}
    for instance in instances:
        for tag in instance.tags:
            counts[tag] = counts.get(tag, 0) + 1
    return dict(sorted(counts.items()))


def overview(
    services: Sequence[Service],
    zones: Sequence[ZoneConfig],
    now: float,
    panic: Callable[[str], list[str]],
    changes: Sequence[StatusEvent],
) -> list[dict[str, Any]]:
    """One row per service for the overview: status counts, tags, TTLs, panic zones and
    how many status changes the last hour saw."""
    changed = Counter(event.service for event in changes)
    rows = []
    for service in services:
        rows.append(
            {
                "name": service.name,
                "instances": len(service.instances),
                "counts": status_counts(service.instances, now),
                "tags": tag_counts(service.instances),
                "ttl": service_ttls(service.name, zones),
                "panic_zones": panic(service.name),
                "static": sum(i.source.value == "static" for i in service.instances),
                "changes": changed.get(service.name, 0),
            }
        )
    return rows


def dns_names(
    service: str, tags: Sequence[str], zones: Sequence[ZoneConfig]
) -> list[dict[str, Any]]:
    """Every name that resolves to ``service``, per zone: ``<service>.<zone>`` (SRV, A,
    AAAA, TXT), the RFC 2782 forms ``_<service>._tcp`` and ``_udp``, and for each tag
    ``<tag>.<service>`` and ``_<service>._<tag>``."""
    out = []
    for zone in zones:
        names = [
            {"name": f"{service}.{zone.name}", "types": ["SRV", "A", "AAAA", "TXT"], "tag": None},
            {"name": f"_{service}._tcp.{zone.name}", "types": ["SRV"], "tag": None},
            {"name": f"_{service}._udp.{zone.name}", "types": ["SRV"], "tag": None},
        ]
        for tag in tags:
            names.append(
                {
                    "name": f"{tag}.{service}.{zone.name}",
                    "types": ["SRV", "A", "AAAA", "TXT"],
                    "tag": tag,
                }
            )
            names.append({"name": f"_{service}._{tag}.{zone.name}", "types": ["SRV"], "tag": tag})
        out.append({"zone": zone.name, "ttl": zone.ttl_for(service), "names": names})
    return out


def dig_server(addresses: Sequence[tuple[str, int]], request_host: str | None) -> str | None:
    """The ``@server [-p port]`` part of a ``dig`` command for the DNS listeners.

    The first listener wins; one on a wildcard address is reached at the address the
    browser used for this page (when that is an IP literal), else at the loopback address.
    None when the DNS listeners are unknown.
    """
    if not addresses:
        return None
    host, port = addresses[0]
    if host in ("0.0.0.0", "::", ""):
        host = _ip_literal(request_host) or ("::1" if host == "::" else "127.0.0.1")
    server = f"@{host}"
    return server if port == 53 else f"{server} -p {port}"


def _ip_literal(host: str | None) -> str | None:
    if not host:
        return None
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def dig_command(server: str | None, name: str, rdtype: str = "SRV") -> str:
    """A ``dig`` command line asking the server for ``name``."""
    parts = ["dig"]
    if server:
        parts.append(server)
    parts += [name, rdtype]
    return " ".join(parts)


def instance_row(
    instance: Instance,
    view: ServiceView | None,
    zones: Sequence[ZoneConfig],
    now: float,
    live: Mapping[str, Check] | None,
) -> dict[str, Any]:
    """One instance as the service page shows it: the API's view of it, whether DNS
    answers it in each zone now, and its SRV target name in each zone."""
    row = InstanceOut.of(instance, now, live).model_dump(mode="json")
    label = target_label(instance.id)
    if view is not None:
        label = view.target_of.get(instance.id, label)
        row["answered_in"] = [zone.name for zone in zones if view.selects(instance, now, zone)]
    else:
        row["answered_in"] = []
    row["targets"] = [
        f"{label}.{TARGET_PARENT_LABEL}.{instance.service}.{zone.name}" for zone in zones
    ]
    return row
