"""The notifier: outbox first, then one delivery task per sink.

``submit()`` returns once the alert is committed to the outbox (or found there already: a replayed
``alert_id`` is neither stored nor delivered twice). Each sink has its own task that delivers the
pending alerts in order, records each delivery and, when the sink raises, backs off exponentially
(``outbox.retry_initial_s`` doubling up to ``outbox.retry_max_s``) before it tries again, so a
Kafka outage never holds up the console. Rows left pending by a crash or a shutdown are delivered
when a notifier starts on the same outbox.

One alert that a sink will never take must not block the alerts behind it, so it is parked for that
sink (``Outbox.park``: kept aside for an operator, counted, audited, logged once at ERROR) and the sink
goes on with the next one. Parked at once: a row whose stored JSON no longer validates, or one the sink
refuses with ``RecordRejectedError``. Any other error is the sink's (down, misconfigured) and is only
retried, unless the same alert has failed ``outbox.park_after_attempts`` times and then fails again
right after another alert was delivered to that sink: then the sink is up and the alert is the problem.
A sink that is down therefore never parks anything.

Every step is audited when an audit log is given: ``alert.created``, ``alert.delivered`` (with the
sink), ``alert.delivery_failed`` and ``alert.delivery_parked``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from sqlalchemy import Connection

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.notifier import NotifierConfig
from gridwatch.core.events import Alert
from gridwatch.core.interfaces import DeliveryChannel, RecordRejectedError
from gridwatch.core.metrics import DELIVERIES_PARKED, DELIVERY_ATTEMPTS, DELIVERY_FAILURES, LOOP_ERRORS
from gridwatch.core.redact import redact_text
from notifier.delivery_loop import audit_step, retry_delay, sleep_unless_stopping, wait_for_work
from notifier.outbox import Outbox, PendingDelivery
from notifier.sinks import ConsoleSink, JsonlSink, KafkaSink

logger = logging.getLogger(__name__)


class Outcome(enum.Enum):
    """What one delivery attempt came to."""

    DELIVERED = "delivered"
    FAILED = "failed"  # kept pending, retried later
    PARKED = "parked"


class NotifierStoppedError(RuntimeError):
    """``submit()`` after ``stop()``."""


class Notifier:
    """Durable, per-sink-independent alert delivery; see the module docstring."""

    def __init__(
        self,
        config: NotifierConfig,
        outbox: Outbox,
        sinks: Sequence[DeliveryChannel],
        audit: AuditLog | None,
        *,
        batch_size: int = 100,
        shutdown_flush_s: float = 3.0,
        on_delivered: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        """``on_delivered(alert_id)`` runs after every recorded delivery (the rules start cooldowns from it)."""
        names = [sink.name for sink in sinks]
        if len(set(names)) != len(names):
            raise ValueError(f"sink names must be unique, got {names}")
        self._config = config
        self._outbox = outbox
        self._sinks = list(sinks)
        self._audit = audit
        self._batch_size = batch_size
        self._shutdown_flush_s = shutdown_flush_s
        self._on_delivered = on_delivered
        outbox.set_sinks(names)
        self._wake = {name: asyncio.Event() for name in names}
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._accepting = True
        self._started = False
        self._stopped = False

    @property
    def sinks(self) -> list[DeliveryChannel]:
        return list(self._sinks)

    def wake(self) -> None:
        """Look at the outbox now (another process may have added alerts to it)."""
        for event in self._wake.values():
            event.set()

    async def start(self) -> None:
        if self._started:
            return
        if self._stopped:
            raise NotifierStoppedError("a stopped notifier cannot be started again")
        self._started = True
        for sink in self._sinks:
            try:
                await sink.start()
            except Exception as exc:
                # A sink that cannot start is retried through deliver(); it must not stop the others.
                logger.warning("alert sink %s failed to start: %s", sink.name, redact_text(str(exc)))
        self._tasks = [
            asyncio.create_task(self._deliver_loop(sink), name=f"notifier.deliver.{sink.name}") for sink in self._sinks
        ]

    async def stop(self) -> None:
        """Stop accepting, give pending deliveries one last short chance, then stop the sinks."""
        if self._stopped:
            return
        self._stopped = True
        self._accepting = False
        self._stopping.set()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=self._shutdown_flush_s)
            for task in late:
                task.cancel()
            results = await asyncio.gather(*self._tasks, return_exceptions=True)
            for task, result in zip(self._tasks, results, strict=True):
                if isinstance(result, Exception):
                    logger.error("%s ended with an error: %r", task.get_name(), result)
            self._tasks = []
        if self._started:
            for sink in self._sinks:
                try:
                    await sink.stop()
                except Exception as exc:
                    logger.warning("alert sink %s failed to stop cleanly: %s", sink.name, redact_text(str(exc)))

    async def __aenter__(self) -> Notifier:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def submit(self, alert: Alert, *, also: Callable[[Connection], None] | None = None) -> bool:
        """Store the alert durably and wake the delivery tasks; False for an alert_id seen before.

        ``also``: runs in the outbox's transaction when the alert is new (see ``Outbox.add``).
        """
        if not self._accepting:
            raise NotifierStoppedError("notifier is stopped; alert not accepted")
        added = await asyncio.to_thread(self._outbox.add, alert, also=also)
        if not added:
            logger.debug("alert %s already in the outbox; not delivered again", alert.alert_id)
            return False
        await self._audit_step(
            "alert.created",
            alert.alert_id,
            {
                "rule": alert.rule,
                "severity": alert.severity.value,
                "person_id": alert.person_id,
                "registry": alert.registry,
                "source": alert.source,
            },
        )
        for event in self._wake.values():
            event.set()
        return True

    async def _deliver_loop(self, sink: DeliveryChannel) -> None:
        wake = self._wake[sink.name]
        failures = 0
        # Rows that failed park_after_attempts times: each is tried once more right after the sink took
        # another alert, and parked if it fails even then (see the module docstring).
        suspects: dict[str, PendingDelivery] = {}
        # The first pass ignores the stored retry times: after a restart, try everything at once.
        due_at: float | None = None
        while True:
            wake.clear()
            final = self._stopping.is_set()
            try:
                rows = await asyncio.to_thread(
                    self._outbox.pending, sink.name, self._batch_size, due_at=None if final else due_at
                )
                due_at = time.time()
                failed = False
                for row in rows:
                    outcome, attempts = await self._deliver_one(sink, row, failures + 1)
                    if outcome is Outcome.DELIVERED:
                        failures, failed = 0, False
                        suspects.pop(row.alert_id, None)
                        await self._retry_suspects(sink, suspects)
                    elif outcome is Outcome.FAILED:
                        failed = True
                        if attempts < self._config.outbox.park_after_attempts:
                            break
                        # Possibly a poison alert: go on and see whether the next one goes through.
                        suspects[row.alert_id] = row
            except Exception:
                # Not a sink error (those are handled per row) but e.g. the outbox disk: keep the task
                # alive and try again later rather than silently stop delivering.
                LOOP_ERRORS.labels(loop="notifier.delivery").inc()
                logger.exception("delivery loop of sink %s failed; trying again", sink.name)
                rows, failed = [], True
            if failed:
                failures += 1
                if final:
                    return
                delay = retry_delay(failures, self._config.outbox.retry_initial_s, self._config.outbox.retry_max_s)
                # Back off the whole sink: new alerts wake nobody until the delay is over.
                await sleep_unless_stopping(self._stopping, delay)
                continue
            if len(rows) == self._batch_size:
                continue  # more may be waiting
            if final:
                return
            next_due = await asyncio.to_thread(self._outbox.next_due, sink.name)
            within_s = None if next_due is None else max(next_due - time.time(), 0.0)
            await wait_for_work(wake, self._stopping, within_s, "notifier")

    async def _retry_suspects(self, sink: DeliveryChannel, suspects: dict[str, PendingDelivery]) -> None:
        """The sink just took an alert: a suspect that fails now is parked."""
        while suspects:
            _, row = suspects.popitem()
            await self._deliver_one(sink, row, 1, park_reason="failed again right after another alert was delivered")

    async def _deliver_one(
        self, sink: DeliveryChannel, row: PendingDelivery, failures: int, *, park_reason: str | None = None
    ) -> tuple[Outcome, int]:
        """One attempt; returns the outcome and the row's attempts so far. ``park_reason``: park on any failure."""
        DELIVERY_ATTEMPTS.labels(sink=sink.name).inc()
        try:
            alert = row.alert()
        except ValueError as exc:  # pydantic's ValidationError: no sink will ever take this row
            DELIVERY_FAILURES.labels(sink=sink.name).inc()
            return await self._park(sink, row, exc, "the stored alert is not a valid alert"), row.attempts + 1
        try:
            await sink.deliver(alert)
        except asyncio.CancelledError:
            raise
        except RecordRejectedError as exc:
            DELIVERY_FAILURES.labels(sink=sink.name).inc()
            return await self._park(sink, row, exc, "the sink refuses this alert"), row.attempts + 1
        except Exception as exc:
            DELIVERY_FAILURES.labels(sink=sink.name).inc()
            if park_reason is not None:
                return await self._park(sink, row, exc, park_reason), row.attempts + 1
            error = redact_text(f"{type(exc).__name__}: {exc}")
            delay = retry_delay(failures, self._config.outbox.retry_initial_s, self._config.outbox.retry_max_s)
            attempts = await asyncio.to_thread(
                self._outbox.mark_failed, row.alert_id, sink.name, error, time.time() + delay
            )
            logger.warning(
                "alert %s: delivery to %s failed (attempt %d, retry in %.1fs): %s",
                row.alert_id,
                sink.name,
                attempts,
                delay,
                error,
            )
            await self._audit_step(
                "alert.delivery_failed",
                row.alert_id,
                {"sink": sink.name, "attempt": attempts, "error": error, "retry_in_s": round(delay, 3)},
            )
            return Outcome.FAILED, attempts
        await asyncio.to_thread(self._outbox.mark_delivered, row.alert_id, sink.name)
        await self._audit_step("alert.delivered", row.alert_id, {"sink": sink.name, "attempt": row.attempts + 1})
        if self._on_delivered is not None:
            try:
                await self._on_delivered(row.alert_id)
            except Exception:
                # The delivery stands; the cooldown then runs from the next delivery report, or never
                # starts, which errs towards one more alert rather than one fewer.
                LOOP_ERRORS.labels(loop="notifier.delivery_report").inc()
                logger.exception("delivery report for alert %s failed", row.alert_id)
        return Outcome.DELIVERED, row.attempts + 1

    async def _park(self, sink: DeliveryChannel, row: PendingDelivery, exc: Exception, reason: str) -> Outcome:
        error = redact_text(f"{type(exc).__name__}: {exc}")
        attempts = await asyncio.to_thread(self._outbox.park, row.alert_id, sink.name, error)
        DELIVERIES_PARKED.labels(sink=sink.name).inc()
        # ERROR, once: nothing retries a parked alert, an operator has to look at it.
        logger.error(
            "alert %s parked for sink %s after %d attempt(s) (%s): %s", row.alert_id, sink.name, attempts, reason, error
        )
        await self._audit_step(
            "alert.delivery_parked",
            row.alert_id,
            {"sink": sink.name, "attempt": attempts, "reason": reason, "error": error},
        )
        return Outcome.PARKED

    async def _audit_step(self, action: str, alert_id: str, details: Mapping[str, object]) -> None:
        await audit_step(self._audit, action, alert_id, details, loop="notifier.audit")


def build_sinks(config: NotifierConfig, data_dir: Path, service_name: str) -> list[DeliveryChannel]:
    """The sinks the config enables, in a fixed order: console, jsonl, kafka."""
    sinks: list[DeliveryChannel] = []
    if config.console.enabled:
        sinks.append(ConsoleSink())
    if config.jsonl.enabled:
        path = config.jsonl.path if config.jsonl.path.is_absolute() else data_dir / config.jsonl.path
        sinks.append(JsonlSink(path))
    if config.kafka.enabled:
        sinks.append(KafkaSink(config.kafka, service_name=service_name))
    return sinks
