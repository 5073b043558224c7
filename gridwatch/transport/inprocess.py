"""In-process transport: one bounded asyncio queue per (channel, consumer group), one consumer task each.

The embedded default: one process, nothing to start. ``publish`` returns once every subscriber's
handler has returned for the event — the in-process counterpart of Kafka's ``acks=all``: when a
gate event's sightings are published, any alert they made is in the outbox, so the gate may tell
its device the event was taken. A full queue makes the publisher wait (back-pressure): cameras drop
frames upstream (latest frame wins) and gates have their own bounded, time-limited intake.
``stop()`` lets the consumers finish what is queued (bounded by ``drain_s``) before it cancels
them; a publisher whose event was not handled by then gets an error, never a silent return.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from gridwatch.core.transport import Channel, EventT, Handler, PartitionListener, Publisher, Tap, Taps

log = logging.getLogger(__name__)

RETRY_PAUSE_S = 1.0


@dataclass(frozen=True, slots=True)
class _Delivery:
    event: BaseModel
    handled: asyncio.Future[None]  # resolves when the subscriber's handler returned


def _abandon(delivery: _Delivery, name: str) -> None:
    if not delivery.handled.done():
        delivery.handled.set_exception(RuntimeError(f"transport stopped before {name} handled the event"))
        delivery.handled.exception()  # retrieved: a publisher that left already must not log it


@dataclass(slots=True)
class _Subscription:
    name: str
    handler: Handler[Any]
    queue: asyncio.Queue[_Delivery]
    task: asyncio.Task[None] | None = None


class _QueuePublisher(Publisher[EventT]):
    def __init__(self, transport: InProcessTransport, channel: Channel[EventT]) -> None:
        self._transport = transport
        self._channel = channel

    async def put(self, event: EventT) -> None:
        await self._transport.publish(self._channel, event)


class InProcessTransport:
    def __init__(self, *, queue_size: int = 1000, drain_s: float = 5.0) -> None:
        self._queue_size = queue_size
        self._drain_s = drain_s
        self._subscriptions: dict[str, list[_Subscription]] = {}
        self._taps = Taps()
        self._running = False

    @property
    def driver(self) -> str:
        return "inprocess"

    def publisher(self, channel: Channel[EventT]) -> Publisher[EventT]:
        return _QueuePublisher(self, channel)

    def subscribe(
        self,
        channel: Channel[EventT],
        handler: Handler[EventT],
        *,
        group: str,
        partitions: PartitionListener | None = None,
    ) -> None:
        """``partitions`` is never called: this process is the only subscriber and owns everything."""
        subscriptions = self._subscriptions.setdefault(channel.topic, [])
        if any(s.name == f"{channel.topic}/{group}" for s in subscriptions):
            raise ValueError(f"group {group!r} already consumes {channel.topic}")
        queue: asyncio.Queue[_Delivery] = asyncio.Queue(maxsize=self._queue_size)
        subscriptions.append(_Subscription(f"{channel.topic}/{group}", handler, queue))

    def tap(self, channel: Channel[EventT], tap: Tap[EventT]) -> Callable[[], None]:
        return self._taps.add(channel, tap)

    def depths(self) -> dict[str, int]:
        return {s.name: s.queue.qsize() for subs in self._subscriptions.values() for s in subs}

    async def publish(self, channel: Channel[EventT], event: EventT) -> None:
        if not self._running:
            raise RuntimeError(f"transport stopped: {channel.topic} does not take events")
        loop = asyncio.get_running_loop()
        deliveries = []
        for subscription in self._subscriptions.get(channel.topic, ()):
            delivery = _Delivery(event, loop.create_future())
            await subscription.queue.put(delivery)
            deliveries.append(delivery)
        await self._taps.notify(channel.topic, event)
        for delivery in deliveries:
            # Shielded: a publisher that stops waiting leaves the event queued (at least once).
            await asyncio.shield(delivery.handled)

    async def start(self) -> None:
        if self._running:
            return
        self._running = True
        for subscriptions in self._subscriptions.values():
            for subscription in subscriptions:
                subscription.task = asyncio.create_task(
                    self._consume(subscription), name=f"gridwatch.transport:{subscription.name}"
                )

    async def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        subscriptions = [s for subs in self._subscriptions.values() for s in subs]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._drain_s):
                for subscription in subscriptions:
                    await subscription.queue.join()
        for subscription in subscriptions:
            left = subscription.queue.qsize()
            if left:
                log.warning("transport: %d event(s) of %s not handled at stop", left, subscription.name)
            if subscription.task is not None:
                subscription.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await subscription.task
                subscription.task = None
            while not subscription.queue.empty():
                _abandon(subscription.queue.get_nowait(), subscription.name)
                subscription.queue.task_done()

    async def _consume(self, subscription: _Subscription) -> None:
        while True:
            delivery = await subscription.queue.get()
            try:
                await self._handle(subscription, delivery.event)
                if not delivery.handled.done():
                    delivery.handled.set_result(None)
            finally:
                _abandon(delivery, subscription.name)  # cancelled mid-handler (stop): not handled
                subscription.queue.task_done()

    async def _handle(self, subscription: _Subscription, event: BaseModel) -> None:
        # At least once: a handler that fails (a database that dropped) gets the event again.
        while True:
            try:
                await subscription.handler(event)
                return
            except Exception:
                log.exception("%s: handler failed; retrying in %.0f s", subscription.name, RETRY_PAUSE_S)
                await asyncio.sleep(RETRY_PAUSE_S)
