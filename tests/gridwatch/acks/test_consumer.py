"""Acknowledgements from the ``gridwatch.acks`` topic, on a real Apache Kafka, against an in-memory case desk."""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import REGISTRY

from gridwatch.acks import consumer as consumer_module
from gridwatch.acks.consumer import AckConsumer
from gridwatch.core.config.kafka import KafkaConnectionConfig
from tests.gridwatch.acks.fakes import FakeCase, FakeDesk, Step
from tests.ingest.polling import eventually
from tests.support.kafka import KafkaBroker, create_topic, unique_topic

WAIT_S = 60.0


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_module, "BACKOFF_INITIAL_S", 0.05)


@pytest.fixture
async def topic(kafka: KafkaBroker, request: pytest.FixtureRequest) -> str:
    name = unique_topic(request.node.name, prefix="gridwatch.acks")
    await create_topic(kafka.bootstrap, name)
    return name


def _group() -> str:
    return f"gridwatch-acks-test-{uuid.uuid4().hex[:8]}"


async def _produce(bootstrap: str, topic: str, values: list[bytes | None]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value=value, key=b"gateway")
    finally:
        await producer.stop()


async def _committed(bootstrap: str, group: str, topic: str) -> int | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    found = offsets.get(TopicPartition(topic, 0))
    return None if found is None or found.offset < 0 else int(found.offset)


def _ack(alert_id: str, staff_id: str, **extra: object) -> bytes:
    return json.dumps({"alert_id": alert_id, "staff_id": staff_id, **extra}).encode()


def _rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("gridwatch_acks_rejected_total", {"channel": "kafka", "reason": reason}) or 0.0


def _accepted() -> float:
    return REGISTRY.get_sample_value("gridwatch_acks_total", {"channel": "kafka"}) or 0.0


async def test_only_valid_acknowledgements_are_made(
    kafka: KafkaBroker, topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    desk = FakeDesk({"wang", "li"}, {"alert-1": FakeCase(), "alert-2": FakeCase()})
    records: list[bytes | None] = [
        _ack("alert-1", "wang", at="2026-12-02T03:04:05Z"),
        b'{"alert_id": "alert-2", "staff_id": "li", "payload-secret-text',  # not JSON
        _ack("alert-2", "li", device="payload-secret-text"),  # unknown field
        None,  # a tombstone
        b"\xff\xfe payload-secret-text",
        _ack("alert-2", "intruder"),  # unknown staff
        _ack("alert-404", "li"),  # unknown alert
        _ack("alert-2", "li", comment="on my way"),
    ]
    await _produce(kafka.bootstrap, topic, records)
    before = {reason: _rejected(reason) for reason in ("malformed", "unknown_staff", "unknown_alert")}
    accepted_before = _accepted()
    group = _group()
    connection = KafkaConnectionConfig(bootstrap_servers=kafka.bootstrap)
    consumer = AckConsumer(connection, topic, group, desk)

    caplog.set_level(logging.WARNING, logger="gridwatch.acks.consumer")
    await consumer.start()
    try:
        await eventually(lambda: consumer.accepted + consumer.rejected == len(records), WAIT_S, "every record handled")
        await eventually(lambda: desk.cases["alert-2"].state == "acknowledged", WAIT_S, "the last record handled")
    finally:
        await consumer.stop()
        await consumer.stop()  # idempotent

    assert desk.steps == [
        Step("acknowledge", "alert-1", "wang", "kafka"),
        Step("acknowledge", "alert-2", "li", "kafka", "on my way"),
    ]
    assert (consumer.accepted, consumer.rejected) == (2, 6)
    assert _accepted() == accepted_before + 2
    assert _rejected("malformed") == before["malformed"] + 4
    assert _rejected("unknown_staff") == before["unknown_staff"] + 1
    assert _rejected("unknown_alert") == before["unknown_alert"] + 1
    warnings = [r for r in caplog.records if r.name == "gridwatch.acks.consumer" and "rejected" in r.getMessage()]
    assert len(warnings) == 6  # once per rejected record
    assert all("payload-secret-text" not in r.getMessage() for r in caplog.records)
    # Rejected records do not block the partition: everything is committed.
    assert await _committed(kafka.bootstrap, group, topic) == len(records)


async def test_a_failing_desk_is_retried_and_the_ack_still_happens(kafka: KafkaBroker, topic: str) -> None:
    desk = FakeDesk({"wang"}, {"alert-1": FakeCase()})
    desk.fail_next = 2  # the case database is down for two attempts
    await _produce(kafka.bootstrap, topic, [_ack("alert-1", "wang")])
    group = _group()
    consumer = AckConsumer(KafkaConnectionConfig(bootstrap_servers=kafka.bootstrap), topic, group, desk)
    await consumer.start()
    try:
        await eventually(lambda: consumer.accepted == 1, WAIT_S, "the acknowledgement made after the retries")
    finally:
        await consumer.stop()
    assert desk.calls == 3
    assert desk.steps == [Step("acknowledge", "alert-1", "wang", "kafka")]
    assert consumer.rejected == 0
    assert await _committed(kafka.bootstrap, group, topic) == 1


async def test_a_record_not_handled_when_stopping_is_not_committed(kafka: KafkaBroker, topic: str) -> None:
    broken = FakeDesk({"wang"}, {"alert-1": FakeCase()})
    broken.fail_next = 10**9  # down for good, for this instance
    await _produce(kafka.bootstrap, topic, [_ack("alert-1", "wang")])
    group = _group()
    connection = KafkaConnectionConfig(bootstrap_servers=kafka.bootstrap)
    first = AckConsumer(connection, topic, group, broken)
    await first.start()
    try:
        await eventually(lambda: broken.calls >= 2, WAIT_S, "the failing desk retried")
    finally:
        await first.stop()
    assert broken.steps == []
    assert await _committed(kafka.bootstrap, group, topic) is None

    # The next owner of the partition (a restarted service) gets the record again: at least once.
    working = FakeDesk({"wang"}, {"alert-1": FakeCase()})
    second = AckConsumer(connection, topic, group, working)
    await second.start()
    try:
        await eventually(lambda: second.accepted == 1, WAIT_S, "the acknowledgement made by the next owner")
    finally:
        await second.stop()
    assert working.steps == [Step("acknowledge", "alert-1", "wang", "kafka")]
    assert await _committed(kafka.bootstrap, group, topic) == 1
