from __future__ import annotations

import sqlite3
from pathlib import Path

from notifier.outbox import Outbox
from tests.notifier.conftest import AlertFactory


def test_add_once_per_alert_id(tmp_path: Path, make_alert: AlertFactory) -> None:
    alert = make_alert()
    with Outbox(tmp_path / "outbox.sqlite3", sinks=["console", "kafka"]) as outbox:
        assert outbox.add(alert) is True
        assert outbox.add(alert) is False
        assert outbox.add(alert.model_copy(update={"explanation": "replayed"})) is False
        assert [p.alert_id for p in outbox.pending("console")] == [alert.alert_id]
        assert [p.alert_id for p in outbox.pending("kafka")] == [alert.alert_id]
        assert outbox.count_pending() == 2
        assert outbox.get(alert.alert_id) == alert


def test_per_sink_delivery_rows(tmp_path: Path, make_alert: AlertFactory) -> None:
    first, second = make_alert(), make_alert()
    with Outbox(tmp_path / "outbox.sqlite3", sinks=["console", "kafka"]) as outbox:
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


def test_sink_registered_later_gets_later_alerts_only(tmp_path: Path, make_alert: AlertFactory) -> None:
    early, late = make_alert(), make_alert()
    with Outbox(tmp_path / "outbox.sqlite3", sinks=["console"]) as outbox:
        outbox.add(early)
        outbox.set_sinks(["console", "jsonl"])
        outbox.add(late)
        assert [p.alert_id for p in outbox.pending("jsonl")] == [late.alert_id]


def test_survives_reopen_and_is_wal_full_sync(tmp_path: Path, make_alert: AlertFactory) -> None:
    alert = make_alert()
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path, sinks=["kafka"]) as outbox:
        outbox.add(alert)
    with Outbox(path) as reopened:
        assert [p.alert() for p in reopened.pending("kafka")] == [alert]
        assert reopened.add(alert) is False
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        stored = db.execute("SELECT alert_json FROM alerts").fetchall()
        assert stored == [(alert.to_json(),)]
    finally:
        db.close()
