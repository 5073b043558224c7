"""Small helpers of the notifier tests: polling with a deadline and reading a topic completely."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, TopicPartition

SENTINEL_KEY = b"__sentinel__"


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.02)


async def read_whole_topic(bootstrap: str, topic: str, timeout_s: float = 20.0) -> list[ConsumerRecord]:
    """Every record of every partition, without trusting end offsets (tansu's are unreliable).

    A sentinel is written to each partition first; reading from the beginning until each
    partition's sentinel shows up proves that everything written before it has been seen.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        for partition in partitions:
            await producer.send_and_wait(topic, value=b"", key=SENTINEL_KEY, partition=partition)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        waiting = set(partitions)
        deadline = time.monotonic() + timeout_s
        while waiting:
            if time.monotonic() > deadline:
                raise AssertionError(f"sentinels of partitions {sorted(waiting)} not read within {timeout_s}s")
            batches = await consumer.getmany(timeout_ms=200)
            for tp, batch in batches.items():
                for record in batch:
                    if record.key == SENTINEL_KEY:
                        waiting.discard(tp.partition)
                    else:
                        records.append(record)
    finally:
        await consumer.stop()
    return records
