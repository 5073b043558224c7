"""Acknowledgements a push gateway produces to ``gridwatch.acks`` (one ``AckMessage`` JSON per record).

A record that can never be accepted (not JSON, not an ``AckMessage``, an unknown staff member or
alert, a case that no longer takes it) is rejected: counted, logged once at WARNING with ids only,
and its offset committed, so that it does not block its partition. A record the desk could not
handle (the database is down) is retried with backoff and its offset is not committed meanwhile:
each acknowledgement is handled at least once, and the desk's acknowledge is idempotent
(``changed=False`` for a repeat).

Runs like the Kafka transport's consumers (``gridwatch.transport.kafka``): manual commits after
handling, reconnect with capped backoff, ``stop()`` lets the record in hand finish for a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from pydantic import ValidationError

from gridwatch.core.config.kafka import KafkaConnectionConfig
from gridwatch.core.events import AckMessage
from gridwatch.core.interfaces import CaseDesk, CaseError, CaseNotFoundError
from gridwatch.core.metrics import ACKS, ACKS_REJECTED, LOOP_ERRORS
from gridwatch.core.redact import redact_text

log = logging.getLogger(__name__)

BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 30.0
STOP_GRACE_S = 5.0
CHANNEL = "kafka"


def _backoff(attempt: int) -> float:
    delay: float = min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2**attempt) * random.uniform(0.8, 1.2)
    return delay


class _Rejected(Exception):
    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason


class AckConsumer:
    """Reads ``topic`` in consumer group ``group_id`` and acknowledges through ``desk``. No I/O in ``__init__``."""

    def __init__(self, connection: KafkaConnectionConfig, topic: str, group_id: str, desk: CaseDesk) -> None:
        self._connection = connection
        self._topic = topic
        self._group_id = group_id
        self._desk = desk
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.accepted = 0
        self.rejected = 0

    def __repr__(self) -> str:  # never shows the SASL settings
        return f"AckConsumer(topic={self._topic!r}, group_id={self._group_id!r})"

    async def start(self) -> None:
        if self._task is not None:
            return
        self._stopping.clear()
        self._task = asyncio.create_task(self._consume(), name=f"gridwatch.acks:{self._topic}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        # The record in hand is finished and committed; a desk stuck longer is cancelled (its record,
        # not committed, is handled again by the next owner of the partition).
        _done, pending = await asyncio.wait([task], timeout=STOP_GRACE_S)
        for still_running in pending:
            still_running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await still_running

    # -- consuming ---------------------------------------------------------------------------------

    async def _consume(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            cfg = self._connection
            consumer = AIOKafkaConsumer(
                self._topic,
                **cfg.security_kwargs(),
                bootstrap_servers=cfg.bootstrap_servers,
                client_id=cfg.client_id,
                group_id=self._group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
            )
            try:
                await consumer.start()
                attempt = 0
                await self._consume_batches(consumer)
            except (KafkaError, OSError) as exc:
                delay = _backoff(attempt)
                attempt += 1
                log.warning(
                    "acks: consumer of %s failed (%s: %s); reconnecting in %.1f s",
                    self._topic,
                    type(exc).__name__,
                    redact_text(str(exc)),
                    delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
            finally:
                await consumer.stop()

    async def _consume_batches(self, consumer: AIOKafkaConsumer) -> None:
        while not self._stopping.is_set():
            batch = await consumer.getmany(timeout_ms=500, max_records=200)
            for tp, records in batch.items():
                handled: int | None = None
                for record in records:
                    if not await self._handle(tp, record.offset, record.value):
                        break  # stopping: this record stays uncommitted
                    handled = record.offset
                if handled is not None:
                    await self._commit(consumer, tp, handled + 1)
                if self._stopping.is_set():
                    return

    async def _commit(self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        try:
            await consumer.commit({tp: offset})
        except CommitFailedError as exc:
            # The partition moved to another member meanwhile: it handles these again (idempotent).
            log.warning("acks: commit on %s failed (%s); acknowledgements will be replayed", tp, exc)

    async def _handle(self, tp: TopicPartition, offset: int, value: bytes | None) -> bool:
        """Handle one record until it is accepted or rejected (True), or the consumer stops (False)."""
        attempt = 0
        while True:
            try:
                message = _decode(value)
                await self._acknowledge(message)
            except _Rejected as rejected:
                self.rejected += 1
                ACKS_REJECTED.labels(channel=CHANNEL, reason=rejected.reason).inc()
                log.warning("acks: rejected the record at %s offset %d: %s", tp, offset, rejected)
                return True
            except Exception as exc:
                LOOP_ERRORS.labels(loop="acks.consumer").inc()
                delay = _backoff(attempt)
                attempt += 1
                log.warning(
                    "acks: could not handle the record at %s offset %d (%s: %s); retrying in %.1f s",
                    tp,
                    offset,
                    type(exc).__name__,
                    redact_text(str(exc)),
                    delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                if self._stopping.is_set():
                    return False
            else:
                self.accepted += 1
                ACKS.labels(channel=CHANNEL).inc()
                return True

    async def _acknowledge(self, message: AckMessage) -> None:
        if not self._desk.is_staff(message.staff_id):
            raise _Rejected("unknown_staff", f"unknown staff {message.staff_id!r} (alert {message.alert_id!r})")
        try:
            await self._desk.acknowledge(message.alert_id, message.staff_id, channel=CHANNEL, comment=message.comment)
        except CaseNotFoundError:
            ids = f"alert {message.alert_id!r}, staff {message.staff_id!r}"
            raise _Rejected("unknown_alert", f"unknown alert ({ids})") from None
        except CaseError as exc:
            # The case does not take it (resolved meanwhile...): retrying cannot change that.
            ids = f"alert {message.alert_id!r}, staff {message.staff_id!r}"
            reason = "conflict" if exc.status == 409 else "refused"
            raise _Rejected(reason, f"the case refused the acknowledgement ({ids})") from None


def _decode(value: bytes | None) -> AckMessage:
    if not value:
        raise _Rejected("malformed", "empty record")
    try:
        return AckMessage.model_validate_json(value)
    except ValidationError as exc:
        # Where and why only: never the input (a record may hold anything).
        errors: list[Any] = exc.errors(include_input=False, include_url=False)
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in errors[:5])
        raise _Rejected("malformed", f"not an acknowledgement ({problems})") from None
