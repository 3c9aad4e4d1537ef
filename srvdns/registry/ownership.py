"""Which node runs each health check, when several nodes share one registry.

Every node runs ``lease_round`` every third of the lease time, in one transaction:

1. it records its heartbeat in ``nodes`` (and forgets nodes silent for ten leases);
2. it renews the leases it holds in ``check_owners`` and drops those of checks it no
   longer knows;
3. it computes its fair share, ``ceil(checks / live nodes)`` (a node is live while its
   heartbeat is younger than one lease), releases the leases it holds beyond it (a node
   joined) and claims free checks up to it: checks without an owner, or whose owner's
   lease expired (that node died or lost the database).

A claim is an ``INSERT ... ON CONFLICT DO NOTHING`` or an ``UPDATE ... WHERE expires <
now``, so two nodes never both win one check; claims go in key order, so that two
nodes claiming at once wait for each other rather than deadlock.  A node runs a check
only while it holds its lease by its own clock (``Leases.owns``); a node that cannot
reach the database stops running checks when its leases end, which is also when the
others may claim them.
Clocks of the nodes are assumed to agree to well within a lease (NTP).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from srvdns.catalog import Catalog
from srvdns.registry.tables import check_owners, nodes

CheckKey = tuple[str, str, str]
"""(service, instance id, check id)."""

FORGET_NODES_AFTER = 10
"""A node silent for this many leases is removed from ``nodes``."""


def checks_of(catalog: Catalog) -> set[CheckKey]:
    """Every health check the catalog holds."""
    return {
        (instance.service, instance.id, check.id)
        for view in catalog.services.values()
        for instance in view.instances
        for check in instance.checks
    }


@dataclass(frozen=True, slots=True)
class Round:
    """What one ``lease_round`` found and did."""

    owned: frozenset[CheckKey]
    """The checks this node holds a lease on now."""
    live_nodes: int
    share: int
    claimed: int = 0
    released: int = 0


def _insert(conn: Connection) -> sa.Insert:
    """An INSERT into ``check_owners`` that skips rows another node inserted first."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(check_owners).on_conflict_do_nothing()
    if conn.dialect.name == "sqlite":
        return sqlite.insert(check_owners).on_conflict_do_nothing()
    raise NotImplementedError(f"check leases on {conn.dialect.name} are not supported")


def _key_is(key: CheckKey) -> sa.ColumnElement[bool]:
    return sa.and_(
        check_owners.c.service == key[0],
        check_owners.c.instance_id == key[1],
        check_owners.c.check_id == key[2],
    )


def _heartbeat(conn: Connection, node_id: str, now: float) -> None:
    updated = conn.execute(nodes.update().where(nodes.c.node_id == node_id).values(heartbeat=now))
    if not updated.rowcount:
        statement = (
            postgresql.insert(nodes) if conn.dialect.name == "postgresql" else sqlite.insert(nodes)
        )
        conn.execute(
            statement.values(node_id=node_id, heartbeat=now, started=now).on_conflict_do_update(
                index_elements=[nodes.c.node_id], set_={"heartbeat": now}
            )
        )


def lease_round(
    conn: Connection,
    node_id: str,
    wanted: Iterable[CheckKey],
    now: float,
    lease: float,
    rng: random.Random | None = None,
) -> Round:
    """One round of this node's check leases (see the module docstring), in ``conn``'s
    transaction; ``wanted`` are the checks this node knows of, ``now`` its clock."""
    rng = rng or random.Random()
    wanted = set(wanted)
    _heartbeat(conn, node_id, now)
    conn.execute(nodes.delete().where(nodes.c.heartbeat < now - FORGET_NODES_AFTER * lease))
    live = conn.execute(
        sa.select(sa.func.count()).select_from(nodes).where(nodes.c.heartbeat > now - lease)
    ).scalar_one()
    live = max(1, int(live))
    expires = now + lease
    conn.execute(
        check_owners.update().where(check_owners.c.node_id == node_id).values(expires=expires)
    )
    held: dict[CheckKey, tuple[str, float]] = {
        (row.service, row.instance_id, row.check_id): (row.node_id, row.expires)
        for row in conn.execute(sa.select(check_owners))
    }
    mine = {key for key, (owner, _) in held.items() if owner == node_id}
    gone = mine - wanted  # deregistered: nobody needs the lease any more
    # leases that expired a lease ago on checks this node does not know are leftovers
    for key, (owner, ends) in sorted(held.items()):
        if owner != node_id and ends < now - lease and key not in wanted:
            conn.execute(check_owners.delete().where(_key_is(key), check_owners.c.expires == ends))
    mine -= gone
    share = math.ceil(len(wanted) / live)
    release: list[CheckKey] = []
    if len(mine) > share:
        release = rng.sample(sorted(mine), len(mine) - share)
        mine.difference_update(release)
    for key in [*gone, *release]:
        conn.execute(check_owners.delete().where(_key_is(key), check_owners.c.node_id == node_id))
    claimed = 0
    if len(mine) < share:
        # in key order on every node: claims racing for the same rows lock them in one
        # order, so they wait for each other instead of deadlocking
        free = sorted(key for key in wanted if key not in held or held[key][1] < now)
        for key in free:
            if len(mine) >= share:
                break
            if key in held:
                won = conn.execute(
                    check_owners.update()
                    .where(_key_is(key), check_owners.c.expires < now)
                    .values(node_id=node_id, expires=expires)
                ).rowcount
            else:
                won = conn.execute(
                    _insert(conn).values(
                        service=key[0],
                        instance_id=key[1],
                        check_id=key[2],
                        node_id=node_id,
                        expires=expires,
                    )
                ).rowcount
            if won:
                mine.add(key)
                claimed += 1
    return Round(frozenset(mine), live, share, claimed, len(release))


def leave(conn: Connection, node_id: str) -> None:
    """Give up every lease of ``node_id`` and its ``nodes`` row (a clean shutdown), so
    that the other nodes claim its checks at their next round."""
    conn.execute(check_owners.delete().where(check_owners.c.node_id == node_id))
    conn.execute(nodes.delete().where(nodes.c.node_id == node_id))


@dataclass
class Leases:
    """The checks this node may run: those of its last round, until ``valid_until``."""

    owned: frozenset[CheckKey] = frozenset()
    valid_until: float = 0.0

    def update(self, result: Round, started: float, lease: float) -> None:
        """Take a round's outcome; its leases hold until ``started + lease`` by this clock
        (the round wrote ``expires`` from the same ``started``)."""
        self.owned = result.owned
        self.valid_until = started + lease

    def owns(self, key: CheckKey, now: float) -> bool:
        """Whether this node may run check ``key`` at ``now``."""
        return now < self.valid_until and key in self.owned
