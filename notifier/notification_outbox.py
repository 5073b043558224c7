"""The notification outbox: one row per notification (alert, staff, channel, level, repeat) in the
``notifications`` table, delivered at least once.

Notifications enter it in the same transaction as the case step that decides them (``add_in`` on the
caller's connection), so a crash either keeps both or neither. Each row carries its own retry state
(``attempts``, ``next_attempt_at``, ``last_error``): a failing row is retried on its own schedule and
never holds back the rows behind it. A row is pending until it is delivered (``delivered_at``) or set
aside for an operator (``parked_at``); ``requeue`` makes a parked row pending again.

The methods other than ``add_in`` block (each is one committed transaction): async callers run them in
a worker thread. When the database drops, a call waits and retries (``Database.transaction``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import ColumnElement, Connection, func, select

from gridwatch.core.db import Database
from gridwatch.core.db.schema import notifications
from gridwatch.core.db.sql import insert
from gridwatch.core.events import Notification

T = TypeVar("T")
_MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class PendingNotification:
    """One notification not yet delivered (nor parked)."""

    seq: int
    notification_id: str
    alert_id: str
    staff_id: str
    channel: str
    notification_json: str
    attempts: int
    next_attempt_at: float
    last_error: str | None

    def notification(self) -> Notification:
        """The stored notification; raises ``ValueError`` (pydantic's) when the JSON no longer validates."""
        return Notification.model_validate_json(self.notification_json)


@dataclass(frozen=True, slots=True)
class ParkedNotification:
    notification_id: str
    alert_id: str
    staff_id: str
    channel: str
    parked_at: float
    attempts: int
    error: str | None


_PENDING = notifications.c.delivered_at.is_(None) & notifications.c.parked_at.is_(None)


class NotificationOutbox:
    """See the module docstring. No I/O in ``__init__``; the database belongs to its owner."""

    def __init__(self, database: Database) -> None:
        self._db = database

    @property
    def database(self) -> Database:
        return self._db

    @staticmethod
    def add_in(conn: Connection, notification: Notification, now: float) -> bool:
        """Insert a pending row inside the caller's transaction (due at ``now``); False for a known id."""
        inserted = conn.execute(
            insert(conn, notifications)
            .values(
                notification_id=notification.notification_id,
                alert_id=notification.alert_id,
                staff_id=notification.staff_id,
                channel=notification.channel,
                notification_json=notification.to_json(),
                created_at=now,
                next_attempt_at=now,
            )
            .on_conflict_do_nothing(index_elements=[notifications.c.notification_id])
            .returning(notifications.c.seq)
        ).first()
        return inserted is not None

    def add(self, notification: Notification, *, now: float | None = None) -> bool:
        """``add_in`` in a transaction of its own (the case's row must exist: a foreign key)."""
        at = time.time() if now is None else now
        return self._run(lambda conn: self.add_in(conn, notification, at), "notification outbox add")

    def pending(self, channel: str, limit: int = 100, *, due_at: float | None = None) -> list[PendingNotification]:
        """Pending rows of a channel, oldest first; with ``due_at`` only those due by then."""
        query = (
            select(
                notifications.c.seq,
                notifications.c.notification_id,
                notifications.c.alert_id,
                notifications.c.staff_id,
                notifications.c.channel,
                notifications.c.notification_json,
                notifications.c.attempts,
                notifications.c.next_attempt_at,
                notifications.c.last_error,
            )
            .where(notifications.c.channel == channel, _PENDING)
            .order_by(notifications.c.seq)
            .limit(max(int(limit), 0))
        )
        if due_at is not None:
            query = query.where(notifications.c.next_attempt_at <= due_at)
        rows = self._run(lambda conn: conn.execute(query).all(), "notification outbox read", read_only=True)
        return [
            PendingNotification(int(r[0]), r[1], r[2], r[3], r[4], r[5], int(r[6]), float(r[7]), r[8]) for r in rows
        ]

    def next_due(self, channel: str) -> float | None:
        """When the next pending row of a channel is due; None when nothing is pending."""
        query = select(func.min(notifications.c.next_attempt_at)).where(notifications.c.channel == channel, _PENDING)
        value = self._run(lambda conn: conn.execute(query).scalar(), "notification outbox read", read_only=True)
        return None if value is None else float(value)

    def mark_delivered(self, notification_id: str, *, now: float | None = None) -> bool:
        """Record a delivery; False when the row was not pending (unknown, delivered or parked)."""
        at = time.time() if now is None else now
        stmt = (
            notifications.update()
            .where(notifications.c.notification_id == notification_id, _PENDING)
            .values(delivered_at=at, attempts=notifications.c.attempts + 1, last_error=None)
        )
        return self._run(lambda conn: conn.execute(stmt).rowcount == 1, "notification outbox delivery")

    def mark_failed(self, notification_id: str, error: str, next_attempt_at: float) -> int:
        """Record a failed attempt and when to try again; the attempts so far (0: no pending row)."""
        stmt = (
            notifications.update()
            .where(notifications.c.notification_id == notification_id, _PENDING)
            .values(
                attempts=notifications.c.attempts + 1,
                last_error=error[:_MAX_ERROR_CHARS],
                next_attempt_at=next_attempt_at,
            )
            .returning(notifications.c.attempts)
        )
        return self._run(lambda conn: int(conn.execute(stmt).scalar() or 0), "notification outbox failure")

    def park(self, notification_id: str, error: str, *, now: float | None = None) -> int:
        """Set a pending row aside for an operator; its attempts, this one included (0: no pending row)."""
        at = time.time() if now is None else now
        stmt = (
            notifications.update()
            .where(notifications.c.notification_id == notification_id, _PENDING)
            .values(parked_at=at, attempts=notifications.c.attempts + 1, last_error=error[:_MAX_ERROR_CHARS])
            .returning(notifications.c.attempts)
        )
        return self._run(lambda conn: int(conn.execute(stmt).scalar() or 0), "notification outbox park")

    def requeue(self, notification_id: str, *, now: float | None = None) -> bool:
        """Make a parked row pending again (attempts from 0, due now); False when it was not parked."""
        at = time.time() if now is None else now
        stmt = (
            notifications.update()
            .where(notifications.c.notification_id == notification_id, notifications.c.parked_at.is_not(None))
            .values(parked_at=None, attempts=0, next_attempt_at=at)
        )
        return self._run(lambda conn: conn.execute(stmt).rowcount == 1, "notification outbox requeue")

    def count_pending(self, channel: str | None = None) -> int:
        return self._count(_PENDING, channel)

    def count_parked(self, channel: str | None = None) -> int:
        return self._count(notifications.c.parked_at.is_not(None), channel)

    def count_delivered(self, channel: str | None = None) -> int:
        return self._count(notifications.c.delivered_at.is_not(None), channel)

    def depth_by_channel(self) -> dict[str, dict[str, int]]:
        """``{"pending": {channel: n}, "parked": {channel: n}}`` for ``/status``: one attempt, no retry window
        (the caller is the event loop and must not wait out a database outage)."""
        pending = select(notifications.c.channel, func.count()).where(_PENDING).group_by(notifications.c.channel)
        parked = (
            select(notifications.c.channel, func.count())
            .where(notifications.c.parked_at.is_not(None))
            .group_by(notifications.c.channel)
        )

        def read(conn: Connection) -> dict[str, dict[str, int]]:
            return {
                "pending": {str(r[0]): int(r[1]) for r in conn.execute(pending)},
                "parked": {str(r[0]): int(r[1]) for r in conn.execute(parked)},
            }

        return self._db.transaction(read, what="notification outbox status", retry_s=0, read_only=True)

    def parked(self, channel: str | None = None, limit: int = 100) -> list[ParkedNotification]:
        """Parked rows, oldest parked first."""
        query = (
            select(
                notifications.c.notification_id,
                notifications.c.alert_id,
                notifications.c.staff_id,
                notifications.c.channel,
                notifications.c.parked_at,
                notifications.c.attempts,
                notifications.c.last_error,
            )
            .where(notifications.c.parked_at.is_not(None))
            .order_by(notifications.c.parked_at, notifications.c.seq)
            .limit(max(int(limit), 0))
        )
        if channel is not None:
            query = query.where(notifications.c.channel == channel)
        rows = self._run(lambda conn: conn.execute(query).all(), "notification outbox read", read_only=True)
        return [ParkedNotification(r[0], r[1], r[2], r[3], float(r[4]), int(r[5]), r[6]) for r in rows]

    def get(self, notification_id: str) -> Notification | None:
        query = select(notifications.c.notification_json).where(notifications.c.notification_id == notification_id)
        text = self._run(lambda conn: conn.execute(query).scalar(), "notification outbox read", read_only=True)
        return None if text is None else Notification.model_validate_json(text)

    def _count(self, condition: ColumnElement[bool], channel: str | None) -> int:
        query = select(func.count()).select_from(notifications).where(condition)
        if channel is not None:
            query = query.where(notifications.c.channel == channel)
        return int(self._run(lambda conn: conn.execute(query).scalar_one(), "notification outbox read", read_only=True))

    def _run(self, fn: Callable[[Connection], T], what: str, *, read_only: bool = False) -> T:
        return self._db.transaction(fn, what=what, read_only=read_only)
