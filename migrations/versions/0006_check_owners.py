"""Nodes sharing the registry, and which node runs each health check.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

Several srvdns nodes may serve one PostgreSQL registry.  Each records itself in
``nodes`` (a heartbeat every few seconds) and leases a fair share of the health checks in
``check_owners``; a check runs only on the node holding its unexpired lease, and the
checks of a node that stops renewing move to the survivors when their leases expire.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("node_id", sa.String(length=255), nullable=False),
        sa.Column("heartbeat", sa.Double(), nullable=False),
        sa.Column("started", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_nodes")),
    )
    op.create_table(
        "check_owners",
        sa.Column("service", sa.String(length=63), nullable=False),
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("check_id", sa.String(length=64), nullable=False),
        sa.Column("node_id", sa.String(length=255), nullable=False),
        sa.Column("expires", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("service", "instance_id", "check_id", name=op.f("pk_check_owners")),
    )
    op.create_index(op.f("ix_check_owners_node_id"), "check_owners", ["node_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_check_owners_node_id"), table_name="check_owners")
    op.drop_table("check_owners")
    op.drop_table("nodes")
