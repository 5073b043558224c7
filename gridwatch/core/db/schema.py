"""The tables of the one database (SQLAlchemy Core metadata), shared by every store.

Adding a table or a column: declare it here on ``metadata``, then add a revision under
``migrations/versions/`` (copy the newest one: ``revision`` = the next number, ``down_revision`` = the
newest's revision, and ``op.create_table(...)`` / ``batch_op.add_column(...)`` with the same columns).
``tests/gridwatch/core/test_db.py`` checks that the migrations build exactly these tables on SQLite and
PostgreSQL.

Conventions: times that are compared in queries are ``UtcDateTime`` (aware UTC in Python, on SQLite an
ISO text that sorts like the time); the outbox's times are epoch seconds (``Double``). Rows that belong
to a Kafka partition (rule state, timers) carry ``partition`` (default 0), so a new owner of a partition
can load them.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

# Stable constraint names, so that later migrations can alter them on both backends.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# A 64-bit auto-increment key; SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid).
BigId = BigInteger().with_variant(Integer(), "sqlite")

ID_LENGTH = 64  # person ids, registry names, rule ids, sink names: config identifiers are at most 64


class UtcDateTime(TypeDecorator[dt.datetime]):
    """An aware datetime, stored as UTC (``timestamptz`` on PostgreSQL, ISO text on SQLite)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UtcDateTime needs an aware datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class JsonStringList(TypeDecorator[list[str]]):
    """A short list of ids, stored as JSON text (``'[]'`` when empty): read whole, never queried into."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: list[str] | tuple[str, ...] | None, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(list(value), separators=(",", ":"))

    def process_result_value(self, value: Any, dialect: Dialect) -> list[str] | None:
        if value is None:
            return None
        items = json.loads(value)
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ValueError("not a JSON list of strings")
        return items


# Change counters: a row per family of records that another process may change (the registry store:
# `gridwatch registry remove` while the service runs). Bumped in the same transaction as the change.
generations = Table(
    "generations",
    metadata,
    Column("name", String(ID_LENGTH), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# --- registry store (recognition) ---------------------------------------------------------------
persons = Table(
    "persons",
    metadata,
    Column("person_id", String(ID_LENGTH), primary_key=True),  # pseudonymous ("p_" + random hex)
    Column("registry", String(ID_LENGTH), nullable=False, index=True),
    Column("display_name", Text, nullable=False),
    Column("enrolled_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
    # Per-person conditions (gridwatch.core.persons): config ids and a case number, never free text.
    Column("home_sources", JsonStringList, nullable=False, server_default="[]"),
    Column("allowed_zones", JsonStringList, nullable=False, server_default="[]"),
    Column("allowed_hours", String(ID_LENGTH), nullable=True),  # a schedule id
    Column("case_ref", String(ID_LENGTH), nullable=True),
)

embeddings = Table(
    "embeddings",
    metadata,
    Column("embedding_id", BigId, primary_key=True, autoincrement=True),
    Column(
        "person_id",
        String(ID_LENGTH),
        ForeignKey("persons.person_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("model_id", String(255), nullable=False),
    Column("photo_sha256", String(64), nullable=False),  # the photo itself is never kept
    # The float32 (little-endian) template sealed by the registry's data key (AES-GCM envelope bound to
    # person, registry and model: gridwatch.core.registry_keys.template_aad); `key_id` is that key's id.
    # A NULL key_id is a plaintext row of an older version, sealed in place when the store opens.
    Column("vector", LargeBinary, nullable=False),
    Column("key_id", String(32), nullable=True),
)

# Approval records of corrections registries (Community Corrections Law art. 29): one or more per entry,
# never edited (an extension is a new row that names the one it extends in `supersedes`). The entry is
# matched only while one of its approvals runs (start <= now < end). Erased with the person.
approvals = Table(
    "approvals",
    metadata,
    Column("approval_id", String(32), primary_key=True),
    Column(
        "person_id",
        String(ID_LENGTH),
        ForeignKey("persons.person_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("seq", Integer, nullable=False),  # 1 for the entry's first approval, then each extension's number
    Column("registry", String(ID_LENGTH), nullable=False, index=True),
    Column("approval_doc", String(200), nullable=False),  # the approval document's number
    Column("approver", String(200), nullable=False),  # who approved (an official or an office)
    Column("situation_code", Integer, nullable=False),  # art. 29 situation, 1 to 5
    Column("start", UtcDateTime, nullable=False),
    Column("end", UtcDateTime, nullable=False),
    Column("supersedes", String(32), nullable=True),  # the approval this one extends
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("recorded_by", String(ID_LENGTH), nullable=False),
    UniqueConstraint("person_id", "seq"),  # two extensions made at once: one of them is refused, not both kept
)

# --- rule state (rules) ---------------------------------------------------------------------------
cooldowns = Table(
    "cooldowns",
    metadata,
    Column("rule", String(ID_LENGTH), primary_key=True),
    Column("person_id", String(ID_LENGTH), primary_key=True),
    Column("partition", Integer, nullable=False, default=0, server_default="0", index=True),
    Column("last_alert_at", UtcDateTime, nullable=False),
    Column("severity_rank", Integer, nullable=False),
    Column("suppressed", Integer, nullable=False, default=0, server_default="0"),
    # The alert that started the cooldown, and when a sink first took it: the cooldown runs from delivery,
    # and while the alert waits undelivered every later sighting is suppressed. NULL alert_id = a row from
    # before delivery tracking (its last_alert_at counts as delivered).
    Column("alert_id", String(64), nullable=True, index=True),
    Column("delivered_at", UtcDateTime, nullable=True),
)

# Absence timers (`not_seen`): one per (rule, person), due when the person has been away long enough.
rule_timers = Table(
    "rule_timers",
    metadata,
    Column("rule", String(ID_LENGTH), primary_key=True),
    Column("person_id", String(ID_LENGTH), primary_key=True),
    Column("partition", Integer, nullable=False, default=0, server_default="0", index=True),
    Column("started_at", UtcDateTime, nullable=False),  # start of the absence: enrolment, rule start, or sighting
    Column("last_seen_at", UtcDateTime, nullable=True),
    Column("last_seen_source", String(ID_LENGTH), nullable=True),
    Column("due_at", UtcDateTime, nullable=True, index=True),  # NULL = fired, waiting for the next sighting
    Column("fired", Integer, nullable=False, default=0, server_default="0"),  # alerts made in this absence
)

# Recent passes per (rule, subject) for the counting kinds (`frequency`, `stranger_at_gate`): a JSON list.
rule_passes = Table(
    "rule_passes",
    metadata,
    Column("rule", String(ID_LENGTH), primary_key=True),
    Column("subject", String(255), primary_key=True),
    Column("partition", Integer, nullable=False, default=0, server_default="0", index=True),
    Column("passes_json", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False, index=True),
)

# --- alert outbox (notifier) ----------------------------------------------------------------------
alerts = Table(
    "alerts",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("alert_id", String(255), nullable=False, unique=True),
    Column("alert_json", Text, nullable=False),
    Column("added_at", Double, nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("alert_id", String(255), ForeignKey("alerts.alert_id"), primary_key=True),
    Column("sink", String(255), primary_key=True),
    Column("delivered_at", Double, nullable=True),
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("next_attempt_at", Double, nullable=False),
    Column("last_error", Text, nullable=True),
)
Index("ix_deliveries_pending", deliveries.c.sink, deliveries.c.delivered_at, deliveries.c.next_attempt_at)

# Dead letters: a delivery moved out of ``deliveries`` because the sink refuses that alert for good (or it
# failed ``park_after_attempts`` times while later alerts went through). Kept for an operator to requeue.
parked_deliveries = Table(
    "parked_deliveries",
    metadata,
    Column("alert_id", String(255), ForeignKey("alerts.alert_id"), primary_key=True),
    Column("sink", String(255), primary_key=True),
    Column("parked_at", Double, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", Text, nullable=False),
)

# --- cases, notifications, acknowledgements (notifier: the responsible staff) -------------------------
# One case per alert: its lifecycle, and the next timer (first notification after group_wait, a reminder,
# an escalation step) as one indexed ``due_at``. ``plan_json`` freezes the route's plan at creation, so a
# config reload never changes a ladder that is already climbing.
cases = Table(
    "cases",
    metadata,
    Column("alert_id", String(255), primary_key=True),
    Column("subject", String(255), nullable=False, index=True),  # the alert's key: person, or source:<id>
    Column("partition", Integer, nullable=False, default=0, server_default="0", index=True),
    Column("rule", String(ID_LENGTH), nullable=False),
    Column("registry", String(ID_LENGTH), nullable=True),
    Column("severity", String(16), nullable=False),
    Column("grid", String(ID_LENGTH), nullable=True, index=True),
    Column("state", String(32), nullable=False, index=True),
    Column("level", Integer, nullable=False, default=0, server_default="0"),
    Column("ladder_grid", String(ID_LENGTH), nullable=True),  # the grid the ladder has climbed to
    Column("repeats", Integer, nullable=False, default=0, server_default="0"),  # reminders at this level
    Column("linked_to", String(255), nullable=True),  # an earlier case of the subject, open when this one opened
    Column("plan_json", Text, nullable=False),
    Column("recipients", JsonStringList, nullable=False, server_default="[]"),  # everyone notified so far
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("first_notified_at", UtcDateTime, nullable=True),
    Column("last_notified_at", UtcDateTime, nullable=True),
    Column("due_at", UtcDateTime, nullable=True, index=True),
    Column("acked_by", String(ID_LENGTH), nullable=True),
    Column("acked_at", UtcDateTime, nullable=True),
    Column("resolved_by", String(ID_LENGTH), nullable=True),
    Column("resolved_at", UtcDateTime, nullable=True),
    Column("outcome", String(32), nullable=True),
)

# Every transition of a case; also the outbox of ``gridwatch.alert-events`` (``published_at``).
case_events = Table(
    "case_events",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("alert_id", String(255), ForeignKey("cases.alert_id"), nullable=False, index=True),
    Column("event_json", Text, nullable=False),
    Column("published_at", Double, nullable=True),
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("next_attempt_at", Double, nullable=False),
)
Index("ix_case_events_unpublished", case_events.c.published_at, case_events.c.next_attempt_at)

# Two-person confirmation: one row per (case, operator); the primary key refuses the same person twice.
case_confirmations = Table(
    "case_confirmations",
    metadata,
    Column("alert_id", String(255), ForeignKey("cases.alert_id"), primary_key=True),
    Column("actor", String(ID_LENGTH), primary_key=True),
    Column("at", UtcDateTime, nullable=False),
)

# The notification outbox: one row per (alert, staff, channel, level, repeat), delivered at least once.
notifications = Table(
    "notifications",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("notification_id", String(64), nullable=False, unique=True),
    Column("alert_id", String(255), ForeignKey("cases.alert_id"), nullable=False, index=True),
    Column("staff_id", String(ID_LENGTH), nullable=False),
    Column("channel", String(ID_LENGTH), nullable=False),
    Column("notification_json", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("next_attempt_at", Double, nullable=False),
    Column("delivered_at", Double, nullable=True),
    Column("parked_at", Double, nullable=True),
    Column("last_error", Text, nullable=True),
)
Index(
    "ix_notifications_pending",
    notifications.c.channel,
    notifications.c.delivered_at,
    notifications.c.parked_at,
    notifications.c.next_attempt_at,
)

# --- evidence (recognition): sealed images, see gridwatch.core.crypto --------------------------------
# `blob` is an AES-GCM envelope bound to (kind, registry, person_id, object_id); `key_id` says which key
# sealed it: the registry's data key (gridwatch.core.registry_keys), or the master key for rows of 0.x
# versions, re-sealed under the registry's key when the service starts.
evidence = Table(
    "evidence",
    metadata,
    Column("object_id", String(64), primary_key=True),
    Column("registry", String(ID_LENGTH), nullable=False, index=True),
    Column("person_id", String(ID_LENGTH), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # face | frame | reference
    Column("alert_id", String(255), nullable=True),
    Column("sighting_id", String(64), nullable=True, index=True),
    Column("key_id", String(32), nullable=False),
    Column("blob", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
)

# One-click acknowledgement links are single use: the id of each used link, kept until it expires.
used_ack_links = Table(
    "used_ack_links",
    metadata,
    Column("link_id", String(64), primary_key=True),
    Column("alert_id", String(255), nullable=False),
    Column("staff_id", String(ID_LENGTH), nullable=False),
    Column("used_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False, index=True),
)

# --- console accounts (gridwatch.console) ------------------------------------------------------------
# Local users of the console: an argon2id hash, never the password. ``grids``/``registries`` scope what an
# operator or registrar sees; ``staff_id`` ties a user to a staff member of the config (notifications).
users = Table(
    "users",
    metadata,
    Column("name", String(ID_LENGTH), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("grids", JsonStringList, nullable=False, server_default="[]"),
    Column("registries", JsonStringList, nullable=False, server_default="[]"),
    Column("staff_id", String(ID_LENGTH), nullable=True),
    Column("password_hash", Text, nullable=False),
    Column("disabled", Integer, nullable=False, default=0, server_default="0"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Bearer tokens of machine clients: only the SHA-256 of the token is kept (the token is shown once).
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("name", String(ID_LENGTH), ForeignKey("users.name"), nullable=False, index=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_used_at", UtcDateTime, nullable=True),
    Column("revoked", Integer, nullable=False, default=0, server_default="0"),
)

# Signed-in browser sessions: the cookie's value is a random id, only its SHA-256 is kept.
sessions = Table(
    "sessions",
    metadata,
    Column("session_id_sha256", String(64), primary_key=True),
    Column("user", String(ID_LENGTH), ForeignKey("users.name"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
)

# The highest serial of a stream gate's events that were handed over completely (nothing below it still in
# flight): after a restart, the device's event history is searched from here, so events that arrived while
# gridwatch was down are recovered (in-memory serials alone forget them).
gate_watermarks = Table(
    "gate_watermarks",
    metadata,
    Column("gate_id", String(ID_LENGTH), primary_key=True),
    Column("serial", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
