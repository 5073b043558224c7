"""Notification delivery: one task per channel drains that channel's rows of the notification outbox.

Rows are tried oldest first. A row that fails gets its own next attempt time (capped exponential
backoff by its own attempts: ``outbox.retry_initial_s`` doubling up to ``outbox.retry_max_s``) and the
task goes on with the next due row, so a recipient, or one notification, that keeps failing never holds
back the others on that channel; and each channel has its own task, so a channel that is down never
holds back another. When no row is due the task sleeps until the earliest ``next_due`` of its channel or
until ``wake()`` (call it on the event loop after committing new notifications). Rows left pending by
a crash or a shutdown are delivered when a dispatcher starts on the same outbox: its first pass tries
every pending row at once, whatever its stored retry time.

Parking (a row set aside for an operator, counted, audited, logged once at ERROR): at once for a row
whose stored JSON no longer validates, or one the channel refuses with ``RecordRejectedError``. Any other
error is the channel's (down, misconfigured) and is retried, unless the row has failed
``outbox.park_after_attempts`` times and fails again although the channel delivered another notification
since the row's previous failure: then the channel is up and the row is the problem. A channel that is
down therefore never parks anything (as for alerts, see ``notifier.notifier``).

Every step is audited when an audit log is given (``notification.delivered``,
``notification.delivery_failed``, ``notification.parked``: channel, staff, level, repeat, attempt; the
acknowledgement link never) and counted (``gridwatch_notifications_*``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.notifier import OutboxConfig
from gridwatch.core.events import Notification
from gridwatch.core.interfaces import NotificationChannel, RecordRejectedError
from gridwatch.core.metrics import LOOP_ERRORS, NOTIFICATION_FAILURES, NOTIFICATIONS_DELIVERED, NOTIFICATIONS_PARKED
from gridwatch.core.redact import redact_text
from notifier.delivery_loop import audit_step, retry_delay, sleep_unless_stopping, wait_for_work
from notifier.notification_outbox import NotificationOutbox, PendingNotification

logger = logging.getLogger(__name__)


DeliveryReport = Callable[[Notification], Awaitable[None]]


class DispatcherStoppedError(RuntimeError):
    """``start()`` after ``stop()``."""


class NotificationDispatcher:
    """Durable, per-channel and per-row independent delivery of notifications; see the module docstring."""

    def __init__(
        self,
        outbox: NotificationOutbox,
        channels: Sequence[NotificationChannel],
        outbox_config: OutboxConfig,
        audit: AuditLog | None,
        *,
        batch_size: int = 100,
        shutdown_flush_s: float = 3.0,
        on_delivered: DeliveryReport | None = None,
    ) -> None:
        """``on_delivered(notification)`` runs after every recorded delivery (latency figures, case state)."""
        names = [channel.name for channel in channels]
        if len(set(names)) != len(names):
            raise ValueError(f"channel names must be unique, got {names}")
        self._outbox = outbox
        self._channels = list(channels)
        self._config = outbox_config
        self._audit = audit
        self._batch_size = batch_size
        self._shutdown_flush_s = shutdown_flush_s
        self._on_delivered = on_delivered
        self._wake = {name: asyncio.Event() for name in names}
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # Per channel: when it last delivered anything, and when each suspect row (failed
        # park_after_attempts times) last failed; monotonic seconds.
        self._last_delivery: dict[str, float] = {}
        self._suspects: dict[str, dict[str, float]] = {name: {} for name in names}
        self._started = False
        self._stopped = False
        for name in names:  # series exist from the start, at 0
            NOTIFICATIONS_DELIVERED.labels(channel=name)
            NOTIFICATION_FAILURES.labels(channel=name)
            NOTIFICATIONS_PARKED.labels(channel=name)

    @property
    def channels(self) -> list[NotificationChannel]:
        return list(self._channels)

    async def start(self) -> None:
        if self._started:
            return
        if self._stopped:
            raise DispatcherStoppedError("a stopped dispatcher cannot be started again")
        self._started = True
        for channel in self._channels:
            try:
                await channel.start()
            except Exception as exc:
                # A channel that cannot start is retried through send(); it must not stop the others.
                logger.warning("notification channel %s failed to start: %s", channel.name, redact_text(str(exc)))
        self._tasks = [
            asyncio.create_task(self._deliver_loop(channel), name=f"notifier.notify.{channel.name}")
            for channel in self._channels
        ]

    async def stop(self) -> None:
        """Give due rows one last short chance, then stop the channels. Idempotent; rows left are kept."""
        if self._stopped:
            return
        self._stopped = True
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
            for channel in self._channels:
                try:
                    await channel.stop()
                except Exception as exc:
                    logger.warning(
                        "notification channel %s failed to stop cleanly: %s", channel.name, redact_text(str(exc))
                    )

    async def __aenter__(self) -> NotificationDispatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def wake(self, channel: str | None = None) -> None:
        """New rows were committed (for ``channel``, or any): look now. Call on the event loop's thread."""
        if channel is None:
            for event in self._wake.values():
                event.set()
        elif channel in self._wake:
            self._wake[channel].set()

    async def _deliver_loop(self, channel: NotificationChannel) -> None:
        wake = self._wake[channel.name]
        loop_failures = 0
        # The first pass ignores the stored retry times: after a restart, try everything at once.
        first = True
        while True:
            wake.clear()
            final = self._stopping.is_set()
            try:
                rows = await asyncio.to_thread(
                    self._outbox.pending, channel.name, self._batch_size, due_at=None if first else time.time()
                )
                first = False
                for row in rows:
                    await self._deliver_one(channel, row)
                if len(rows) == self._batch_size:
                    continue  # more may be due
                if final:
                    return
                next_due = await asyncio.to_thread(self._outbox.next_due, channel.name)
                loop_failures = 0
            except Exception:
                # Not a channel error (those are handled per row) but e.g. the database: keep the task
                # alive and try again later rather than silently stop delivering.
                LOOP_ERRORS.labels(loop="notifications.delivery").inc()
                logger.exception("delivery loop of notification channel %s failed; trying again", channel.name)
                if final:
                    return
                loop_failures += 1
                await sleep_unless_stopping(
                    self._stopping, retry_delay(loop_failures, self._config.retry_initial_s, self._config.retry_max_s)
                )
                continue
            within_s = None if next_due is None else max(next_due - time.time(), 0.0)
            await wait_for_work(wake, self._stopping, within_s, "notifier.notify")

    async def _deliver_one(self, channel: NotificationChannel, row: PendingNotification) -> None:
        try:
            notification = row.notification()
        except ValueError as exc:  # pydantic's ValidationError: no channel will ever take this row
            NOTIFICATION_FAILURES.labels(channel=channel.name).inc()
            await self._park(channel, row, None, exc, "the stored notification is not a valid notification")
            return
        try:
            await channel.send(notification)
        except asyncio.CancelledError:
            raise
        except RecordRejectedError as exc:
            NOTIFICATION_FAILURES.labels(channel=channel.name).inc()
            await self._park(channel, row, notification, exc, "the channel refuses this notification")
            return
        except Exception as exc:
            NOTIFICATION_FAILURES.labels(channel=channel.name).inc()
            await self._failed(channel, row, notification, exc)
            return
        self._last_delivery[channel.name] = time.monotonic()
        self._suspects[channel.name].pop(row.notification_id, None)
        await asyncio.to_thread(self._outbox.mark_delivered, row.notification_id)
        NOTIFICATIONS_DELIVERED.labels(channel=channel.name).inc()
        await self._audit_step("notification.delivered", notification, {"attempt": row.attempts + 1})
        if self._on_delivered is not None:
            try:
                await self._on_delivered(notification)
            except Exception:
                LOOP_ERRORS.labels(loop="notifications.delivery_report").inc()
                logger.exception("delivery report for notification %s failed", row.notification_id)

    async def _failed(
        self, channel: NotificationChannel, row: PendingNotification, notification: Notification, exc: Exception
    ) -> None:
        attempts = row.attempts + 1
        suspects = self._suspects[channel.name]
        failed_before = suspects.get(row.notification_id)
        delivered_since = self._last_delivery.get(channel.name)
        if failed_before is not None and delivered_since is not None and delivered_since > failed_before:
            await self._park(
                channel, row, notification, exc, f"failed {attempts} times while the channel delivered others"
            )
            return
        if attempts >= self._config.park_after_attempts:
            suspects[row.notification_id] = time.monotonic()
        error = _error_text(exc, notification)
        delay = retry_delay(attempts, self._config.retry_initial_s, self._config.retry_max_s)
        attempts = await asyncio.to_thread(self._outbox.mark_failed, row.notification_id, error, time.time() + delay)
        logger.warning(
            "notification %s (alert %s, staff %s): delivery to %s failed (attempt %d, retry in %.1fs): %s",
            row.notification_id,
            row.alert_id,
            row.staff_id,
            channel.name,
            attempts,
            delay,
            error,
        )
        await self._audit_step(
            "notification.delivery_failed",
            notification,
            {"attempt": attempts, "error": error, "retry_in_s": round(delay, 3)},
        )

    async def _park(
        self,
        channel: NotificationChannel,
        row: PendingNotification,
        notification: Notification | None,
        exc: Exception,
        reason: str,
    ) -> None:
        self._suspects[channel.name].pop(row.notification_id, None)
        error = _error_text(exc, notification)
        attempts = await asyncio.to_thread(self._outbox.park, row.notification_id, error)
        NOTIFICATIONS_PARKED.labels(channel=channel.name).inc()
        # ERROR, once: nothing retries a parked notification, an operator has to look at it.
        logger.error(
            "notification %s (alert %s, staff %s) parked for channel %s after %d attempt(s) (%s): %s",
            row.notification_id,
            row.alert_id,
            row.staff_id,
            channel.name,
            attempts,
            reason,
            error,
        )
        details: dict[str, object] = {"attempt": attempts, "reason": reason, "error": error}
        if notification is None:
            details |= {"notification_id": row.notification_id, "channel": row.channel, "staff": row.staff_id}
            await self._audit_raw("notification.parked", row.alert_id, details)
        else:
            await self._audit_step("notification.parked", notification, details)

    async def _audit_step(self, action: str, notification: Notification, extra: Mapping[str, object]) -> None:
        details: dict[str, object] = {
            "notification_id": notification.notification_id,
            "channel": notification.channel,
            "staff": notification.staff_id,
            "level": notification.level,
            "repeat": notification.repeat,
            **extra,
        }
        await self._audit_raw(action, notification.alert_id, details)

    async def _audit_raw(self, action: str, alert_id: str, details: Mapping[str, object]) -> None:
        await audit_step(self._audit, action, alert_id, details, loop="notifications.audit")


def _error_text(exc: Exception, notification: Notification | None) -> str:
    """The error as logged, audited and stored: no URL credentials, and not the acknowledgement link (a
    receiver may echo the body it refused, link included)."""
    text = redact_text(f"{type(exc).__name__}: {exc}")
    if notification is not None and notification.ack_url:
        token = notification.ack_url.rstrip("/").rsplit("/", 1)[-1]
        for secret in (notification.ack_url, token):
            if len(secret) >= 8:
                text = text.replace(secret, "<ack link>")
    return text
