"""Kafka channel: the push path of a mobile gateway. One record per notification (that is, per recipient
per alert and step) on ``topic``, keyed by staff id so that one person's messages stay in order, in
the CloudEvents Kafka binary binding (``ce_id`` = the notification id: consumers deduplicate on it;
``ce_subject`` = the alert id).

Publishing is the alert sink's (``notifier.sinks.kafka.KafkaSink.publish``), and so are its conventions:
``acks=all``, idempotent; a broker that is down at start is retried on each ``send``; a record that no
retry can fix (too large, corrupt) raises ``RecordRejectedError`` (parked) and replaces the producer;
``stop()`` flushes for at most ``request_timeout_ms`` (the outbox keeps whatever was not acknowledged).
"""

from __future__ import annotations

from gridwatch.core import kafka_records
from gridwatch.core.config.channels import KafkaChannelConfig
from gridwatch.core.config.kafka import KafkaConnectionConfig
from gridwatch.core.config.notifier import KafkaSinkConfig
from gridwatch.core.events import Notification
from notifier.sinks.kafka import KafkaSink

CE_TYPE = "gridwatch.notification.v1"


def notification_headers(notification: Notification, service_name: str) -> list[tuple[str, bytes]]:
    """CloudEvents 1.0 Kafka protocol binding, binary content mode."""
    return kafka_records.cloudevent_headers(
        event_id=notification.notification_id,
        source=f"gridwatch/{service_name}",
        ce_type=CE_TYPE,
        subject=notification.alert_id,
        time=notification.created_at,
    )


class KafkaChannel:
    """Publishes notifications through a ``KafkaSink`` of the channel's topic; see the module docstring."""

    def __init__(
        self, config: KafkaChannelConfig, connection: KafkaConnectionConfig, service_name: str = "gridwatch"
    ) -> None:
        self.name = config.id
        self._service_name = service_name
        # The producer, its retries and its error conventions are the alert sink's: one publishing path.
        settings = KafkaSinkConfig.model_validate({**connection.model_dump(), "topic": config.topic})
        self._sink = KafkaSink(settings, service_name=service_name, name=f"channel-{config.id}")

    def __repr__(self) -> str:  # never shows the SASL settings
        return f"KafkaChannel(name={self.name!r}, sink={self._sink!r})"

    @property
    def topic(self) -> str:
        return self._sink.topic

    @property
    def connected(self) -> bool:
        return self._sink.connected

    async def start(self) -> None:
        """Connect if the broker answers; if not, log it and connect on the next send."""
        await self._sink.start()

    async def stop(self) -> None:
        """Flush what was handed to the producer (bounded by ``request_timeout_ms``) and close it. Idempotent."""
        await self._sink.stop()

    async def send(self, notification: Notification) -> None:
        """Publish and wait for the acknowledgement of all in-sync replicas; raise on failure."""
        await self._sink.publish(
            notification.notification_id,
            key=notification.staff_id,
            value=notification.to_json(),
            headers=notification_headers(notification, self._service_name),
            what=f"notification {notification.notification_id}",
        )
