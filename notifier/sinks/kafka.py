"""Kafka sink: each alert is one record, keyed by person id, in the CloudEvents Kafka binary binding.

The value is the alert JSON (UTF-8); the CloudEvents attributes travel as ``ce_*`` headers with
``content-type: application/json``, so consumers that know CloudEvents need nothing else and the
rest read plain JSON. ``ce_id`` is the deterministic ``alert_id``: consumers deduplicate by it.

A broker that is down at start is not an error: ``start()`` tries once, and every ``deliver()``
tries to connect again until it works, raising meanwhile so that the outbox keeps the alert and
retries it. Once connected, aiokafka reconnects by itself. A delivery is never cancelled half-way
(that could leave the record in the producer's buffer and send it later, after a retry).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from gridwatch.core.config.notifier import KafkaSinkConfig
from gridwatch.core.events import Alert
from gridwatch.core.redact import redact_text
from notifier.format import utc_iso

logger = logging.getLogger(__name__)

CE_SPECVERSION = "1.0"
CE_TYPE = "gridwatch.alert.v1"
CONTENT_TYPE = "application/json"


def cloudevent_headers(alert: Alert, service_name: str) -> list[tuple[str, bytes]]:
    """CloudEvents 1.0 Kafka protocol binding, binary content mode."""
    return [
        ("ce_specversion", CE_SPECVERSION.encode()),
        ("ce_id", alert.alert_id.encode()),
        ("ce_source", f"gridwatch/{service_name}".encode()),
        ("ce_type", CE_TYPE.encode()),
        ("ce_time", utc_iso(alert.created_at).encode()),
        ("ce_subject", alert.person_id.encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]


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
        """Flush what was handed to the producer and close it. Idempotent."""
        self._closed = True
        async with self._connect_lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def deliver(self, alert: Alert) -> None:
        """Publish and wait for the broker's acknowledgement of all in-sync replicas; raise on failure."""
        if self._closed:
            raise RuntimeError(f"kafka sink {self.name} is stopped")
        producer = await self._ensure_producer()
        await producer.send_and_wait(
            self._config.topic,
            value=alert.to_json().encode("utf-8"),
            key=alert.person_id.encode("utf-8"),
            headers=cloudevent_headers(alert, self._service_name),
        )

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
            **security_kwargs(cfg),
            "bootstrap_servers": cfg.bootstrap_servers,
            "client_id": cfg.client_id,
            "acks": "all",
            "enable_idempotence": cfg.enable_idempotence,
            "request_timeout_ms": cfg.request_timeout_ms,
        }


def security_kwargs(cfg: KafkaSinkConfig) -> dict[str, Any]:
    """The aiokafka connection-security settings of a config (shared by the sink and ``alerts tail``)."""
    kwargs: dict[str, Any] = {"security_protocol": cfg.security_protocol}
    if cfg.security_protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = ssl.create_default_context()
    if cfg.sasl_mechanism is not None:
        kwargs["sasl_mechanism"] = cfg.sasl_mechanism
    if cfg.sasl_username is not None:
        kwargs["sasl_plain_username"] = cfg.sasl_username
    if cfg.sasl_password is not None:
        kwargs["sasl_plain_password"] = cfg.sasl_password
    return kwargs
