"""Kafka channel: the push path of a mobile gateway. One record per notification (that is, per recipient
per alert and step) on ``topic``, keyed by staff id so that one person's messages stay in order, in
the CloudEvents Kafka binary binding (``ce_id`` = the notification id: consumers deduplicate on it;
``ce_subject`` = the alert id).

Connection, acknowledgement and error conventions are those of the alert sink
(``notifier.sinks.kafka``): ``acks=all``, idempotent; a broker that is down at start is retried on each
``send``; a record that no retry can fix (too large, corrupt) raises ``RecordRejectedError`` (parked)
and replaces the producer; ``stop()`` flushes for at most ``request_timeout_ms`` (the outbox keeps
whatever was not acknowledged).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from gridwatch.core import kafka_records
from gridwatch.core.config.channels import KafkaChannelConfig
from gridwatch.core.config.kafka import KafkaConnectionConfig
from gridwatch.core.events import Notification
from gridwatch.core.interfaces import RecordRejectedError
from gridwatch.core.redact import redact_text
from notifier.sinks.kafka import RECORD_ERRORS, KafkaNotConnectedError

logger = logging.getLogger(__name__)

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
    """Publishes notifications with an ``AIOKafkaProducer(acks="all")``; see the module docstring."""

    def __init__(
        self, config: KafkaChannelConfig, connection: KafkaConnectionConfig, service_name: str = "gridwatch"
    ) -> None:
        self.name = config.id
        self._config = config
        self._connection = connection
        self._service_name = service_name
        self._producer: AIOKafkaProducer | None = None
        self._connect_lock = asyncio.Lock()
        self._closed = False
        # notification_id -> the producer's future of a record not yet acknowledged (sent once, awaited by retries).
        self._in_flight: dict[str, asyncio.Future[Any]] = {}

    def __repr__(self) -> str:  # never shows the SASL settings
        bootstrap = redact_text(self._connection.bootstrap_servers)
        return f"KafkaChannel(name={self.name!r}, bootstrap={bootstrap!r}, topic={self.topic!r})"

    @property
    def topic(self) -> str:
        return self._config.topic

    @property
    def connected(self) -> bool:
        return self._producer is not None

    @property
    def _timeout_s(self) -> float:
        return self._connection.request_timeout_ms / 1000

    async def start(self) -> None:
        """Connect if the broker answers; if not, log it and connect on the next send."""
        self._closed = False
        try:
            await self._ensure_producer()
        except KafkaNotConnectedError as exc:
            logger.warning("kafka channel %s: broker not reachable at start, will retry on send: %s", self.name, exc)

    async def stop(self) -> None:
        """Flush what was handed to the producer (bounded by ``request_timeout_ms``) and close it. Idempotent."""
        self._closed = True
        async with self._connect_lock:
            producer, self._producer = self._producer, None
        if producer is None:
            return
        pending = sum(not f.done() for f in self._in_flight.values())
        owner = f"kafka channel {self.name}"
        if await kafka_records.close_producer(producer, timeout_s=self._timeout_s, owner=owner):
            logger.warning("%s: %d notification(s) left unacknowledged; the outbox keeps them", owner, pending)
        self._in_flight.clear()

    async def send(self, notification: Notification) -> None:
        """Publish and wait for the acknowledgement of all in-sync replicas; raise on failure."""
        if self._closed:
            raise RuntimeError(f"kafka channel {self.name} is stopped")
        producer = await self._ensure_producer()
        key = notification.notification_id
        future = self._in_flight.get(key)
        try:
            if future is None:
                future = await producer.send(
                    self._config.topic,
                    value=notification.to_json().encode("utf-8"),
                    key=notification.staff_id.encode("utf-8"),
                    headers=notification_headers(notification, self._service_name),
                )
                self._in_flight[key] = future
            # shield: a timeout or a cancelled send leaves the record to the producer (see notifier.sinks.kafka).
            await asyncio.wait_for(asyncio.shield(future), timeout=self._timeout_s)
        except RECORD_ERRORS as exc:
            await self._replace_producer(producer)
            raise RecordRejectedError(
                f"topic {self._config.topic} refuses notification {key}: {type(exc).__name__}: {exc}"
            ) from exc
        except TimeoutError:
            raise KafkaNotConnectedError(
                f"no acknowledgement within {self._connection.request_timeout_ms} ms; the producer keeps retrying"
            ) from None
        finally:
            if future is not None and future.done():
                self._in_flight.pop(key, None)

    async def _replace_producer(self, producer: AIOKafkaProducer) -> None:
        """Close ``producer`` so that the next send makes a new one (a new producer id, sequence 0)."""
        async with self._connect_lock:
            if self._producer is not producer:
                return
            self._producer = None
        await kafka_records.close_producer(producer, timeout_s=self._timeout_s, owner=f"kafka channel {self.name}")
        self._in_flight = {key: f for key, f in self._in_flight.items() if not f.done()}

    async def _ensure_producer(self) -> AIOKafkaProducer:
        async with self._connect_lock:
            if self._producer is not None:
                return self._producer
            producer = AIOKafkaProducer(**self._producer_kwargs())
            try:
                await producer.start()
            except BaseException as exc:
                await producer.stop()
                if isinstance(exc, KafkaError | OSError):
                    where = redact_text(self._connection.bootstrap_servers)
                    raise KafkaNotConnectedError(
                        f"cannot connect to {where}: {type(exc).__name__}: {redact_text(str(exc))}"
                    ) from exc
                raise
            logger.info("kafka channel %s: connected to %s", self.name, redact_text(self._connection.bootstrap_servers))
            self._producer = producer
            return producer

    def _producer_kwargs(self) -> dict[str, Any]:
        cfg = self._connection
        return {
            **cfg.security_kwargs(),
            "bootstrap_servers": cfg.bootstrap_servers,
            "client_id": cfg.client_id,
            "acks": "all",
            "enable_idempotence": cfg.enable_idempotence,
            "request_timeout_ms": cfg.request_timeout_ms,
        }
