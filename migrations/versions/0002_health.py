"""Health checks: a warning weight per instance, and each heartbeat lease as a ttl check.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-28

Keep srvdns/registry/tables.py in step: tests/registry/test_migrations.py compares them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(
            sa.Column("warning_weight", sa.Integer(), nullable=False, server_default="1")
        )
    # Every instance registered with a lease gets the ttl check that now stands for it.
    instances = sa.table(
        "instances",
        sa.column("id", sa.Integer()),
        sa.column("ttl", sa.Double()),
        sa.column("last_heartbeat", sa.Double()),
        sa.column("status", sa.String()),
    )
    checks = sa.table(
        "checks",
        sa.column("instance_pk", sa.Integer()),
        sa.column("check_id", sa.String()),
        sa.column("kind", sa.String()),
        sa.column("definition", sa.JSON()),
        sa.column("status", sa.String()),
        sa.column("output", sa.Text()),
        sa.column("last_change", sa.Double()),
        sa.column("successes", sa.Integer()),
        sa.column("failures", sa.Integer()),
    )
    connection = op.get_bind()
    leased = connection.execute(
        sa.select(instances.c.id, instances.c.ttl, instances.c.last_heartbeat).where(
            instances.c.ttl.is_not(None)
        )
    ).all()
    rows = [
        {
            "instance_pk": pk,
            "check_id": "ttl",
            "kind": "ttl",
            "definition": {
                "interval": ttl,
                "timeout": 0.0,
                "target": "",
                "method": "GET",
                "headers": [],
                "tls_skip_verify": False,
                "ttl": ttl,
                "success_before_passing": 1,
                "failures_before_critical": 1,
                "deregister_critical_after": None,
                "initial_status": "passing",
            },
            "status": "passing",
            "output": "",
            "last_change": last_heartbeat,
            "successes": 0,
            "failures": 0,
        }
        for pk, ttl, last_heartbeat in leased
    ]
    if rows:
        op.bulk_insert(checks, rows)


def downgrade() -> None:
    op.execute(sa.table("checks").delete())  # revision 0001 runs no checks
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("warning_weight")
