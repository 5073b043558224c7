"""Dead-letter table of the outbox: deliveries parked because the sink refuses that alert.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "parked_deliveries",
        sa.Column("alert_id", sa.String(255), nullable=False),
        sa.Column("sink", sa.String(255), nullable=False),
        sa.Column("parked_at", sa.Double(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.alert_id"], name="fk_parked_deliveries_alert_id_alerts"),
        sa.PrimaryKeyConstraint("alert_id", "sink", name="pk_parked_deliveries"),
    )


def downgrade() -> None:
    op.drop_table("parked_deliveries")
