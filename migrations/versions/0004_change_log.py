"""Change following: a counter of every write and the last change of each service.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

``registry_state.change_seq`` moves with every write that changes a service (heartbeats
included); ``service_changes`` keeps, per service name, the ``change_seq`` of its last
change, deletions included.  A process that does not write (a ``--workers`` DNS worker,
another node on the same database) polls the counter and reloads only those services.
Keep srvdns/registry/tables.py in step: tests/registry/test_migrations.py compares them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("registry_state") as batch:
        batch.add_column(
            sa.Column("change_seq", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.create_table(
        "service_changes",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_service_changes")),
    )
    op.create_index(
        op.f("ix_service_changes_change_seq"), "service_changes", ["change_seq"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_service_changes_change_seq"), table_name="service_changes")
    op.drop_table("service_changes")
    with op.batch_alter_table("registry_state") as batch:
        batch.drop_column("change_seq")
