"""Evidence: sealed face crops, frames and reference photos of registries that keep them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = 64


def upgrade() -> None:
    op.create_table(
        "evidence",
        sa.Column("object_id", sa.String(64), nullable=False),
        sa.Column("registry", sa.String(_ID), nullable=False),
        sa.Column("person_id", sa.String(_ID), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("alert_id", sa.String(255), nullable=True),
        sa.Column("sighting_id", sa.String(64), nullable=True),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("object_id", name="pk_evidence"),
    )
    for column in ("registry", "person_id", "sighting_id", "expires_at"):
        op.create_index(f"ix_evidence_{column}", "evidence", [column])


def downgrade() -> None:
    op.drop_table("evidence")
