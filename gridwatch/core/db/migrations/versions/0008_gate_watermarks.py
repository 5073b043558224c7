"""Stream gates' serial watermarks, kept across restarts.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gate_watermarks",
        sa.Column("gate_id", sa.String(64), nullable=False),
        sa.Column("serial", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("gate_id", name="pk_gate_watermarks"),
    )


def downgrade() -> None:
    op.drop_table("gate_watermarks")
