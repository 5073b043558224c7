"""The responsible staff: cases, case events, confirmations, notifications, used acknowledgement links.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = 64


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("alert_id", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("rule", sa.String(_ID), nullable=False),
        sa.Column("registry", sa.String(_ID), nullable=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("grid", sa.String(_ID), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("ladder_grid", sa.String(_ID), nullable=True),
        sa.Column("repeats", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("linked_to", sa.String(255), nullable=True),
        sa.Column("plan_json", sa.Text(), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acked_by", sa.String(_ID), nullable=True),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(_ID), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("alert_id", name="pk_cases"),
    )
    for column in ("subject", "partition", "grid", "state", "due_at"):
        op.create_index(f"ix_cases_{column}", "cases", [column])

    op.create_table(
        "case_events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("alert_id", sa.String(255), nullable=False),
        sa.Column("event_json", sa.Text(), nullable=False),
        sa.Column("published_at", sa.Double(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["cases.alert_id"], name="fk_case_events_alert_id_cases"),
        sa.PrimaryKeyConstraint("seq", name="pk_case_events"),
        sa.UniqueConstraint("event_id", name="uq_case_events_event_id"),
    )
    op.create_index("ix_case_events_alert_id", "case_events", ["alert_id"])
    op.create_index("ix_case_events_unpublished", "case_events", ["published_at", "next_attempt_at"])

    op.create_table(
        "case_confirmations",
        sa.Column("alert_id", sa.String(255), nullable=False),
        sa.Column("actor", sa.String(_ID), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["cases.alert_id"], name="fk_case_confirmations_alert_id_cases"),
        sa.PrimaryKeyConstraint("alert_id", "actor", name="pk_case_confirmations"),
    )

    op.create_table(
        "notifications",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("notification_id", sa.String(64), nullable=False),
        sa.Column("alert_id", sa.String(255), nullable=False),
        sa.Column("staff_id", sa.String(_ID), nullable=False),
        sa.Column("channel", sa.String(_ID), nullable=False),
        sa.Column("notification_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Double(), nullable=False),
        sa.Column("delivered_at", sa.Double(), nullable=True),
        sa.Column("parked_at", sa.Double(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["alert_id"], ["cases.alert_id"], name="fk_notifications_alert_id_cases"),
        sa.PrimaryKeyConstraint("seq", name="pk_notifications"),
        sa.UniqueConstraint("notification_id", name="uq_notifications_notification_id"),
    )
    op.create_index("ix_notifications_alert_id", "notifications", ["alert_id"])
    op.create_index(
        "ix_notifications_pending", "notifications", ["channel", "delivered_at", "parked_at", "next_attempt_at"]
    )

    op.create_table(
        "used_ack_links",
        sa.Column("link_id", sa.String(64), nullable=False),
        sa.Column("alert_id", sa.String(255), nullable=False),
        sa.Column("staff_id", sa.String(_ID), nullable=False),
        sa.Column("used_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("link_id", name="pk_used_ack_links"),
    )
    op.create_index("ix_used_ack_links_expires_at", "used_ack_links", ["expires_at"])


def downgrade() -> None:
    op.drop_table("used_ack_links")
    op.drop_table("notifications")
    op.drop_table("case_confirmations")
    op.drop_table("case_events")
    op.drop_table("cases")
