"""The registry's SQLAlchemy tables; ``migrations/versions`` must create exactly these.

Portable SQL only: the same tables serve SQLite and PostgreSQL.  Times are Unix seconds
in double-precision columns, so they compare with ``time.time()`` without time zones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Deterministic constraint names, so later migrations can refer to them on every backend."""

metadata = MetaData(naming_convention=NAMING_CONVENTION)

services = Table(
    "services",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(63), nullable=False, unique=True),
)

instances = Table(
    "instances",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "service_id",
        Integer,
        ForeignKey("services.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("instance_id", String(64), nullable=False),  # case-sensitive
    Column("address", String(45), nullable=False),
    Column("port", Integer, nullable=False),
    Column("weight", Integer, nullable=False),  # SRV weight while passing
    Column("priority", Integer, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("meta", JSON, nullable=False),
    Column("ttl", Double, nullable=True),  # heartbeat lease in seconds; NULL: no lease
    Column("last_heartbeat", Double, nullable=False),
    Column("registered_at", Double, nullable=False),
    Column("status", String(16), nullable=False),
    Column("source", String(16), nullable=False),
    Column("warning_weight", Integer, nullable=False, server_default="1"),  # since 0002
    UniqueConstraint("service_id", "instance_id"),
    CheckConstraint("status IN ('passing', 'warning', 'critical')", name="status"),
    CheckConstraint("source IN ('api', 'static')", name="source"),
)

checks = Table(
    "checks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(  # the instances row, not the instance's own id
        "instance_pk",
        Integer,
        ForeignKey("instances.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("check_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # http, tcp, ttl, ...
    Column("definition", JSON, nullable=False),  # repository.spec_definition()
    Column("status", String(16), nullable=False),
    Column("output", Text, nullable=False),
    Column("last_change", Double, nullable=False),  # critical since, when critical
    Column("successes", Integer, nullable=False),  # consecutive, for flap damping
    Column("failures", Integer, nullable=False),
    UniqueConstraint("instance_pk", "check_id"),
    CheckConstraint("status IN ('passing', 'warning', 'critical')", name="status"),
)

registry_state = Table(
    "registry_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("index", BigInteger, nullable=False),  # the SOA serial
    Column("change_seq", BigInteger, nullable=False, server_default="0"),  # since 0004
    CheckConstraint("id = 1", name="one_row"),
)
"""Exactly one row (``id = 1``), inserted by the initial migration.

``change_seq`` counts every committed write that changed a service in any way (a
heartbeat that renews a lease too, which leaves ``index`` alone); change followers
poll it.
"""

service_changes = Table(
    "service_changes",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("change_seq", BigInteger, nullable=False),
)
"""Since 0004: per service name (deleted services too: the row is their tombstone), the
``registry_state.change_seq`` of the last write that changed it.  One row per name ever
used, so it needs no pruning; ``srvdns.registry.follower`` reads it."""

POSTGRESQL_ONLY = frozenset({"ix_service_changes_change_seq"})
"""Indexes created on PostgreSQL only.  ``service_changes.change_seq``'s since 0007:
SQLite's planner never used it, and keeping it moved an index entry, two pages of the
log, on every write."""

Index("ix_service_changes_change_seq", service_changes.c.change_seq).ddl_if(dialect="postgresql")

STATE_ROW_ID = 1

static_sync = Table(
    "static_sync",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("digest", String(64), nullable=False),  # registry.static_digest()
    CheckConstraint("id = 1", name="one_row"),
)
"""The digest of the static set last synced (since 0005); at most one row, ``id = 1``."""

nodes = Table(
    "nodes",
    metadata,
    Column("node_id", String(255), primary_key=True),
    Column("heartbeat", Double, nullable=False),  # Unix seconds of its last lease round
    Column("started", Double, nullable=False),
)
"""Since 0006: the srvdns nodes sharing this registry (PostgreSQL); a node whose
``heartbeat`` is older than the check lease counts as dead (``registry.ownership``)."""

check_owners = Table(
    "check_owners",
    metadata,
    Column("service", String(63), primary_key=True),
    Column("instance_id", String(64), primary_key=True),
    Column("check_id", String(64), primary_key=True),
    Column("node_id", String(255), nullable=False, index=True),
    Column("expires", Double, nullable=False),  # Unix seconds; renewed by the owner
)
"""Since 0006: which node runs each health check, leased until ``expires``.  A check
without a row, or whose lease expired, is free for any live node to claim."""


def schema_filter(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """Alembic's ``include_object`` for a database of ``dialect``: leaves out what
    ``metadata`` creates only on other databases, so that comparing a migrated database
    with ``metadata`` (autogenerate, the migrations' test) compares like with like."""

    def include(_object: Any, name: str | None, kind: str, _reflected: bool, _to: Any) -> bool:
        return not (kind == "index" and dialect != "postgresql" and name in POSTGRESQL_ONLY)

    return include
