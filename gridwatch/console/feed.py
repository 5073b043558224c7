"""The console's live feed: the service publishes new alerts and case steps, each open stream subscribes.

Only ids travel here (``FeedEvent``): every subscriber loads the case itself and checks its own scope,
so nothing out of scope is ever put on a stream. Publishing never blocks the service: a subscriber
that falls ``max_queue`` events behind loses its oldest ones (its page reloads the queue on reconnect).
All calls happen on the event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class FeedEvent:
    kind: Literal["alert", "case"]
    alert_id: str


_CLOSED = FeedEvent("case", "")  # the sentinel that ends a subscription


class Subscription:
    """One stream's queue; ``next(timeout_s)``: the next event, ``None`` after the timeout (time for a ping)."""

    def __init__(self, feed: Feed, max_queue: int) -> None:
        self._feed = feed
        self.queue: asyncio.Queue[FeedEvent] = asyncio.Queue(max_queue)
        self.closed = False

    async def next(self, timeout_s: float) -> FeedEvent | None:
        """The next event; ``None`` on timeout; raises ``EOFError`` once the feed closed."""
        if self.closed:
            raise EOFError
        try:
            event = await asyncio.wait_for(self.queue.get(), timeout_s)
        except TimeoutError:
            return None
        if event is _CLOSED:
            self.closed = True
            raise EOFError
        return event

    def put(self, event: FeedEvent) -> None:
        if self.queue.full():
            self.queue.get_nowait()  # drop the oldest: a slow page must not hold the service up
        self.queue.put_nowait(event)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self._feed.unsubscribe(self)


class Feed:
    def __init__(self, *, max_queue: int = 1000) -> None:
        self._max_queue = max_queue
        self._subscriptions: set[Subscription] = set()
        self._closed = False

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def publish(self, event: FeedEvent) -> None:
        for subscription in self._subscriptions:
            subscription.put(event)

    def subscribe(self) -> Subscription:
        """A subscription to every event published from now on (use it as a context manager)."""
        subscription = Subscription(self, self._max_queue)
        if self._closed:
            subscription.put(_CLOSED)
        else:
            self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def close(self) -> None:
        """End every subscription (their streams end, so the listener can stop); idempotent."""
        self._closed = True
        for subscription in list(self._subscriptions):
            subscription.put(_CLOSED)
        self._subscriptions.clear()
