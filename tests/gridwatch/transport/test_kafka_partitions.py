"""The Kafka driver's ``partition_for`` is the partition its producer really picks for a key (Apache Kafka):
rule state tagged with it is found by the member that consumes that person's sightings."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from gridwatch.core.config.transport import KafkaTransportConfig
from gridwatch.core.events import Quality, Sighting, SourceKind
from gridwatch.core.transport import Channel
from gridwatch.transport.kafka import KafkaTransport, partition_for
from tests.support.kafka import create_topic, unique_topic

PARTITIONS = 7
PERSONS = [f"p_{i:04x}" for i in range(40)]


def sighting(person_id: str) -> Sighting:
    now = dt.datetime.now(dt.UTC)
    return Sighting(
        source="gate-1",
        source_kind=SourceKind.GATE,
        captured_at=now,
        received_at=now,
        person_id=person_id,
        registry="watch",
        similarity=0.7,
        threshold=0.45,
        model="test@0",
        quality=Quality(det_score=0.9, face_px=120),
    )


@pytest.mark.e2e
async def test_partition_for_is_where_the_producer_puts_a_key(kafka: Any) -> None:
    topic = unique_topic("partition-for", prefix="gridwatch.sightings")
    await create_topic(kafka.bootstrap, topic, partitions=PARTITIONS)
    channel = Channel(topic, Sighting, key=lambda s: s.person_id, event_id=lambda s: s.sighting_id)
    transport = KafkaTransport(KafkaTransportConfig(bootstrap_servers=kafka.bootstrap, create_topics=False))
    publisher = transport.publisher(channel)
    await transport.start()
    try:
        for person in PERSONS:
            await publisher.put(sighting(person))
    finally:
        await transport.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        placed: dict[str, int] = {}
        while len(placed) < len(PERSONS):
            for tp, records in (await consumer.getmany(timeout_ms=5000)).items():
                for record in records:
                    assert record.key is not None
                    placed[record.key.decode()] = tp.partition
    finally:
        await consumer.stop()
    assert placed == {person: partition_for(person, PARTITIONS) for person in PERSONS}
    assert len(set(placed.values())) > 1  # the keys spread over partitions
