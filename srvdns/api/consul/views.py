"""srvdns's registry as Consul's JSON shows it: the node, services, checks, health entries.

srvdns is one Consul "node": every instance is a service on it, whatever registered it.
The node is named after the host (``Node``), has the address of the API listener
(``Address``), datacenter ``dc1``, and the node check Consul gives every live node,
``serfHealth`` ("Serf Health Status"), always passing: srvdns answering is the node being
alive.  ``CreateIndex`` and ``ModifyIndex`` are the registry's index at the time of the
read (srvdns does not track them per entry).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from srvdns.api.blocking import format_go_duration
from srvdns.api.consul.definitions import consul_check_id
from srvdns.catalog import Catalog
from srvdns.model import Check, CheckKind, Instance, Status

DATACENTER = "dc1"
"""Consul's default datacenter name; srvdns has one datacenter."""

SERF_CHECK_ID = "serfHealth"

_TYPES = {CheckKind.HTTP: "http", CheckKind.TCP: "tcp", CheckKind.TTL: "ttl"}

Json = dict[str, Any]
LiveChecks = Mapping[str, Check]
"""The health loop's live state of one instance's checks (newer output), by check id."""


@dataclass(frozen=True, slots=True)
class Node:
    """The one Consul node srvdns stands for."""

    name: str
    address: str

    @property
    def id(self) -> str:
        """A stable UUID for the node, derived from its name (Consul node ids are UUIDs)."""
        return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"srvdns.{self.name}"))

    def tagged_addresses(self) -> Json:
        """Consul's ``TaggedAddresses`` of a node: the one address for LAN and WAN."""
        return {"lan": self.address, "wan": self.address}

    def json(self, index: int) -> Json:
        """``Node`` of a health entry."""
        return {
            "ID": self.id,
            "Node": self.name,
            "Address": self.address,
            "Datacenter": DATACENTER,
            "TaggedAddresses": self.tagged_addresses(),
            "Meta": {},
            "CreateIndex": index,
            "ModifyIndex": index,
        }

    def serf_check(self, index: int) -> Json:
        """The node check every Consul node has; passing while srvdns answers."""
        return {
            "Node": self.name,
            "CheckID": SERF_CHECK_ID,
            "Name": "Serf Health Status",
            "Status": Status.PASSING.value,
            "Notes": "",
            "Output": "Agent alive and reachable",
            "ServiceID": "",
            "ServiceName": "",
            "ServiceTags": [],
            "Type": "",
            "Interval": "",
            "Timeout": "",
            "Definition": {},
            "CreateIndex": index,
            "ModifyIndex": index,
        }


def weights(instance: Instance) -> Json:
    """Consul's ``Weights``: the SRV weight while passing and while warning."""
    return {"Passing": instance.weight, "Warning": instance.warning_weight}


def agent_service(instance: Instance) -> Json:
    """An instance as ``GET /v1/agent/service(s)`` shows it."""
    return {
        "ID": instance.id,
        "Service": instance.service,
        "Tags": list(instance.tags),
        "Meta": dict(instance.meta),
        "Port": instance.port,
        "Address": instance.address,
        "Weights": weights(instance),
        "EnableTagOverride": False,
        "Datacenter": DATACENTER,
    }


def health_service(instance: Instance, index: int) -> Json:
    """``Service`` of a health entry."""
    return {
        "ID": instance.id,
        "Service": instance.service,
        "Tags": list(instance.tags),
        "Address": instance.address,
        "Meta": dict(instance.meta),
        "Port": instance.port,
        "Weights": weights(instance),
        "EnableTagOverride": False,
        "CreateIndex": index,
        "ModifyIndex": index,
    }


def check_status(instance: Instance, check: Check, now: float) -> Status:
    """A check's status at ``now`` (a ttl check is critical once the lease has lapsed)."""
    return instance.check_status(check, now)


def service_check(
    node: Node, instance: Instance, check: Check, now: float, index: int, live: LiveChecks
) -> Json:
    """One check of an instance, with Consul's field names and CheckID."""
    spec = check.spec
    status = check_status(instance, check, now)
    newer = live.get(check.id)
    output = newer.output if newer is not None and newer.spec == spec else check.output
    if status is not check.status and spec.kind is CheckKind.TTL:
        output = "TTL expired"
    periodic = spec.kind is not CheckKind.TTL
    definition: Json = {
        "Interval": format_go_duration(spec.interval) if periodic else "0s",
        "Timeout": format_go_duration(spec.timeout) if periodic else "0s",
        "DeregisterCriticalServiceAfter": format_go_duration(spec.deregister_critical_after or 0.0),
    }
    if spec.kind is CheckKind.HTTP:
        definition.update(
            HTTP=spec.target,
            Method=spec.method,
            Header={name: [value] for name, value in spec.headers},
            TLSSkipVerify=spec.tls_skip_verify,
        )
    elif spec.kind is CheckKind.TCP:
        definition["TCP"] = spec.target
    else:
        definition["TTL"] = format_go_duration(spec.ttl or 0.0)
    return {
        "Node": node.name,
        "CheckID": consul_check_id(instance.id, spec.id),
        "Name": spec.name or f"Service '{instance.service}' check",
        "Status": status.value,
        "Notes": spec.notes,
        "Output": output,
        "ServiceID": instance.id,
        "ServiceName": instance.service,
        "ServiceTags": list(instance.tags),
        "Type": _TYPES[spec.kind],
        "Interval": definition["Interval"] if periodic else "",
        "Timeout": definition["Timeout"] if periodic else "",
        "Definition": definition,
        "CreateIndex": index,
        "ModifyIndex": index,
    }


def health_entry(node: Node, instance: Instance, now: float, index: int, live: LiveChecks) -> Json:
    """One entry of ``GET /v1/health/service/{name}``: ``{Node, Service, Checks}``."""
    checks = [node.serf_check(index)]
    checks += [service_check(node, instance, c, now, index, live) for c in instance.checks]
    return {
        "Node": node.json(index),
        "Service": health_service(instance, index),
        "Checks": checks,
    }


def catalog_entry(node: Node, instance: Instance, index: int) -> Json:
    """One entry of ``GET /v1/catalog/service/{name}``."""
    return {
        "ID": node.id,
        "Node": node.name,
        "Address": node.address,
        "Datacenter": DATACENTER,
        "TaggedAddresses": node.tagged_addresses(),
        "NodeMeta": {},
        "ServiceKind": "",
        "ServiceID": instance.id,
        "ServiceName": instance.service,
        "ServiceTags": list(instance.tags),
        "ServiceAddress": instance.address,
        "ServiceWeights": weights(instance),
        "ServiceMeta": dict(instance.meta),
        "ServicePort": instance.port,
        "ServiceEnableTagOverride": False,
        "CreateIndex": index,
        "ModifyIndex": index,
    }


def instances_with_id(catalog: Catalog, instance_id: str) -> list[Instance]:
    """Every instance with the id ``instance_id``, in any service (Consul ids are global
    per agent, srvdns ids unique per service; a Consul registration keeps them global)."""
    found = []
    for view in catalog.services.values():
        label = view.target_of.get(instance_id)
        if label is not None:
            found.append(view.targets[label])
    return found


def checks_with_id(catalog: Catalog, consul_id: str) -> list[tuple[Instance, Check]]:
    """Every check whose Consul CheckID is ``consul_id``, with its instance.

    ``service:<id>`` and ``service:<id>:<n>`` look at the instances with that id only;
    any other CheckID is searched for in every instance.
    """
    if consul_id.startswith("service:"):
        instance_id = consul_id.split(":")[1]
        candidates: Iterable[Instance] = instances_with_id(catalog, instance_id)
    else:
        candidates = (i for view in catalog.services.values() for i in view.instances)
    return [
        (instance, check)
        for instance in candidates
        for check in instance.checks
        if consul_check_id(instance.id, check.id) == consul_id
    ]
