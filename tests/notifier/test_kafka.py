"""Kafka sink, notifier and ``alerts tail`` against Apache Kafka (single node), idempotent producer on."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from gridwatch.core.audit import AuditLog, verify
from gridwatch.core.config.notifier import KafkaSinkConfig, NotifierConfig, OutboxConfig
from gridwatch.core.events import Alert
from notifier.format import format_alert_line
from notifier.notifier import Notifier
from notifier.sinks import ConsoleSink, KafkaSink
from notifier.tail import tail_alerts
from tests.notifier.conftest import AlertFactory
from tests.notifier.helpers import wait_until
from tests.support.db import sqlite_outbox
from tests.support.kafka import KafkaBroker, create_topic, free_port, read_topic


def _kafka_config(bootstrap: str, topic: str) -> KafkaSinkConfig:
    config = KafkaSinkConfig(enabled=True, bootstrap_servers=bootstrap, topic=topic, request_timeout_ms=2000)
    assert config.enable_idempotence  # the default, and what every test runs with
    return config


def _notifier_config(bootstrap: str, topic: str) -> NotifierConfig:
    return NotifierConfig(
        kafka=_kafka_config(bootstrap, topic),
        outbox=OutboxConfig(retry_initial_s=0.05, retry_max_s=0.3),
    )


async def test_kafka_sink_publishes_key_value_and_cloudevents_headers(
    kafka: KafkaBroker, topic: str, make_alert: AlertFactory
) -> None:
    await create_topic(kafka.bootstrap, topic)
    sink = KafkaSink(_kafka_config(kafka.bootstrap, topic), service_name="site-a")
    await sink.start()
    try:
        assert sink.connected
        alert = make_alert("p-0042")
        await sink.deliver(alert)
    finally:
        await sink.stop()
        await sink.stop()
    records = await read_topic(kafka.bootstrap, topic)
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


async def test_a_librdkafka_client_reads_the_alert(kafka: KafkaBroker, topic: str, make_alert: AlertFactory) -> None:
    """An independent client (kcat, on librdkafka) reads what the sink wrote: key, headers, alert JSON."""
    kcat = shutil.which("kcat")
    if kcat is None:
        pytest.fail("kcat is not installed: `sudo apt-get install kcat` (or run `make test`)")
    await create_topic(kafka.bootstrap, topic)
    alert = make_alert("p-0077")
    sink = KafkaSink(_kafka_config(kafka.bootstrap, topic), service_name="site-a")
    await sink.start()
    try:
        await sink.deliver(alert)
    finally:
        await sink.stop()
    process = await asyncio.create_subprocess_exec(
        kcat, "-C", "-b", kafka.bootstrap, "-t", topic, "-o", "beginning", "-c", "1", "-e", "-J", "-q",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    [line] = out.decode().splitlines()
    record = json.loads(line)
    assert (record["topic"], record["partition"], record["offset"], record["key"]) == (topic, 0, 0, "p-0077")
    assert Alert.model_validate_json(record["payload"]) == alert
    headers = dict(zip(record["headers"][::2], record["headers"][1::2], strict=True))
    assert (headers["ce_id"], headers["ce_type"]) == (alert.alert_id, "gridwatch.alert.v1")


async def test_broker_down_then_back_delivers_exactly_once(
    kafka_broker: KafkaBroker, topic: str, make_alert: AlertFactory, tmp_path: Path
) -> None:
    await create_topic(kafka_broker.bootstrap, topic)
    kafka_broker.stop()
    out = io.StringIO()
    audit_path = tmp_path / "audit.jsonl"
    alert = make_alert()
    config = _notifier_config(kafka_broker.bootstrap, topic)
    with sqlite_outbox(tmp_path / "outbox.sqlite3") as outbox, AuditLog(audit_path) as audit:
        kafka = KafkaSink(config.kafka, service_name="site-a")
        notifier = Notifier(config, outbox, [ConsoleSink(out), kafka], audit)
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

            kafka_broker.start()  # same port and data: the topic is still there
            await wait_until(lambda: outbox.count_pending("kafka") == 0, 30.0, what="Kafka delivery after restart")
        finally:
            await notifier.stop()
    records = await read_topic(kafka_broker.bootstrap, topic)
    counts = Counter(Alert.model_validate_json(r.value).alert_id for r in records)
    assert counts == {alert.alert_id: 1}
    assert out.getvalue().count(alert.alert_id) == 1
    assert verify(audit_path).ok


@pytest.mark.parametrize("kill", [False, True], ids=["shutdown", "crash"])
async def test_broker_lost_after_connect_then_back_delivers_exactly_once(
    kafka_broker: KafkaBroker, topic: str, make_alert: AlertFactory, tmp_path: Path, kill: bool
) -> None:
    """The producer was connected when the broker went away: the outbox retries until it is back."""
    await create_topic(kafka_broker.bootstrap, topic)
    before, during, after = make_alert(), make_alert(), make_alert()
    config = _notifier_config(kafka_broker.bootstrap, topic)
    with sqlite_outbox(tmp_path / "outbox.sqlite3") as outbox:
        kafka = KafkaSink(config.kafka)
        async with Notifier(config, outbox, [kafka], None) as notifier:
            assert await notifier.submit(before)
            await wait_until(lambda: outbox.count_pending("kafka") == 0, what="first delivery")
            assert kafka.connected

            kafka_broker.stop(kill=kill)
            assert await notifier.submit(during)
            await wait_until(lambda: any(p.attempts >= 1 for p in outbox.pending("kafka")), what="a failed attempt")
            kafka_broker.start()
            await wait_until(lambda: outbox.count_pending("kafka") == 0, 30.0, what="delivery after the outage")
            # The same producer (idempotent, same producer id) goes on writing after the outage.
            assert await notifier.submit(after)
            await wait_until(lambda: outbox.count_pending("kafka") == 0, what="delivery after recovery")
    # The broker kept its data: every alert is there once, in order.
    records = await read_topic(kafka_broker.bootstrap, topic)
    assert [Alert.model_validate_json(r.value).alert_id for r in records] == [
        before.alert_id,
        during.alert_id,
        after.alert_id,
    ]


async def test_outbox_survives_restart_into_kafka(
    kafka_broker: KafkaBroker, topic: str, make_alert: AlertFactory, tmp_path: Path
) -> None:
    """Alerts submitted while Kafka was down are delivered by the next process on the same outbox."""
    await create_topic(kafka_broker.bootstrap, topic)
    kafka_broker.stop()
    path = tmp_path / "outbox.sqlite3"
    alerts = [make_alert(), make_alert()]
    config = _notifier_config(kafka_broker.bootstrap, topic)
    with sqlite_outbox(path) as outbox:
        notifier = Notifier(config, outbox, [KafkaSink(config.kafka)], None, shutdown_flush_s=1.0)
        await notifier.start()
        for alert in alerts:
            assert await notifier.submit(alert)
        await notifier.stop()
        assert outbox.count_pending("kafka") == 2

    kafka_broker.start()
    with sqlite_outbox(path) as outbox:
        async with Notifier(config, outbox, [KafkaSink(config.kafka)], None) as notifier:
            await wait_until(lambda: outbox.count_pending("kafka") == 0, 30.0, what="delivery after restart")
            assert await notifier.submit(alerts[0]) is False  # a replay after the restart
    records = await read_topic(kafka_broker.bootstrap, topic)
    assert [Alert.model_validate_json(r.value) for r in records] == alerts


async def test_stop_during_an_outage_is_bounded_and_the_next_process_delivers_once(
    kafka_broker: KafkaBroker, topic: str, make_alert: AlertFactory, tmp_path: Path
) -> None:
    """The idempotent producer retries forever: stopping must not wait for a broker that is gone."""
    await create_topic(kafka_broker.bootstrap, topic)
    path = tmp_path / "outbox.sqlite3"
    first, stranded = make_alert(), make_alert()
    config = _notifier_config(kafka_broker.bootstrap, topic)
    with sqlite_outbox(path) as outbox:
        notifier = Notifier(config, outbox, [KafkaSink(config.kafka)], None, shutdown_flush_s=0.5)
        await notifier.start()
        assert await notifier.submit(first)
        await wait_until(lambda: outbox.count_pending("kafka") == 0, what="first delivery")
        kafka_broker.stop(kill=True)
        assert await notifier.submit(stranded)
        await wait_until(lambda: any(p.attempts >= 1 for p in outbox.pending("kafka")), what="a failed attempt")
        await asyncio.wait_for(notifier.stop(), 15.0)  # flush window + request timeout, not forever
        assert [p.alert_id for p in outbox.pending("kafka")] == [stranded.alert_id]

    kafka_broker.start()
    with sqlite_outbox(path) as outbox:
        async with Notifier(config, outbox, [KafkaSink(config.kafka)], None):
            await wait_until(lambda: outbox.count_pending("kafka") == 0, 30.0, what="delivery by the next process")
    records = await read_topic(kafka_broker.bootstrap, topic)
    # The dropped buffer was never sent: each alert is on the topic once.
    assert [Alert.model_validate_json(r.value).alert_id for r in records] == [first.alert_id, stranded.alert_id]


async def test_tail_prints_alerts_and_skips_malformed(
    kafka: KafkaBroker, topic: str, make_alert: AlertFactory, caplog: pytest.LogCaptureFixture
) -> None:
    await create_topic(kafka.bootstrap, topic)
    alert = make_alert()
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=b'{"not": "an alert"}', key=b"x")
        await producer.send_and_wait(topic, value=b"\xff\xfe binary", key=b"y")
    finally:
        await producer.stop()
    sink = KafkaSink(_kafka_config(kafka.bootstrap, topic))
    await sink.start()
    try:
        await sink.deliver(alert)
    finally:
        await sink.stop()

    out = io.StringIO()
    with caplog.at_level(logging.WARNING, logger="notifier.tail"):
        status = await tail_alerts(kafka.bootstrap, topic, from_beginning=True, max_messages=1, timeout_s=15.0, out=out)
    assert status == 0
    assert out.getvalue() == format_alert_line(alert) + "\n"
    skipped = [r for r in caplog.records if "skipping malformed alert" in r.getMessage()]
    assert len(skipped) == 2

    # With an idle timeout and no limit, it ends once the topic goes quiet.
    out = io.StringIO()
    status = await tail_alerts(kafka.bootstrap, topic, from_beginning=True, max_messages=None, timeout_s=1.0, out=out)
    assert status == 0
    assert out.getvalue().splitlines() == [format_alert_line(alert)]


async def test_tail_from_now_prints_only_new_alerts(kafka: KafkaBroker, topic: str, make_alert: AlertFactory) -> None:
    """Without ``from_beginning`` the tail starts at the end offsets (real Kafka reports them)."""
    await create_topic(kafka.bootstrap, topic)
    old = make_alert()
    sink = KafkaSink(_kafka_config(kafka.bootstrap, topic))
    await sink.start()
    out = io.StringIO()
    later: list[Alert] = []
    try:
        await sink.deliver(old)
        tail = asyncio.create_task(
            tail_alerts(kafka.bootstrap, topic, from_beginning=False, max_messages=1, timeout_s=30.0, out=out)
        )
        # When the tail has found the end of the topic is its own business: deliver until it prints.
        deadline = time.monotonic() + 30.0
        while not tail.done():
            assert time.monotonic() < deadline, "the tail printed nothing within 30 s"
            later.append(make_alert())
            await sink.deliver(later[-1])
            await asyncio.wait([tail], timeout=0.5)
        assert tail.result() == 0
    finally:
        await sink.stop()
    [line] = out.getvalue().splitlines()
    assert line != format_alert_line(old)
    assert line in [format_alert_line(alert) for alert in later]


async def test_tail_without_a_broker_fails_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    out = io.StringIO()
    nobody = f"127.0.0.1:{free_port()}"
    status = await tail_alerts(nobody, "gridwatch.alerts", from_beginning=True, max_messages=1, timeout_s=1.0, out=out)
    assert status == 1
    assert out.getvalue() == ""
    assert any("cannot read" in r.getMessage() for r in caplog.records)
