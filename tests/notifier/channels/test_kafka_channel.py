"""The Kafka channel against Apache Kafka: through the outbox and the dispatcher, read back by a real consumer."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from aiokafka.errors import MessageSizeTooLargeError

from gridwatch.core.config.channels import KafkaChannelConfig
from gridwatch.core.config.kafka import KafkaConnectionConfig
from gridwatch.core.config.notifier import KafkaSinkConfig, OutboxConfig
from gridwatch.core.events import Notification
from gridwatch.core.interfaces import RecordRejectedError
from notifier.channels.kafka import KafkaChannel
from notifier.dispatcher import NotificationDispatcher
from notifier.notification_outbox import NotificationOutbox
from tests.notifier.helpers import wait_until
from tests.notifier.notification_support import notification_factory, sqlite_database, store
from tests.support.kafka import KafkaBroker, create_topic, free_port, read_topic, unique_topic

OUTBOX = OutboxConfig(retry_initial_s=0.05, retry_max_s=0.2)


def _channel(bootstrap: str, topic: str) -> KafkaChannel:
    # notifier.kafka's settings: the sink config is a connection config with more in it.
    connection = KafkaSinkConfig(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    return KafkaChannel(KafkaChannelConfig(id="push", type="kafka", topic=topic), connection, "site-a")


@pytest.fixture
def notification_topic(request: pytest.FixtureRequest) -> str:
    return unique_topic(request.node.name, prefix="gridwatch.notifications")


async def test_one_record_per_recipient_keyed_by_staff_with_cloudevents_headers(
    kafka: KafkaBroker, notification_topic: str, tmp_path: Path
) -> None:
    await create_topic(kafka.bootstrap, notification_topic, partitions=3)
    make = notification_factory()
    alert = "alert-0042"
    batch = [make(staff, channel="push", alert_id=alert) for staff in ("s-wang", "s-li", "s-zhao")]
    with sqlite_database(tmp_path / "gw.sqlite3") as database:
        outbox = NotificationOutbox(database)
        store(database, *batch, now=time.time())
        async with NotificationDispatcher(outbox, [_channel(kafka.bootstrap, notification_topic)], OUTBOX, None):
            await wait_until(lambda: outbox.count_pending() == 0, timeout_s=60, what="three deliveries")
        assert outbox.count_delivered("push") == 3
    records = await read_topic(kafka.bootstrap, notification_topic)
    assert sorted(r.key for r in records) == [b"s-li", b"s-wang", b"s-zhao"]
    by_staff = {r.key.decode(): r for r in records}
    for notification in batch:
        record = by_staff[notification.staff_id]
        assert Notification.model_validate_json(record.value) == notification
        headers = {name: value.decode() for name, value in record.headers}
        assert headers["ce_specversion"] == "1.0"
        assert headers["ce_id"] == notification.notification_id
        assert headers["ce_type"] == "gridwatch.notification.v1"
        assert headers["ce_subject"] == alert
        assert headers["ce_source"] == "gridwatch/site-a"
        assert headers["ce_time"] == notification.created_at.isoformat().replace("+00:00", "Z")
        assert headers["content-type"] == "application/json"


async def test_a_record_the_topic_refuses_is_rejected_and_the_next_goes_through(
    kafka: KafkaBroker, notification_topic: str
) -> None:
    await create_topic(kafka.bootstrap, notification_topic, configs={"max.message.bytes": "2000"})
    make = notification_factory()
    huge, fine = make("s-huge", channel="push", explanation="x" * 5000), make("s-fine", channel="push")
    channel = _channel(kafka.bootstrap, notification_topic)
    await channel.start()
    try:
        with pytest.raises(RecordRejectedError, match=huge.notification_id) as caught:
            await channel.send(huge)
        assert isinstance(caught.value.__cause__, MessageSizeTooLargeError)
        await channel.send(fine)
    finally:
        await channel.stop()
        await channel.stop()
    [record] = await read_topic(kafka.bootstrap, notification_topic)
    assert record.key == b"s-fine"


async def test_a_broker_that_is_down_at_start_is_no_error() -> None:
    connection = KafkaConnectionConfig(bootstrap_servers=f"127.0.0.1:{free_port()}", request_timeout_ms=1000)
    channel = KafkaChannel(KafkaChannelConfig(id="push", type="kafka"), connection)
    await channel.start()
    try:
        assert not channel.connected
        with pytest.raises(ConnectionError, match="cannot connect"):
            await channel.send(notification_factory()(channel="push"))
    finally:
        await channel.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        await channel.send(notification_factory()(channel="push"))
