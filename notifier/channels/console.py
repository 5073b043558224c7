"""Console channel: the service log and the operator console's live feed.

Each notification is one INFO line (staff, alert, rule, level; never the acknowledgement link, which is
a capability), is kept in ``recent`` (the last ``keep`` of them, for a console that connects later),
and is handed to every subscriber. A subscriber that fails is logged and skipped: the notification
stands as delivered (the log line and ``recent`` have it).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Callable

from gridwatch.core.config.channels import ConsoleChannelConfig
from gridwatch.core.events import Notification
from gridwatch.core.metrics import LOOP_ERRORS

logger = logging.getLogger(__name__)

NotificationListener = Callable[[Notification], Awaitable[None]]
DEFAULT_KEEP = 200


class ConsoleChannel:
    def __init__(self, config: ConsoleChannelConfig, *, keep: int = DEFAULT_KEEP) -> None:
        self.name = config.id
        self.recent: collections.deque[Notification] = collections.deque(maxlen=keep)
        self._listeners: list[NotificationListener] = []

    def __repr__(self) -> str:
        return f"ConsoleChannel(name={self.name!r})"

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def subscribe(self, listener: NotificationListener) -> Callable[[], None]:
        """Call ``listener`` with every notification from now on; returns the call that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    async def send(self, notification: Notification) -> None:
        logger.info(
            "notification for staff %s: alert %s, rule %s (%s), level %d%s",
            notification.staff_id,
            notification.alert_id,
            notification.rule,
            notification.severity.value,
            notification.level,
            f", reminder {notification.repeat}" if notification.repeat else "",
        )
        self.recent.append(notification)
        for listener in list(self._listeners):
            try:
                await listener(notification)
            except Exception:
                LOOP_ERRORS.labels(loop="notifications.console_subscriber").inc()
                logger.exception(
                    "console channel %s: a subscriber failed on notification %s",
                    self.name,
                    notification.notification_id,
                )
