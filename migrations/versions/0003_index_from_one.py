"""The change index starts at 1, never 0.

Revision ID: 0003
Revises: 0002
Create Date: 2026-01-12

Consul's blocking queries treat ``index=0`` as "do not block", and Consul never reports
an ``X-Consul-Index`` of 0.  The registry's index is that header, so a new registry starts
at 1 and a client's first blocking query (``index=1``) wakes on the first write.  No
schema change: tests/registry/test_migrations.py still finds srvdns/registry/tables.py.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    state = sa.table("registry_state", sa.column("id", sa.Integer()), sa.column("index"))
    op.execute(state.update().where(state.c["index"] == 0).values({state.c["index"]: 1}))


def downgrade() -> None:
    """Nothing to undo: an index of 1 is valid at every revision."""
