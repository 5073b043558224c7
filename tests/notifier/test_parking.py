"""Poison alerts are parked for their sink instead of blocking it; a sink that is down parks nothing."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import update

from gridwatch.core.audit import AuditLog, verify
from gridwatch.core.config.notifier import KafkaSinkConfig, NotifierConfig, OutboxConfig
from gridwatch.core.db.schema import alerts
from gridwatch.core.events import Alert
from gridwatch.core.interfaces import RecordRejectedError
from notifier.notifier import Notifier
from notifier.outbox import Outbox
from notifier.sinks import KafkaSink
from tests.notifier.conftest import AlertFactory
from tests.notifier.helpers import wait_until
from tests.support.db import Databases, sqlite_outbox
from tests.support.kafka import KafkaBroker, create_topic, read_topic

POISON = "poison"


def _config(park_after_attempts: int = 20) -> NotifierConfig:
    return NotifierConfig(
        outbox=OutboxConfig(retry_initial_s=0.01, retry_max_s=0.05, park_after_attempts=park_after_attempts)
    )


class PickySink:
    """A unit-test sink that refuses alerts whose explanation is ``POISON`` and is down while ``down`` is set."""

    def __init__(self, name: str = "picky", *, refuse: type[Exception] = RecordRejectedError) -> None:
        self.name = name
        self.refuse = refuse
        self.down = False
        self.attempts: list[str] = []
        self.delivered: list[str] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def deliver(self, alert: Alert) -> None:
        self.attempts.append(alert.alert_id)
        if self.down:
            raise ConnectionError("broker down")
        if alert.explanation == POISON:
            raise self.refuse("record too large")
        self.delivered.append(alert.alert_id)


def _parked_total(sink: str) -> float:
    return REGISTRY.get_sample_value("gridwatch_deliveries_parked_total", {"sink": sink}) or 0.0


def _audit(path: Path, action: str) -> list[tuple[str, dict[str, object]]]:
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [(r["target"], r["details"]) for r in records if r["action"] == action]


async def test_a_rejected_alert_is_parked_and_the_later_ones_are_delivered(
    tmp_path: Path, make_alert: AlertFactory, caplog: pytest.LogCaptureFixture
) -> None:
    sink = PickySink("picky-rejects")
    first, poison, second, third = make_alert(), make_alert(explanation=POISON), make_alert(), make_alert()
    before = _parked_total(sink.name)
    audit_path = tmp_path / "audit.jsonl"
    with sqlite_outbox(tmp_path / "outbox.sqlite3") as outbox, AuditLog(audit_path) as audit:
        notifier = Notifier(_config(), outbox, [sink], audit)
        async with notifier:
            for alert in (first, poison, second, third):
                await notifier.submit(alert)
            await wait_until(lambda: outbox.count_pending(sink.name) == 0, what="every alert delivered or parked")
        assert sink.delivered == [first.alert_id, second.alert_id, third.alert_id]
        assert sink.attempts.count(poison.alert_id) == 1  # refused for good: never tried again
        assert outbox.count_parked(sink.name) == 1
        assert outbox.count_parked("other") == 0
        [parked] = outbox.parked(sink.name)
        assert (parked.alert_id, parked.sink, parked.attempts) == (poison.alert_id, sink.name, 1)
        assert parked.error == "RecordRejectedError: record too large"
        assert outbox.depth_by_sink() == {"pending": {}, "parked": {sink.name: 1}}
    assert _parked_total(sink.name) == before + 1
    assert _audit(audit_path, "alert.delivery_parked") == [
        (
            poison.alert_id,
            {
                "sink": sink.name,
                "attempt": 1,
                "reason": "the sink refuses this alert",
                "error": "RecordRejectedError: record too large",
            },
        )
    ]
    assert _audit(audit_path, "alert.delivery_failed") == []
    assert verify(audit_path).ok
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and poison.alert_id in r.getMessage()]
    assert len(errors) == 1


async def test_a_stored_alert_that_no_longer_validates_is_parked(tmp_path: Path, make_alert: AlertFactory) -> None:
    sink = PickySink("picky-invalid")
    broken, fine = make_alert(), make_alert()
    with sqlite_outbox(tmp_path / "outbox.sqlite3", sinks=[sink.name]) as outbox:
        outbox.add(broken)
        outbox.add(fine)
        outbox.database.transaction(
            lambda conn: conn.execute(
                update(alerts).where(alerts.c.alert_id == broken.alert_id).values(alert_json='{"alert_id": 1}')
            ),
            what="corrupt an alert",
        )
        async with Notifier(_config(), outbox, [sink], None):
            await wait_until(lambda: outbox.count_pending(sink.name) == 0, what="delivery of the valid alert")
        assert sink.delivered == [fine.alert_id]
        assert sink.attempts == [fine.alert_id]  # the broken row never reached the sink
        [parked] = outbox.parked()
        assert parked.alert_id == broken.alert_id
        assert parked.error.startswith("ValidationError: ")


async def test_a_sink_that_is_down_backs_off_and_parks_nothing(tmp_path: Path, make_alert: AlertFactory) -> None:
    sink = PickySink("picky-down")
    sink.down = True
    with sqlite_outbox(tmp_path / "outbox.sqlite3") as outbox:
        async with Notifier(_config(park_after_attempts=2), outbox, [sink], None) as notifier:
            for _ in range(3):
                await notifier.submit(make_alert())
            # Far past the bound for the oldest alert: still pending, nothing parked.
            await wait_until(lambda: len(sink.attempts) >= 12, what="many failed attempts")
            assert outbox.count_parked() == 0
            assert outbox.count_pending(sink.name) == 3
            assert max(p.attempts for p in outbox.pending(sink.name)) >= 4
            sink.down = False
            await wait_until(lambda: outbox.count_pending(sink.name) == 0, what="delivery after recovery")
        assert len(sink.delivered) == 3
        assert outbox.count_parked() == 0


async def test_an_alert_failing_past_the_bound_is_parked_once_a_later_one_is_delivered(
    tmp_path: Path, make_alert: AlertFactory
) -> None:
    # Not a RecordRejectedError: the notifier cannot tell the sink's fault from the alert's, so it retries
    # up to the bound, then parks it only because the next alert goes through and it fails right after.
    sink = PickySink("picky-bound", refuse=ValueError)
    poison, fine = make_alert(explanation=POISON), make_alert()
    with sqlite_outbox(tmp_path / "outbox.sqlite3") as outbox:
        async with Notifier(_config(park_after_attempts=3), outbox, [sink], None) as notifier:
            await notifier.submit(poison)
            await wait_until(lambda: len(sink.attempts) >= 3, what="attempts up to the bound")
            await wait_until(lambda: len(sink.attempts) >= 5, what="the alert alone stays pending")
            # Alone, it is never parked: nothing shows that the sink works.
            assert outbox.count_parked() == 0
            assert outbox.count_pending(sink.name) == 1
            await notifier.submit(fine)
            await wait_until(lambda: outbox.count_parked(sink.name) == 1, what="the poison alert parked")
        assert sink.delivered == [fine.alert_id]
        assert outbox.count_pending(sink.name) == 0
        [parked] = outbox.parked()
        assert parked.alert_id == poison.alert_id
        assert parked.attempts >= 4
        assert parked.error == "ValueError: record too large"


def test_park_and_requeue(databases: Databases, make_alert: AlertFactory) -> None:
    first, second = make_alert(), make_alert()
    with Outbox(databases(), sinks=["console", "kafka"]) as outbox:
        outbox.add(first, now=100.0)
        outbox.add(second, now=101.0)
        outbox.mark_failed(first.alert_id, "kafka", "boom", 105.0)
        assert outbox.park(first.alert_id, "kafka", "x" * 1000, now=110.0) == 2
        assert outbox.park(first.alert_id, "kafka", "again", now=111.0) == 2  # parked already: unchanged
        assert outbox.park("unknown", "kafka", "error") == 0
        assert [p.alert_id for p in outbox.pending("kafka")] == [second.alert_id]
        assert [p.alert_id for p in outbox.pending("console")] == [first.alert_id, second.alert_id]
        assert outbox.count_pending() == 3
        assert outbox.count_parked() == outbox.count_parked("kafka") == 1
        [parked] = outbox.parked()
        assert (parked.alert_id, parked.sink, parked.parked_at, parked.attempts) == (first.alert_id, "kafka", 110.0, 2)
        assert len(parked.error) == 500
        assert outbox.oldest_pending_age(now=200.0) == 100.0  # still pending for the console
        assert outbox.depth_by_sink() == {"pending": {"console": 2, "kafka": 1}, "parked": {"kafka": 1}}

        assert outbox.requeue(first.alert_id, "kafka", now=300.0) is True
        assert outbox.requeue(first.alert_id, "kafka") is False
        assert outbox.count_parked() == 0
        requeued = outbox.pending("kafka")[0]
        assert (requeued.alert_id, requeued.attempts, requeued.next_attempt_at) == (first.alert_id, 0, 300.0)


async def test_a_record_too_large_for_the_topic_is_parked_and_the_others_arrive(
    kafka: KafkaBroker, topic: str, make_alert: AlertFactory, tmp_path: Path
) -> None:
    await create_topic(kafka.bootstrap, topic, configs={"max.message.bytes": "1024"})
    config = NotifierConfig(
        kafka=KafkaSinkConfig(enabled=True, bootstrap_servers=kafka.bootstrap, topic=topic, request_timeout_ms=2000),
        outbox=OutboxConfig(retry_initial_s=0.05, retry_max_s=0.3),
    )
    small = [make_alert(), make_alert(), make_alert()]
    large = make_alert(explanation="x" * 4000)  # under the producer's 1 MB, over the topic's 1 KiB
    audit_path = tmp_path / "audit.jsonl"
    with sqlite_outbox(tmp_path / "outbox.sqlite3") as outbox, AuditLog(audit_path) as audit:
        async with Notifier(config, outbox, [KafkaSink(config.kafka, service_name="site-a")], audit) as notifier:
            for alert in (small[0], large, small[1], small[2]):
                await notifier.submit(alert)
            await wait_until(lambda: outbox.count_pending("kafka") == 0, 30.0, what="delivered or parked")
        assert [p.alert_id for p in outbox.parked("kafka")] == [large.alert_id]
        assert "MessageSizeTooLargeError" in outbox.parked("kafka")[0].error
    records = await read_topic(kafka.bootstrap, topic)
    assert [Alert.model_validate_json(r.value).alert_id for r in records] == [a.alert_id for a in small]
    assert [target for target, _ in _audit(audit_path, "alert.delivery_parked")] == [large.alert_id]
    assert verify(audit_path).ok


def test_the_cli_lists_and_requeues_parked_alerts(
    tmp_path: Path, make_alert: AlertFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    from gridwatch.cli import main

    config = tmp_path / "config"
    config.mkdir()
    data = tmp_path / "data"
    (config / "service.yaml").write_text(f"service:\n  data_dir: {data}\n", encoding="utf-8")
    alert = make_alert()
    with sqlite_outbox(data / "gridwatch.sqlite3", sinks=["console", "kafka"]) as outbox:
        outbox.add(alert)
        outbox.park(alert.alert_id, "kafka", "RecordRejectedError: too large")

    assert main(["alerts", "parked", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert alert.alert_id in out
    assert "RecordRejectedError: too large" in out
    assert out.rstrip().endswith("1 parked")

    assert main(["alerts", "parked", "-c", str(config), "--requeue", alert.alert_id, "--actor", "ops"]) == 0
    assert f"requeued {alert.alert_id} for kafka" in capsys.readouterr().out
    assert main(["alerts", "parked", "-c", str(config), "--requeue", alert.alert_id]) == 1
    assert "is not parked" in capsys.readouterr().err
    with sqlite_outbox(data / "gridwatch.sqlite3") as outbox:
        assert outbox.count_parked() == 0
        assert [p.alert_id for p in outbox.pending("kafka")] == [alert.alert_id]
    assert _audit(data / "audit.jsonl", "alert.delivery_requeued") == [(alert.alert_id, {"sink": "kafka"})]
