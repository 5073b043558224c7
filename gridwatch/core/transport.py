"""The transport between stages: named channels of typed events, drivers behind one interface.

A stage never knows whether its output goes to the next stage in the same process (the in-process
driver: bounded asyncio queues, the embedded default) or over a Kafka topic to another process
(the Kafka driver). It is given a ``Publisher`` as its output port; the next stage is subscribed
to the same ``Channel`` with a consumer group. Drivers live in ``gridwatch.transport``.

Delivery is at least once: a handler that raises gets the event again (after a pause), so
handlers must be idempotent — every event carries its own id, and alert ids are deterministic.

A *tap* sees every event published on a channel in this process, after the driver took it:
tests and the console observe a port through a tap, never by patching a stage.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel

from gridwatch.core.events import Alert, Sighting, StrangerAttempt

log = logging.getLogger(__name__)


class Topic(enum.StrEnum):
    """Kafka topic names of DESIGN §1 (also the queue names of the in-process driver)."""

    SIGHTINGS = "gridwatch.sightings"
    STRANGER_ATTEMPTS = "gridwatch.stranger-attempts"
    ALERTS = "gridwatch.alerts"
    ACKS = "gridwatch.acks"
    ALERT_EVENTS = "gridwatch.alert-events"


EventT = TypeVar("EventT", bound=BaseModel)
EventT_contra = TypeVar("EventT_contra", bound=BaseModel, contravariant=True)

Handler = Callable[[EventT], Awaitable[None]]
Tap = Callable[[EventT], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Channel(Generic[EventT]):
    """A named stream of one event type; ``key`` picks the partition (the person id, or the source id)."""

    topic: str
    event_type: type[EventT]
    key: Callable[[EventT], str] = field(repr=False)
    event_id: Callable[[EventT], str] = field(repr=False)
    ce_type: str = ""  # the CloudEvents type on Kafka


SIGHTINGS: Channel[Sighting] = Channel(
    Topic.SIGHTINGS,
    Sighting,
    key=lambda s: s.person_id,
    event_id=lambda s: s.sighting_id,
    ce_type="gridwatch.sighting.v1",
)
# Keyed by source: a stranger rule counts the attempts of one gate, so one owner sees them all in order.
STRANGER_ATTEMPTS: Channel[StrangerAttempt] = Channel(
    Topic.STRANGER_ATTEMPTS,
    StrangerAttempt,
    key=lambda a: a.source,
    event_id=lambda a: a.attempt_id,
    ce_type="gridwatch.stranger-attempt.v1",
)
ALERTS: Channel[Alert] = Channel(
    Topic.ALERTS,
    Alert,
    key=lambda a: a.key,
    event_id=lambda a: a.alert_id,
    ce_type="gridwatch.alert.v1",
)


class Publisher(Protocol[EventT_contra]):
    """A stage's output port on one channel."""

    async def put(self, event: EventT_contra) -> None:
        """Returns once the driver has taken the event (queued, or acknowledged by the brokers)."""
        ...


class PartitionListener(Protocol):
    """Told which partitions of a channel this process owns (Kafka's group protocol decides).

    ``partition_of`` maps a key to its partition as the producers' partitioner does, so that rows
    tagged with a partition (rule state, timers) can be matched to what is owned.
    """

    async def assigned(self, partitions: frozenset[int], partition_of: Callable[[str], int]) -> None:
        """These partitions are now owned: load or arm their state. Called before their first event."""
        ...

    async def revoked(self, partitions: frozenset[int]) -> None:
        """These partitions are no longer owned: stop acting for them (returns once nothing does)."""
        ...


class Transport(Protocol):
    """Carries events between stages. ``subscribe`` and ``publisher`` are called before ``start``."""

    @property
    def driver(self) -> str:
        """``inprocess`` or ``kafka``."""
        ...

    def publisher(self, channel: Channel[EventT]) -> Publisher[EventT]: ...

    def subscribe(
        self,
        channel: Channel[EventT],
        handler: Handler[EventT],
        *,
        group: str,
        partitions: PartitionListener | None = None,
    ) -> None:
        """Every event of the channel reaches one subscriber of each group (one per process here).

        ``partitions``: told of the partitions this subscriber is assigned and loses (Kafka). The
        in-process driver has one subscriber that owns everything, and never calls it.
        """
        ...

    def tap(self, channel: Channel[EventT], tap: Tap[EventT]) -> Callable[[], None]:
        """Observe what this process publishes on a channel; returns the function that removes the tap."""
        ...

    def depths(self) -> dict[str, int]:
        """Events waiting per queue (in-process) or not yet consumed (Kafka, where known)."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Stop consuming and release connections; events already taken are handled first when possible."""
        ...


class Taps:
    """The taps of one transport, by topic; shared by the drivers."""

    def __init__(self) -> None:
        self._taps: dict[str, list[Tap[BaseModel]]] = {}

    def add(self, channel: Channel[EventT], tap: Tap[EventT]) -> Callable[[], None]:
        taps = self._taps.setdefault(channel.topic, [])
        taps.append(tap)  # type: ignore[arg-type]

        def remove() -> None:
            if tap in taps:
                taps.remove(tap)  # type: ignore[arg-type,unused-ignore]

        return remove

    async def notify(self, topic: str, event: BaseModel) -> None:
        for tap in list(self._taps.get(topic, ())):
            try:
                await tap(event)
            except Exception:
                # An observer must never break the data path it observes.
                log.exception("a tap on %s failed", topic)


class TappedPort(Generic[EventT]):
    """A direct port (one stage calling the next in this process) that taps can observe.

    Used where the hop must stay synchronous, e.g. rules → notifier: the alert is durable in the
    outbox when ``put`` returns, so the cooldown the rule took is never lost with a queued alert.
    """

    def __init__(self, topic: str, target: Publisher[EventT]) -> None:
        self._topic = topic
        self._target = target
        self._taps = Taps()

    def tap(self, channel: Channel[EventT], tap: Tap[EventT]) -> Callable[[], None]:
        return self._taps.add(channel, tap)

    async def put(self, event: EventT) -> None:
        await self._target.put(event)
        await self._taps.notify(self._topic, event)
