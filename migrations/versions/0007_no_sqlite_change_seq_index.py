"""No index of ``service_changes.change_seq`` on SQLite.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28

Every write stamps its services in ``service_changes``, which moves each stamped row's
entry in that index from one end to the other: on SQLite two more pages in the log per
commit, about a third of what a lone registration writes.  SQLite never used it: the
followers' query (``repository.changed_since``, ordered by name) scans the primary key's
index instead.  PostgreSQL keeps it (its planner does use it).
Keep srvdns/registry/tables.py in step: tests/registry/test_migrations.py compares them.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index(op.f("ix_service_changes_change_seq"), table_name="service_changes")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.create_index(
            op.f("ix_service_changes_change_seq"), "service_changes", ["change_seq"], unique=False
        )
