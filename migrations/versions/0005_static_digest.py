"""A digest of the static instances the registry was last synced with.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

At start-up srvdns compares the digest of the config file's static services with this
one and skips the static sync when they are equal: with 100,000 static instances the
sync is most of the start-up time, and an unchanged config makes it a no-op.  One row
at most (``id = 1``); no row means "unknown", which syncs.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "static_sync",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_static_sync_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_static_sync")),
    )


def downgrade() -> None:
    op.drop_table("static_sync")
