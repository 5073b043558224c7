"""Kafka transport: each channel is a topic keyed as the channel says (person id; gate id for stranger
attempts); each consumer group a Kafka group.

Records are the event JSON in the CloudEvents Kafka binary binding (``ce_*`` headers), like the
alert sink's. The producer waits for all in-sync replicas and is idempotent by default. Consumers
commit an offset only after the handler returned, so an event is handled at least once; the
handlers are idempotent (deterministic ids). A person's partition has one owner at a time, which
serialises that person's rule state without locks of our own. A subscriber given a
``PartitionListener`` is told which partitions it owns (Kafka's rebalance callbacks), so state
tagged with a partition moves with it.

A broker that is down is waited for: ``put`` retries until the record is acknowledged (upstream,
cameras drop frames meanwhile; gates keep their own bounded intake), consumers reconnect with a
capped backoff. Nothing is dropped on the way; a record that is not a valid event is skipped with
a warning (it can never become valid), and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.partitioner import murmur2
from pydantic import BaseModel, ValidationError

from gridwatch.core.config.kafka import DEFAULT_TOPIC_NAMES
from gridwatch.core.config.transport import KafkaTransportConfig
from gridwatch.core.kafka_records import close_producer, cloudevent_headers
from gridwatch.core.metrics import CONSUMER_LAG
from gridwatch.core.redact import redact_text
from gridwatch.core.transport import Channel, EventT, Handler, PartitionListener, Publisher, Tap, Taps

log = logging.getLogger(__name__)

BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 30.0
STOP_GRACE_S = 5.0


def _backoff(attempt: int) -> float:
    delay: float = min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2**attempt) * random.uniform(0.8, 1.2)
    return delay


def _new_topic(cfg: KafkaTransportConfig, name: str) -> NewTopic:
    """A topic as declared in ``cfg.topics`` (partitions, replication, retention), as `kafka init` makes it."""
    role = DEFAULT_TOPIC_NAMES.get(name)
    if role is None:
        return NewTopic(name, num_partitions=cfg.partitions, replication_factor=cfg.replication_factor)
    declared = cfg.declaration(role)
    return NewTopic(
        name,
        num_partitions=declared.partitions,
        replication_factor=declared.replication_factor,
        topic_configs=declared.configs,
    )


def partition_for(key: str, count: int) -> int:
    """The partition the producer's default partitioner picks for ``key`` (murmur2, as Java clients do)."""
    hashed: int = murmur2(key.encode("utf-8"))
    return (hashed & 0x7FFFFFFF) % count


@dataclass(slots=True)
class _Subscription:
    channel: Channel[Any]
    handler: Handler[Any]
    group: str
    listener: PartitionListener | None = None
    owned: frozenset[int] = frozenset()
    consumer: AIOKafkaConsumer | None = None
    task: asyncio.Task[None] | None = None
    skipped: int = 0
    lag: dict[TopicPartition, int] = field(default_factory=dict)


class _KafkaPublisher(Publisher[EventT]):
    def __init__(self, transport: KafkaTransport, channel: Channel[EventT]) -> None:
        self._transport = transport
        self._channel = channel

    async def put(self, event: EventT) -> None:
        await self._transport.publish(self._channel, event)


class KafkaTransport:
    def __init__(self, config: KafkaTransportConfig, *, service_name: str = "gridwatch") -> None:
        self._config = config
        self._service_name = service_name
        self._subscriptions: list[_Subscription] = []
        self._topics: set[str] = set()
        self._taps = Taps()
        self._producer: AIOKafkaProducer | None = None
        self._connect_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._running = False

    def __repr__(self) -> str:  # never shows the SASL settings
        return f"KafkaTransport(bootstrap={redact_text(self._config.bootstrap_servers)!r})"

    @property
    def driver(self) -> str:
        return "kafka"

    def publisher(self, channel: Channel[EventT]) -> Publisher[EventT]:
        self._topics.add(channel.topic)
        return _KafkaPublisher(self, channel)

    def subscribe(
        self,
        channel: Channel[EventT],
        handler: Handler[EventT],
        *,
        group: str,
        partitions: PartitionListener | None = None,
    ) -> None:
        if any(s.channel.topic == channel.topic and s.group == group for s in self._subscriptions):
            raise ValueError(f"group {group!r} already consumes {channel.topic}")
        self._topics.add(channel.topic)
        self._subscriptions.append(_Subscription(channel, handler, group, partitions))

    def tap(self, channel: Channel[EventT], tap: Tap[EventT]) -> Callable[[], None]:
        return self._taps.add(channel, tap)

    def depths(self) -> dict[str, int]:
        """Consumer lag per subscription, as of the last batch (no I/O)."""
        return {f"{sub.channel.topic}/{sub.group}": sum(sub.lag.values()) for sub in self._subscriptions}

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._running:
            return
        self._running = True
        self._stopping.clear()
        if self._config.create_topics:
            await self._create_topics()
        for sub in self._subscriptions:
            sub.task = asyncio.create_task(self._consume(sub), name=f"gridwatch.transport:{sub.channel.topic}")

    async def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        self._stopping.set()
        tasks = [sub.task for sub in self._subscriptions if sub.task is not None]
        if tasks:
            # Consumers finish the event in hand and commit it; a stuck handler is cancelled (the
            # uncommitted event is handled again by the next owner of its partition).
            _done, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for sub in self._subscriptions:
            sub.task = None
        async with self._connect_lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            # A publish still waiting for an unreachable broker raises here, and its caller keeps the event.
            timeout_s = self._config.request_timeout_ms / 1000
            await close_producer(producer, timeout_s=timeout_s, owner="kafka transport")

    # -- producing ---------------------------------------------------------------------------------

    async def publish(self, channel: Channel[EventT], event: EventT) -> None:
        if not self._running:
            raise RuntimeError(f"transport stopped: {channel.topic} does not take events")
        value = event.model_dump_json(by_alias=True).encode("utf-8")
        key = channel.key(event).encode("utf-8")
        headers = self._headers(channel, event)
        attempt = 0
        while True:
            try:
                producer = await self._ensure_producer()
                await producer.send_and_wait(channel.topic, value=value, key=key, headers=headers)
                break
            except (KafkaError, OSError) as exc:
                if not self._running:
                    raise RuntimeError(f"transport stopped before {channel.topic} took the event") from exc
                delay = _backoff(attempt)
                attempt += 1
                log.warning(
                    "transport: cannot publish to %s (%s: %s); retrying in %.1f s",
                    channel.topic,
                    type(exc).__name__,
                    redact_text(str(exc)),
                    delay,
                )
                await asyncio.sleep(delay)
        await self._taps.notify(channel.topic, event)

    def _headers(self, channel: Channel[Any], event: BaseModel) -> list[tuple[str, bytes]]:
        return cloudevent_headers(
            event_id=channel.event_id(event),
            source=f"gridwatch/{self._service_name}",
            ce_type=channel.ce_type,
            subject=channel.key(event),
            time=dt.datetime.now(dt.UTC),
        )

    async def _ensure_producer(self) -> AIOKafkaProducer:
        async with self._connect_lock:
            if self._producer is not None:
                return self._producer
            cfg = self._config
            producer = AIOKafkaProducer(
                **cfg.security_kwargs(),
                bootstrap_servers=cfg.bootstrap_servers,
                client_id=cfg.client_id,
                acks="all",
                enable_idempotence=cfg.enable_idempotence,
                request_timeout_ms=cfg.request_timeout_ms,
            )
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
            return producer

    async def _create_topics(self) -> None:
        cfg = self._config
        admin = AIOKafkaAdminClient(
            **cfg.security_kwargs(),
            bootstrap_servers=cfg.bootstrap_servers,
            client_id=cfg.client_id,
            request_timeout_ms=cfg.request_timeout_ms,
        )
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = sorted(self._topics - existing)
            if missing:
                await admin.create_topics([_new_topic(cfg, t) for t in missing])
                log.info("transport: created topic(s) %s", ", ".join(missing))
        except (KafkaError, OSError) as exc:
            # Not fatal: an operator may have created them, or the broker is still coming up.
            log.warning("transport: could not check or create topics: %s", redact_text(str(exc)))
        finally:
            await admin.close()

    # -- consuming ---------------------------------------------------------------------------------

    async def _consume(self, sub: _Subscription) -> None:
        attempt = 0
        while not self._stopping.is_set():
            cfg = self._config
            consumer = AIOKafkaConsumer(
                **cfg.security_kwargs(),
                bootstrap_servers=cfg.bootstrap_servers,
                client_id=cfg.client_id,
                group_id=f"{cfg.group_prefix}.{sub.group}",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
            )
            try:
                await consumer.start()
                consumer.subscribe([sub.channel.topic], listener=_Rebalance(sub, consumer))
                sub.consumer = consumer
                attempt = 0
                await self._consume_batches(sub, consumer)
            except (KafkaError, OSError) as exc:
                delay = _backoff(attempt)
                attempt += 1
                log.warning(
                    "transport: consumer of %s failed (%s: %s); reconnecting in %.1f s",
                    sub.channel.topic,
                    type(exc).__name__,
                    redact_text(str(exc)),
                    delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
            finally:
                sub.consumer = None
                try:
                    # Leaving the group: what this member owned is no longer its own (another member, or
                    # this one after it rejoins, is assigned it again).
                    await _give_up(sub, sub.owned)
                finally:
                    await consumer.stop()

    async def _consume_batches(self, sub: _Subscription, consumer: AIOKafkaConsumer) -> None:
        while not self._stopping.is_set():
            batch = await consumer.getmany(timeout_ms=500, max_records=200)
            for tp, records in batch.items():
                for record in records:
                    event = self._decode(sub, record.value)
                    if event is not None:
                        await self._handle(sub, event)
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    sub.lag[tp] = max(0, highwater - records[-1].offset - 1)
                    CONSUMER_LAG.labels(sub.channel.topic, sub.group, str(tp.partition)).set(sub.lag[tp])
                try:
                    await consumer.commit({tp: records[-1].offset + 1})
                except CommitFailedError as exc:
                    # The partition moved to another member meanwhile: it handles these again.
                    log.warning("transport: commit on %s failed (%s); events will be replayed", tp, exc)

    def _decode(self, sub: _Subscription, value: bytes | None) -> BaseModel | None:
        try:
            if value is None:
                raise ValueError("empty record")
            event: BaseModel = sub.channel.event_type.model_validate_json(value)
            return event
        except (ValidationError, ValueError) as exc:
            sub.skipped += 1
            # The error names fields and reasons only; the record itself is not logged.
            reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            log.warning("transport: skipped a record of %s that is not a valid event: %s", sub.channel.topic, reason)
            return None

    async def _handle(self, sub: _Subscription, event: BaseModel) -> None:
        attempt = 0
        while True:
            try:
                await sub.handler(event)
                return
            except Exception:
                delay = _backoff(attempt)
                attempt += 1
                log.exception("transport: handler of %s failed; retrying in %.1f s", sub.channel.topic, delay)
                await asyncio.sleep(delay)


async def _give_up(sub: _Subscription, partitions: frozenset[int]) -> None:
    if not partitions:
        return
    sub.owned = sub.owned - partitions
    for partition in partitions:
        sub.lag.pop(TopicPartition(sub.channel.topic, partition), None)
        with contextlib.suppress(KeyError):  # a partition given up before its first batch has no series
            CONSUMER_LAG.remove(sub.channel.topic, sub.group, str(partition))
    if sub.listener is not None:
        await sub.listener.revoked(partitions)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Kafka's group protocol tells a member what it owns; the subscription's listener follows it.

    aiokafka awaits these callbacks inside the rebalance: a revoked partition's work has stopped
    before any other member is assigned it.
    """

    def __init__(self, sub: _Subscription, consumer: AIOKafkaConsumer) -> None:
        self._sub = sub
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await _give_up(self._sub, frozenset(tp.partition for tp in revoked if tp.topic == self._sub.channel.topic))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        sub = self._sub
        partitions = frozenset(tp.partition for tp in assigned if tp.topic == sub.channel.topic)
        sub.owned = sub.owned | partitions
        log.info("transport: %s/%s owns partition(s) %s", sub.channel.topic, sub.group, sorted(sub.owned) or "-")
        if sub.listener is None or not partitions:
            return
        known = self._consumer.partitions_for_topic(sub.channel.topic) or set()
        count = max(len(known), max(partitions) + 1)
        await sub.listener.assigned(partitions, lambda key: partition_for(key, count))
