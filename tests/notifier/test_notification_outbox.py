"""The notification outbox on both backends (``databases``: SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import Connection

from notifier.notification_outbox import NotificationOutbox
from tests.notifier.notification_support import add_case, notification_factory, store
from tests.support.db import Databases


def test_add_in_once_per_notification_id(databases: Databases) -> None:
    make = notification_factory()
    first = make("s-wang")
    database = databases()
    outbox = NotificationOutbox(database)

    def add(conn: Connection) -> list[bool]:
        add_case(conn, first.alert_id)
        return [NotificationOutbox.add_in(conn, first, 100.0), NotificationOutbox.add_in(conn, first, 101.0)]

    assert database.transaction(add, what="test") == [True, False]
    assert outbox.add(first, now=102.0) is False
    [row] = outbox.pending("hook")
    assert (row.notification_id, row.alert_id, row.staff_id, row.attempts, row.next_attempt_at) == (
        first.notification_id,
        first.alert_id,
        "s-wang",
        0,
        100.0,
    )
    assert row.notification() == first
    assert outbox.get(first.notification_id) == first
    assert outbox.count_pending() == outbox.count_pending("hook") == 1
    assert outbox.count_pending("other") == 0


def test_pending_per_channel_oldest_first_and_due(databases: Databases) -> None:
    make = notification_factory()
    a, b, c = make("s-1"), make("s-2"), make("s-3", channel="wecom")
    database = databases()
    outbox = NotificationOutbox(database)
    store(database, a, b, c, now=100.0)
    assert [p.notification_id for p in outbox.pending("hook")] == [a.notification_id, b.notification_id]
    assert [p.notification_id for p in outbox.pending("hook", limit=1)] == [a.notification_id]
    assert [p.notification_id for p in outbox.pending("wecom")] == [c.notification_id]

    assert outbox.mark_failed(a.notification_id, "HTTP 500", next_attempt_at=200.0) == 1
    assert outbox.mark_failed(a.notification_id, "HTTP 500", next_attempt_at=300.0) == 2
    assert [p.notification_id for p in outbox.pending("hook", due_at=150.0)] == [b.notification_id]
    retried = outbox.pending("hook", due_at=300.0)[0]
    assert (retried.notification_id, retried.attempts, retried.last_error) == (a.notification_id, 2, "HTTP 500")
    assert outbox.next_due("hook") == 100.0
    assert outbox.next_due("nobody") is None

    assert outbox.mark_delivered(b.notification_id) is True
    assert outbox.mark_delivered(b.notification_id) is False
    assert outbox.mark_failed(b.notification_id, "late", next_attempt_at=1.0) == 0
    assert outbox.next_due("hook") == 300.0
    assert outbox.count_delivered() == 1

    assert outbox.park(a.notification_id, "HTTP 400") == 3
    assert outbox.park(a.notification_id, "again") == 0
    assert outbox.pending("hook") == []
    assert outbox.next_due("hook") is None
    assert (outbox.count_pending(), outbox.count_parked(), outbox.count_parked("hook")) == (1, 1, 1)
    [parked] = outbox.parked("hook")
    assert (parked.notification_id, parked.attempts, parked.error) == (a.notification_id, 3, "HTTP 400")

    assert outbox.requeue(a.notification_id, now=400.0) is True
    assert outbox.requeue(a.notification_id) is False
    [again] = outbox.pending("hook")
    assert (again.notification_id, again.attempts, again.next_attempt_at) == (a.notification_id, 0, 400.0)
