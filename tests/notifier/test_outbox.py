"""The outbox on both backends (``databases``: SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import text

from notifier.outbox import Outbox
from tests.notifier.conftest import AlertFactory
from tests.support.db import Databases


def test_add_once_per_alert_id(databases: Databases, make_alert: AlertFactory) -> None:
    alert = make_alert()
    with Outbox(databases(), sinks=["console", "kafka"]) as outbox:
        assert outbox.add(alert) is True
        assert outbox.add(alert) is False
        assert outbox.add(alert.model_copy(update={"explanation": "replayed"})) is False
        assert [p.alert_id for p in outbox.pending("console")] == [alert.alert_id]
        assert [p.alert_id for p in outbox.pending("kafka")] == [alert.alert_id]
        assert outbox.count_pending() == 2
        assert outbox.get(alert.alert_id) == alert


def test_per_sink_delivery_rows(databases: Databases, make_alert: AlertFactory) -> None:
    first, second = make_alert(), make_alert()
    with Outbox(databases(), sinks=["console", "kafka"]) as outbox:
        outbox.add(first, now=100.0)
        outbox.add(second, now=101.0)
        assert outbox.mark_delivered(first.alert_id, "console") is True
        assert outbox.mark_delivered(first.alert_id, "console") is False
        assert [p.alert_id for p in outbox.pending("console")] == [second.alert_id]
        assert [p.alert_id for p in outbox.pending("kafka")] == [first.alert_id, second.alert_id]
        assert [p.alert_id for p in outbox.pending("kafka", limit=1)] == [first.alert_id]

        assert outbox.mark_failed(first.alert_id, "kafka", "broker down", next_attempt_at=200.0) == 1
        assert outbox.mark_failed(first.alert_id, "kafka", "broker down", next_attempt_at=300.0) == 2
        assert outbox.mark_failed(first.alert_id, "console", "x", next_attempt_at=1.0) == 0  # already delivered
        due = outbox.pending("kafka", due_at=150.0)
        assert [p.alert_id for p in due] == [second.alert_id]
        retried = outbox.pending("kafka", due_at=300.0)[0]
        assert retried.alert_id == first.alert_id
        assert (retried.attempts, retried.last_error, retried.next_attempt_at) == (2, "broker down", 300.0)
        assert outbox.next_due("kafka") == 101.0
        assert outbox.next_due("nobody") is None
        assert outbox.oldest_pending_age(now=110.0) == 10.0  # `first`, still pending for kafka
        outbox.mark_delivered(first.alert_id, "kafka")
        assert outbox.oldest_pending_age(now=110.0) == 9.0
        for sink in ("console", "kafka"):
            outbox.mark_delivered(second.alert_id, sink)
        assert outbox.oldest_pending_age() is None


def test_sink_registered_later_gets_later_alerts_only(databases: Databases, make_alert: AlertFactory) -> None:
    early, late = make_alert(), make_alert()
    with Outbox(databases(), sinks=["console"]) as outbox:
        outbox.add(early)
        outbox.set_sinks(["console", "jsonl"])
        outbox.add(late)
        assert [p.alert_id for p in outbox.pending("jsonl")] == [late.alert_id]


def test_survives_reopen_and_is_wal_full_sync(databases: Databases, make_alert: AlertFactory) -> None:
    alert = make_alert()
    first = databases()
    with Outbox(first, sinks=["kafka"]) as outbox:
        outbox.add(alert)
    first.close()  # the process ends
    restarted = databases()
    with Outbox(restarted) as reopened:
        assert [p.alert() for p in reopened.pending("kafka")] == [alert]
        assert reopened.add(alert) is False
    with restarted.engine.connect() as conn:
        assert conn.execute(text("SELECT alert_json FROM alerts")).all() == [(alert.to_json(),)]
        if restarted.dialect == "sqlite":
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
