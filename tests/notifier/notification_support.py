"""Notifications and the cases they belong to, for the tests of channels and the dispatcher."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection

from gridwatch.core.db import Database
from gridwatch.core.db.schema import cases
from gridwatch.core.db.sql import insert
from gridwatch.core.events import Notification, Severity, notification_id_for
from notifier.notification_outbox import NotificationOutbox
from tests.support.db import sqlite_url

NotificationFactory = Callable[..., Notification]
AT = dt.datetime(2026, 12, 1, 3, 12, tzinfo=dt.UTC)


def notification_factory() -> NotificationFactory:
    """Notifications with distinct alerts unless ``alert_id`` is given again."""
    counter = itertools.count(1)

    def make(
        staff_id: str = "s-wang",
        *,
        channel: str = "hook",
        alert_id: str | None = None,
        level: int = 0,
        repeat: int = 0,
        ack_url: str | None = "https://gw.example.org/a/tok-SECRET-LINK",
        explanation: str = "Person of registry welfare not seen for 24 h (last at gate-north).",
    ) -> Notification:
        n = next(counter)
        alert = alert_id or f"alert-{n:04d}"
        return Notification(
            notification_id=notification_id_for(alert, staff_id, channel, level, repeat),
            alert_id=alert,
            staff_id=staff_id,
            staff_name=f"Staff {staff_id}",
            channel=channel,
            level=level,
            repeat=repeat,
            created_at=AT + dt.timedelta(seconds=n),
            rule="welfare-absent",
            kind="absence",
            severity=Severity.WARNING,
            person_id="p-0042",
            registry="welfare",
            source="gate-north",
            grid="grid-7",
            explanation=explanation,
            alert_created_at=AT,
            ack_url=ack_url,
        )

    return make


def add_case(conn: Connection, alert_id: str) -> None:
    """The minimal ``cases`` row a notification's foreign key needs (nothing if it exists)."""
    conn.execute(
        insert(conn, cases)
        .values(
            alert_id=alert_id,
            subject="p-0042",
            rule="welfare-absent",
            severity="warning",
            state="notified",
            plan_json="{}",
            created_at=AT,
            updated_at=AT,
        )
        .on_conflict_do_nothing(index_elements=[cases.c.alert_id])
    )


def store(database: Database, *notifications: Notification, now: float | None = None) -> None:
    """Commit notifications (and their cases) as the case engine does: in one transaction."""
    at = 0.0 if now is None else now

    def add(conn: Connection) -> None:
        for notification in notifications:
            add_case(conn, notification.alert_id)
            NotificationOutbox.add_in(conn, notification, at)

    database.transaction(add, what="test notifications")


def audit_records(path: Path, action: str) -> list[tuple[str, dict[str, object]]]:
    """``(target, details)`` of the audit records of ``action``."""
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [(r["target"], r["details"]) for r in records if r["action"] == action]


@contextmanager
def sqlite_database(path: Path) -> Iterator[Database]:
    with Database(sqlite_url(path)) as database:
        yield database
