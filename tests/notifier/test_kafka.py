"""Kafka sink, notifier and ``alerts tail`` against a real Kafka-protocol broker (Tansu)."""

from __future__ import annotations

import io
import logging
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from gridwatch.core.audit import AuditLog, verify
from gridwatch.core.config.notifier import KafkaSinkConfig, NotifierConfig, OutboxConfig
from gridwatch.core.events import Alert
from notifier.format import format_alert_line
from notifier.notifier import Notifier
from notifier.outbox import Outbox
from notifier.sinks import ConsoleSink, KafkaSink
from notifier.tail import tail_alerts
from tests.notifier.conftest import AlertFactory
from tests.notifier.helpers import read_whole_topic, wait_until
from tests.support.kafka import TansuBroker, create_topic

TOPIC = "gridwatch.alerts"


def _kafka_config(broker: TansuBroker) -> KafkaSinkConfig:
    # Tansu refuses idempotent producers (InitProducerId v0); real Kafka keeps the default (on).
    return KafkaSinkConfig(
        enabled=True,
        bootstrap_servers=broker.bootstrap,
        topic=TOPIC,
        enable_idempotence=False,
        request_timeout_ms=2000,
    )


def _notifier_config(broker: TansuBroker) -> NotifierConfig:
    return NotifierConfig(
        kafka=_kafka_config(broker),
        outbox=OutboxConfig(retry_initial_s=0.05, retry_max_s=0.3),
    )


async def test_kafka_sink_publishes_key_value_and_cloudevents_headers(
    kafka_broker: TansuBroker, make_alert: AlertFactory
) -> None:
    await create_topic(kafka_broker.bootstrap, TOPIC)
    sink = KafkaSink(_kafka_config(kafka_broker), service_name="site-a")
    await sink.start()
    try:
        assert sink.connected
        alert = make_alert("p-0042")
        await sink.deliver(alert)
    finally:
        await sink.stop()
        await sink.stop()
    records = await read_whole_topic(kafka_broker.bootstrap, TOPIC)
    assert len(records) == 1
    record = records[0]
    assert record.key == b"p-0042"
    assert Alert.model_validate_json(record.value) == alert
    headers = {name: value.decode() for name, value in record.headers}
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_id"] == alert.alert_id
    assert headers["ce_source"] == "gridwatch/site-a"
    assert headers["ce_type"] == "gridwatch.alert.v1"
    assert headers["ce_time"] == "2024-05-01T10:00:01Z"
    assert headers["content-type"] == "application/json"


async def test_broker_down_then_back_delivers_exactly_once(
    kafka_broker: TansuBroker, make_alert: AlertFactory, tmp_path: Path
) -> None:
    kafka_broker.stop()
    out = io.StringIO()
    audit_path = tmp_path / "audit.jsonl"
    alert = make_alert()
    with Outbox(tmp_path / "outbox.sqlite3") as outbox, AuditLog(audit_path) as audit:
        kafka = KafkaSink(_kafka_config(kafka_broker), service_name="site-a")
        notifier = Notifier(_notifier_config(kafka_broker), outbox, [ConsoleSink(out), kafka], audit)
        await notifier.start()  # must not fail while the broker is down
        try:
            assert not kafka.connected
            assert await notifier.submit(alert) is True
            assert outbox.get(alert.alert_id) == alert
            await wait_until(lambda: alert.alert_id in out.getvalue(), what="console line")
            # The line is written before the delivery is recorded: wait for the record too.
            await wait_until(lambda: outbox.count_pending("console") == 0, what="console delivery recorded")
            await wait_until(
                lambda: any(p.attempts >= 2 for p in outbox.pending("kafka")), what="failed Kafka attempts"
            )
            assert outbox.count_pending("kafka") == 1

            kafka_broker.start()  # same port; memory storage, so the topic is created again
            await create_topic(kafka_broker.bootstrap, TOPIC, exist_ok=True)
            await wait_until(lambda: outbox.count_pending("kafka") == 0, what="Kafka delivery after restart")
        finally:
            await notifier.stop()
    records = await read_whole_topic(kafka_broker.bootstrap, TOPIC)
    counts = Counter(Alert.model_validate_json(r.value).alert_id for r in records)
    assert counts == {alert.alert_id: 1}
    assert out.getvalue().count(alert.alert_id) == 1
    assert verify(audit_path).ok


async def test_broker_lost_after_connect_then_back_delivers_exactly_once(
    kafka_broker: TansuBroker, make_alert: AlertFactory, tmp_path: Path
) -> None:
    """The producer was connected when the broker died: the outbox retries until it is back."""
    await create_topic(kafka_broker.bootstrap, TOPIC)
    before, during = make_alert(), make_alert()
    with Outbox(tmp_path / "outbox.sqlite3") as outbox:
        kafka = KafkaSink(_kafka_config(kafka_broker))
        async with Notifier(_notifier_config(kafka_broker), outbox, [kafka], None) as notifier:
            assert await notifier.submit(before)
            await wait_until(lambda: outbox.count_pending("kafka") == 0, what="first delivery")
            assert kafka.connected

            kafka_broker.stop()
            assert await notifier.submit(during)
            await wait_until(lambda: any(p.attempts >= 1 for p in outbox.pending("kafka")), what="a failed attempt")
            kafka_broker.start()
            await create_topic(kafka_broker.bootstrap, TOPIC, exist_ok=True)
            await wait_until(lambda: outbox.count_pending("kafka") == 0, what="delivery after the outage")
    # Memory storage: the restarted broker only holds what was delivered after the outage.
    records = await read_whole_topic(kafka_broker.bootstrap, TOPIC)
    counts = Counter(Alert.model_validate_json(r.value).alert_id for r in records)
    assert counts == {during.alert_id: 1}


async def test_outbox_survives_restart_into_kafka(
    kafka_broker: TansuBroker, make_alert: AlertFactory, tmp_path: Path
) -> None:
    """Alerts submitted while Kafka was down are delivered by the next process on the same outbox."""
    kafka_broker.stop()
    path = tmp_path / "outbox.sqlite3"
    alerts = [make_alert(), make_alert()]
    with Outbox(path) as outbox:
        sinks = [KafkaSink(_kafka_config(kafka_broker))]
        notifier = Notifier(_notifier_config(kafka_broker), outbox, sinks, None, shutdown_flush_s=1.0)
        await notifier.start()
        for alert in alerts:
            assert await notifier.submit(alert)
        await notifier.stop()
        assert outbox.count_pending("kafka") == 2

    kafka_broker.start()
    await create_topic(kafka_broker.bootstrap, TOPIC)
    with Outbox(path) as outbox:
        sinks = [KafkaSink(_kafka_config(kafka_broker))]
        async with Notifier(_notifier_config(kafka_broker), outbox, sinks, None) as notifier:
            await wait_until(lambda: outbox.count_pending("kafka") == 0, what="delivery after restart")
            assert await notifier.submit(alerts[0]) is False  # a replay after the restart
    records = await read_whole_topic(kafka_broker.bootstrap, TOPIC)
    assert [Alert.model_validate_json(r.value) for r in records] == alerts


async def test_tail_prints_alerts_and_skips_malformed(
    kafka_broker: TansuBroker, make_alert: AlertFactory, caplog: pytest.LogCaptureFixture
) -> None:
    await create_topic(kafka_broker.bootstrap, TOPIC)
    alert = make_alert()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(TOPIC, value=b'{"not": "an alert"}', key=b"x")
        await producer.send_and_wait(TOPIC, value=b"\xff\xfe binary", key=b"y")
    finally:
        await producer.stop()
    sink = KafkaSink(_kafka_config(kafka_broker))
    await sink.start()
    try:
        await sink.deliver(alert)
    finally:
        await sink.stop()

    out = io.StringIO()
    with caplog.at_level(logging.WARNING, logger="notifier.tail"):
        status = await tail_alerts(
            kafka_broker.bootstrap, TOPIC, from_beginning=True, max_messages=1, timeout_s=15.0, out=out
        )
    assert status == 0
    assert out.getvalue() == format_alert_line(alert) + "\n"
    skipped = [r for r in caplog.records if "skipping malformed alert" in r.getMessage()]
    assert len(skipped) == 2

    # With an idle timeout and no limit, it ends once the topic goes quiet.
    out = io.StringIO()
    status = await tail_alerts(
        kafka_broker.bootstrap, TOPIC, from_beginning=True, max_messages=None, timeout_s=1.0, out=out
    )
    assert status == 0
    assert out.getvalue().splitlines() == [format_alert_line(alert)]


async def test_tail_without_a_broker_fails_cleanly(kafka_broker: TansuBroker, caplog: pytest.LogCaptureFixture) -> None:
    kafka_broker.stop()
    out = io.StringIO()
    status = await tail_alerts(
        kafka_broker.bootstrap, TOPIC, from_beginning=True, max_messages=1, timeout_s=1.0, out=out
    )
    assert status == 1
    assert out.getvalue() == ""
    assert any("cannot read" in r.getMessage() for r in caplog.records)
