"""Approval records of corrections registries: one or more per entry, never edited (an extension is a new row).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approvals",
        sa.Column("approval_id", sa.String(32), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("registry", sa.String(64), nullable=False),
        sa.Column("approval_doc", sa.String(200), nullable=False),
        sa.Column("approver", sa.String(200), nullable=False),
        sa.Column("situation_code", sa.Integer(), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("supersedes", sa.String(32), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["persons.person_id"],
            name="fk_approvals_person_id_persons",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("approval_id", name="pk_approvals"),
        sa.UniqueConstraint("person_id", "seq", name="uq_approvals_person_id_seq"),
    )
    op.create_index("ix_approvals_person_id", "approvals", ["person_id"])
    op.create_index("ix_approvals_registry", "approvals", ["registry"])


def downgrade() -> None:
    op.drop_index("ix_approvals_registry", table_name="approvals")
    op.drop_index("ix_approvals_person_id", table_name="approvals")
    op.drop_table("approvals")
