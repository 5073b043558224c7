"""Kafka sink: each alert is one record, keyed by person id, in the CloudEvents Kafka binary binding.

The value is the alert JSON (UTF-8); the CloudEvents attributes travel as ``ce_*`` headers with
``content-type: application/json``, so consumers that know CloudEvents need nothing else and the
rest read plain JSON. ``ce_id`` is the deterministic ``alert_id``: consumers deduplicate by it.

A broker that is down at start is not an error: ``start()`` tries once, and every ``deliver()``
tries to connect again until it works, raising meanwhile so that the outbox keeps the alert and
retries it. Once connected, aiokafka reconnects by itself.

The idempotent producer never gives up on a record it has accepted (aiokafka retries it until the
broker acknowledges it), so a delivery is never sent twice: an attempt that gets no acknowledgement
within ``request_timeout_ms`` raises (the outbox records the failure and retries later), and the
retry waits for the same record instead of sending a new one. ``stop()`` waits as long for the
buffered records, then drops them from the producer (the outbox still holds them).

Errors that concern the record itself and that no retry can fix (too large for the producer or the
topic, corrupt) are raised as ``RecordRejectedError``, which parks that alert; every other error,
including a topic that does not exist or may not be written (a config error, true of every alert),
leaves the alert pending and is retried. After a record error the producer is replaced: the idempotent
producer counted the refused record in its sequence, and the broker would answer every later record
with ``OutOfOrderSequenceNumber``; a new producer gets a new producer id and starts again at 0.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from gridwatch.core import kafka_records
from gridwatch.core.config.notifier import KafkaSinkConfig
from gridwatch.core.events import Alert
from gridwatch.core.interfaces import RecordRejectedError
from gridwatch.core.redact import redact_text

logger = logging.getLogger(__name__)

CE_TYPE = "gridwatch.alert.v1"

# Errors about one record, never about the broker or the topic: the same record fails the same way forever.
RECORD_ERRORS: tuple[type[KafkaError], ...] = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
)


def cloudevent_headers(alert: Alert, service_name: str) -> list[tuple[str, bytes]]:
    """CloudEvents 1.0 Kafka protocol binding, binary content mode."""
    return kafka_records.cloudevent_headers(
        event_id=alert.alert_id,
        source=f"gridwatch/{service_name}",
        ce_type=CE_TYPE,
        subject=alert.key,
        time=alert.created_at,
    )


class KafkaNotConnectedError(ConnectionError):
    """The broker could not be reached; the alert stays in the outbox."""


class KafkaSink:
    """Publishes alerts with an ``AIOKafkaProducer(acks="all")``; see the module docstring."""

    def __init__(self, config: KafkaSinkConfig, *, service_name: str = "gridwatch", name: str = "kafka") -> None:
        self.name = name
        self._config = config
        self._service_name = service_name
        self._producer: AIOKafkaProducer | None = None
        self._connect_lock = asyncio.Lock()
        self._closed = False
        # alert_id -> the producer's future of a record not yet acknowledged (sent once, awaited by retries).
        self._in_flight: dict[str, asyncio.Future[Any]] = {}

    def __repr__(self) -> str:  # never shows the SASL settings
        bootstrap = redact_text(self._config.bootstrap_servers)
        return f"KafkaSink(name={self.name!r}, bootstrap={bootstrap!r}, topic={self.topic!r})"

    @property
    def topic(self) -> str:
        return self._config.topic

    @property
    def connected(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        """Connect if the broker answers; if not, log it and connect on the next delivery."""
        self._closed = False
        try:
            await self._ensure_producer()
        except KafkaNotConnectedError as exc:
            logger.warning("kafka sink %s: broker not reachable at start, will retry on delivery: %s", self.name, exc)

    async def stop(self) -> None:
        """Flush what was handed to the producer (bounded by ``request_timeout_ms``) and close it. Idempotent."""
        self._closed = True
        async with self._connect_lock:
            producer, self._producer = self._producer, None
        if producer is None:
            return
        pending = sum(not f.done() for f in self._in_flight.values())
        timeout_s = self._config.request_timeout_ms / 1000
        if await kafka_records.close_producer(producer, timeout_s=timeout_s, owner=f"kafka sink {self.name}"):
            logger.warning("kafka sink %s: %d alert(s) left unacknowledged; the outbox keeps them", self.name, pending)
        self._in_flight.clear()

    async def deliver(self, alert: Alert) -> None:
        """Publish and wait for the broker's acknowledgement of all in-sync replicas; raise on failure."""
        await self.publish(
            alert.alert_id,
            key=alert.key,
            value=alert.to_json(),
            headers=cloudevent_headers(alert, self._service_name),
            what=f"alert {alert.alert_id}",
        )

    async def publish(
        self, record_id: str, *, key: str, value: str, headers: list[tuple[str, bytes]], what: str
    ) -> None:
        """Publish one record of this sink's topic (``record_id``: its deterministic id, for retries) and wait
        for the acknowledgement; the other publishers of records to Kafka (case events) share this path."""
        if self._closed:
            raise RuntimeError(f"kafka sink {self.name} is stopped")
        producer = await self._ensure_producer()
        future = self._in_flight.get(record_id)
        try:
            if future is None:
                future = await producer.send(
                    self._config.topic, value=value.encode("utf-8"), key=key.encode("utf-8"), headers=headers
                )
                self._in_flight[record_id] = future
            # shield: a timeout or a cancelled delivery leaves the record to the producer (see the docstring).
            await asyncio.wait_for(asyncio.shield(future), timeout=self._config.request_timeout_ms / 1000)
        except RECORD_ERRORS as exc:
            await self._replace_producer(producer)
            raise RecordRejectedError(
                f"topic {self._config.topic} refuses {what}: {type(exc).__name__}: {exc}"
            ) from exc
        except TimeoutError:
            raise KafkaNotConnectedError(
                f"no acknowledgement within {self._config.request_timeout_ms} ms; the producer keeps retrying"
            ) from None
        finally:
            if future is not None and future.done():
                self._in_flight.pop(record_id, None)

    async def _replace_producer(self, producer: AIOKafkaProducer) -> None:
        """Close ``producer`` (flushing what it holds, bounded) so that the next delivery makes a new one."""
        async with self._connect_lock:
            if self._producer is not producer:
                return  # replaced or stopped meanwhile
            self._producer = None
        timeout_s = self._config.request_timeout_ms / 1000
        await kafka_records.close_producer(producer, timeout_s=timeout_s, owner=f"kafka sink {self.name}")
        # Futures of the old producer are done now (acknowledged or failed); retries send again.
        self._in_flight = {key: f for key, f in self._in_flight.items() if not f.done()}

    async def _ensure_producer(self) -> AIOKafkaProducer:
        async with self._connect_lock:
            if self._producer is not None:
                return self._producer
            producer = AIOKafkaProducer(**self._producer_kwargs())
            try:
                await producer.start()
            except BaseException as exc:
                # A producer whose start failed (or was cancelled) still owns a client: close it, which
                # also avoids the "Unclosed AIOKafkaProducer" warning; a fresh one is made next time.
                await producer.stop()
                if isinstance(exc, KafkaError | OSError):
                    where = redact_text(self._config.bootstrap_servers)
                    raise KafkaNotConnectedError(
                        f"cannot connect to {where}: {type(exc).__name__}: {redact_text(str(exc))}"
                    ) from exc
                raise
            logger.info("kafka sink %s: connected to %s", self.name, redact_text(self._config.bootstrap_servers))
            self._producer = producer
            return producer

    def _producer_kwargs(self) -> dict[str, Any]:
        cfg = self._config
        return {
            **cfg.security_kwargs(),
            "bootstrap_servers": cfg.bootstrap_servers,
            "client_id": cfg.client_id,
            "acks": "all",
            "enable_idempotence": cfg.enable_idempotence,
            "request_timeout_ms": cfg.request_timeout_ms,
        }
