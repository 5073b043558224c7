"""Per-person conditions on registry entries: home sources, allowed zones and hours, case reference.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_COLUMNS = ("home_sources", "allowed_zones", "allowed_hours", "case_ref")


def upgrade() -> None:
    # Adding columns is a plain ALTER TABLE on both backends (batch mode copies no table for it);
    # existing entries get no conditions.
    with op.batch_alter_table("persons") as batch:
        batch.add_column(sa.Column("home_sources", sa.Text(), server_default="[]", nullable=False))
        batch.add_column(sa.Column("allowed_zones", sa.Text(), server_default="[]", nullable=False))
        batch.add_column(sa.Column("allowed_hours", sa.String(64), nullable=True))
        batch.add_column(sa.Column("case_ref", sa.String(64), nullable=True))


def downgrade() -> None:
    # Not batch mode: on SQLite it would copy `persons` and drop the original, and dropping it cascades
    # to the embeddings. SQLite (3.35+) and PostgreSQL both drop a column in place.
    for column in reversed(_COLUMNS):
        op.drop_column("persons", column)
