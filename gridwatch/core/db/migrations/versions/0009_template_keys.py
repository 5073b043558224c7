"""Templates sealed at rest: the id of the registry data key that sealed each embedding.

Existing rows keep their plaintext vector and a NULL ``key_id``; the registry store seals them in
place when it opens with the master key (``RegistryStore.seal_plaintext``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("embeddings") as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("embeddings") as batch_op:
        batch_op.drop_column("key_id")
