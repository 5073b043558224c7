"""Warning models: delivery-based cooldowns, absence timers, recent passes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cooldowns") as batch:
        batch.add_column(sa.Column("alert_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_cooldowns_alert_id", ["alert_id"])

    op.create_table(
        "rule_timers",
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_source", sa.String(64), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fired", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("rule", "person_id", name="pk_rule_timers"),
    )
    op.create_index("ix_rule_timers_partition", "rule_timers", ["partition"])
    op.create_index("ix_rule_timers_due_at", "rule_timers", ["due_at"])

    op.create_table(
        "rule_passes",
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("passes_json", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rule", "subject", name="pk_rule_passes"),
    )
    op.create_index("ix_rule_passes_partition", "rule_passes", ["partition"])
    op.create_index("ix_rule_passes_updated_at", "rule_passes", ["updated_at"])


def downgrade() -> None:
    op.drop_table("rule_passes")
    op.drop_table("rule_timers")
    with op.batch_alter_table("cooldowns") as batch:
        batch.drop_index("ix_cooldowns_alert_id")
        batch.drop_column("delivered_at")
        batch.drop_column("alert_id")
