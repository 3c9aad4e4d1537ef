"""The registry: services, instances, checks and the change index.

Revision ID: 0001
Revises:
Create Date: 2025-11-27

Keep srvdns/registry/tables.py in step: tests/registry/test_migrations.py compares them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HEALTH = "status IN ('passing', 'warning', 'critical')"


def upgrade() -> None:
    op.create_table(
        "services",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_services")),
        sa.UniqueConstraint("name", name=op.f("uq_services_name")),
    )
    op.create_table(
        "instances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.String(64), nullable=False),
        sa.Column("address", sa.String(45), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("ttl", sa.Double(), nullable=True),
        sa.Column("last_heartbeat", sa.Double(), nullable=False),
        sa.Column("registered_at", sa.Double(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instances")),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
            name=op.f("fk_instances_service_id_services"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "service_id", "instance_id", name=op.f("uq_instances_service_id_instance_id")
        ),
        sa.CheckConstraint(_HEALTH, name=op.f("ck_instances_status")),
        sa.CheckConstraint("source IN ('api', 'static')", name=op.f("ck_instances_source")),
    )
    op.create_table(
        "checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_pk", sa.Integer(), nullable=False),
        sa.Column("check_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("last_change", sa.Double(), nullable=False),
        sa.Column("successes", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checks")),
        sa.ForeignKeyConstraint(
            ["instance_pk"],
            ["instances.id"],
            name=op.f("fk_checks_instance_pk_instances"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("instance_pk", "check_id", name=op.f("uq_checks_instance_pk_check_id")),
        sa.CheckConstraint(_HEALTH, name=op.f("ck_checks_status")),
    )
    state = op.create_table(
        "registry_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_state")),
        sa.CheckConstraint("id = 1", name=op.f("ck_registry_state_one_row")),
    )
    op.bulk_insert(state, [{"id": 1, "index": 0}])


def downgrade() -> None:
    op.drop_table("registry_state")
    op.drop_table("checks")
    op.drop_table("instances")
    op.drop_table("services")
