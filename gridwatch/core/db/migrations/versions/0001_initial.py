"""The first schema of the one database: registry store, rule state, alert outbox.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    generations = op.create_table(
        "generations",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_generations"),
    )
    op.bulk_insert(generations, [{"name": "registry", "value": 0}])

    op.create_table(
        "persons",
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("registry", sa.String(64), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("person_id", name="pk_persons"),
    )
    op.create_index("ix_persons_registry", "persons", ["registry"])
    op.create_index("ix_persons_expires_at", "persons", ["expires_at"])
    op.create_table(
        "embeddings",
        sa.Column("embedding_id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("model_id", sa.String(255), nullable=False),
        sa.Column("photo_sha256", sa.String(64), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.person_id"], name="fk_embeddings_person_id_persons", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("embedding_id", name="pk_embeddings"),
    )
    op.create_index("ix_embeddings_person_id", "embeddings", ["person_id"])

    op.create_table(
        "cooldowns",
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("partition", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_alert_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("severity_rank", sa.Integer(), nullable=False),
        sa.Column("suppressed", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("rule", "person_id", name="pk_cooldowns"),
    )
    op.create_index("ix_cooldowns_partition", "cooldowns", ["partition"])

    op.create_table(
        "alerts",
        sa.Column("seq", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.String(255), nullable=False),
        sa.Column("alert_json", sa.Text(), nullable=False),
        sa.Column("added_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_alerts"),
        sa.UniqueConstraint("alert_id", name="uq_alerts_alert_id"),
    )
    op.create_table(
        "deliveries",
        sa.Column("alert_id", sa.String(255), nullable=False),
        sa.Column("sink", sa.String(255), nullable=False),
        sa.Column("delivered_at", sa.Double(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.Double(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.alert_id"], name="fk_deliveries_alert_id_alerts"),
        sa.PrimaryKeyConstraint("alert_id", "sink", name="pk_deliveries"),
    )
    op.create_index("ix_deliveries_pending", "deliveries", ["sink", "delivered_at", "next_attempt_at"])


def downgrade() -> None:
    for table in ("deliveries", "alerts", "cooldowns", "embeddings", "persons", "generations"):
        op.drop_table(table)
