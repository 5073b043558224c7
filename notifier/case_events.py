"""Publishes case transitions on ``gridwatch.alert-events`` from their table (``case_events`` is the outbox).

Each ``CaseEvent`` row committed by the case desk is published once the broker acknowledged it
(at least once: a crash after the send and before ``published_at`` is written sends it again, with
the same ``ce_id``), in the order the transitions happened, keyed like the alerts (so one person's
events stay in one partition, in order). A broker that is down holds the rows back, retried with
capped backoff; a record the topic refuses for good is marked published with its error, logged at
ERROR and counted, so it does not hold back every later transition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from sqlalchemy import Connection, select

from gridwatch.core import kafka_records
from gridwatch.core.config.notifier import KafkaSinkConfig, OutboxConfig
from gridwatch.core.db import Database
from gridwatch.core.db.schema import case_events
from gridwatch.core.events import CaseEvent
from gridwatch.core.interfaces import RecordRejectedError
from gridwatch.core.metrics import CASE_EVENTS_PUBLISHED, LOOP_ERRORS
from gridwatch.core.redact import redact_text
from notifier.delivery_loop import retry_delay, wait_for_work
from notifier.sinks.kafka import KafkaSink

log = logging.getLogger(__name__)


class CaseEventPublisher:
    def __init__(
        self,
        database: Database,
        kafka: KafkaSinkConfig,
        topic: str,
        outbox: OutboxConfig,
        *,
        service_name: str = "gridwatch",
        batch_size: int = 100,
    ) -> None:
        self._db = database
        self._sink = KafkaSink(
            kafka.model_copy(update={"topic": topic}), service_name=service_name, name="alert-events"
        )
        self._outbox = outbox
        self._source = f"gridwatch/{service_name}"
        self._batch_size = batch_size
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def topic(self) -> str:
        return self._sink.topic

    async def start(self) -> None:
        if self._task is not None:
            return
        self._stopping.clear()
        await self._sink.start()
        self._task = asyncio.create_task(self._run(), name="notifier.case-events")

    async def stop(self) -> None:
        """Idempotent; unpublished rows stay for the next start."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._sink.stop()

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                published = await self._publish_batch()
                failures = 0
            except Exception as exc:
                failures += 1
                LOOP_ERRORS.labels(loop="cases.events").inc()
                delay = retry_delay(failures, self._outbox.retry_initial_s, self._outbox.retry_max_s)
                log.warning(
                    "alert events: publishing to %s failed (retry in %.1fs): %s",
                    self.topic,
                    delay,
                    redact_text(f"{type(exc).__name__}: {exc}"),
                )
                await self._sleep(delay)
                continue
            if published < self._batch_size:
                await self._sleep(5.0)  # rows another process committed are picked up too

    async def _publish_batch(self) -> int:
        rows = await asyncio.to_thread(self._unpublished)
        for seq, text in rows:
            event = CaseEvent.model_validate_json(text)
            headers = kafka_records.cloudevent_headers(
                event_id=event.event_id, source=self._source, ce_type=event.type, subject=event.alert_id, time=event.at
            )
            try:
                await self._sink.publish(event.event_id, key=event.key, value=text, headers=headers, what=event.type)
            except RecordRejectedError as exc:
                log.error("alert event %s refused for good by %s, skipped: %s", event.event_id, self.topic, exc)
            else:
                CASE_EVENTS_PUBLISHED.inc()
            await asyncio.to_thread(self._mark_published, seq)
        return len(rows)

    def _unpublished(self) -> list[tuple[int, str]]:
        query = (
            select(case_events.c.seq, case_events.c.event_json)
            .where(case_events.c.published_at.is_(None))
            .order_by(case_events.c.seq)
            .limit(self._batch_size)
        )
        rows = self._db.transaction(lambda c: c.execute(query).all(), what="alert events read", read_only=True)
        return [(int(r[0]), str(r[1])) for r in rows]

    def _mark_published(self, seq: int) -> None:
        def mark(conn: Connection) -> None:
            conn.execute(case_events.update().where(case_events.c.seq == seq).values(published_at=time.time()))

        self._db.transaction(mark, what="alert events published")

    async def _sleep(self, timeout_s: float | None) -> None:
        await wait_for_work(self._wake, self._stopping, timeout_s, "notifier.alert_events")
