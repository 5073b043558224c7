"""Durability of alert delivery on a three-broker Apache Kafka cluster (replication 3, ``min.insync.replicas=2``).

The Notifier (durable outbox + Kafka sink, idempotent producer, ``acks=all``) runs against the
session's ``kafka_cluster``. One broker lost while alerts flow: none is lost. Two brokers lost: the
last one refuses the writes (not enough in-sync replicas), the alerts wait in the outbox, and all
arrive once the brokers are back. Every wait is bounded by a deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from gridwatch.core.config.notifier import KafkaSinkConfig, NotifierConfig, OutboxConfig
from gridwatch.core.events import Alert
from notifier.notifier import Notifier
from notifier.sinks import KafkaSink
from tests.notifier.conftest import AlertFactory
from tests.notifier.helpers import wait_until
from tests.support.db import sqlite_outbox
from tests.support.kafka import KafkaCluster, create_topic, read_topic

PARTITIONS = 3
REPLICATION = 3
MIN_ISR = 2
FLOW_ALERTS = 60
SETTLE_S = 90.0  # deadline for deliveries that wait for leader elections or returning brokers


@pytest.fixture
def cluster(kafka_cluster: KafkaCluster) -> Iterator[KafkaCluster]:
    """The session cluster; every broker a test stopped is started again afterwards."""
    try:
        yield kafka_cluster
    finally:
        stopped = [b.node_id for b in kafka_cluster.brokers if not b.running]
        if stopped:
            kafka_cluster.start_brokers(stopped)


async def _durable_topic(cluster: KafkaCluster, topic: str) -> None:
    await create_topic(
        cluster.bootstrap,
        topic,
        PARTITIONS,
        replication_factor=REPLICATION,
        configs={"min.insync.replicas": str(MIN_ISR)},
    )
    # Created is not yet described everywhere: wait until every partition has a leader and a full ISR.
    await _wait_for_full_isr(cluster.bootstrap, topic)


async def _partitions(bootstrap: str, topic: str, deadline_s: float = 30.0) -> list[dict[str, object]]:
    """The topic's partitions as the cluster describes them: leader, replicas, isr.

    Each call may ask another broker, and a broker that has not yet applied the topic's creation
    describes it without partitions: ask again until all are there.
    """
    deadline = time.monotonic() + deadline_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="gridwatch-tests-admin")
        await admin.start()
        try:
            [description] = await admin.describe_topics([topic])
        finally:
            await admin.close()
        partitions: list[dict[str, object]] = description["partitions"]
        if len(partitions) == PARTITIONS or time.monotonic() > deadline:
            return partitions
        await asyncio.sleep(0.2)


async def _wait_for_full_isr(bootstrap: str, topic: str, deadline_s: float = SETTLE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        partitions = await _partitions(bootstrap, topic)
        if len(partitions) == PARTITIONS and all(len(p["isr"]) == REPLICATION for p in partitions):  # type: ignore[arg-type]
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"ISR of {topic} not back to {REPLICATION} within {deadline_s} s: {partitions}")
        await asyncio.sleep(0.2)


def _config(cluster: KafkaCluster, topic: str) -> NotifierConfig:
    kafka = KafkaSinkConfig(enabled=True, bootstrap_servers=cluster.bootstrap, topic=topic, request_timeout_ms=2000)
    assert kafka.enable_idempotence
    return NotifierConfig(kafka=kafka, outbox=OutboxConfig(retry_initial_s=0.05, retry_max_s=0.5))


def _alert_ids(records: list[object]) -> Counter[str]:
    return Counter(Alert.model_validate_json(r.value).alert_id for r in records)  # type: ignore[attr-defined]


async def test_topic_is_replicated_three_times_with_min_isr_two(cluster: KafkaCluster, topic: str) -> None:
    await _durable_topic(cluster, topic)
    partitions = await _partitions(cluster.bootstrap, topic)
    assert len(partitions) == PARTITIONS
    for partition in partitions:
        assert sorted(partition["replicas"]) == [1, 2, 3]  # type: ignore[type-var]
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    configs = {entry[0]: entry[1] for resource in response.resources for entry in resource[4]}
    assert configs["min.insync.replicas"] == str(MIN_ISR)


async def test_one_broker_lost_while_alerts_flow_loses_nothing(
    cluster: KafkaCluster, topic: str, make_alert: AlertFactory, tmp_path: Path
) -> None:
    await _durable_topic(cluster, topic)
    # The broker that leads partition 0: its loss forces a leader election under load.
    [victim] = [p["leader"] for p in await _partitions(cluster.bootstrap, topic) if p["partition"] == 0]
    assert isinstance(victim, int)
    alerts = [make_alert(f"p-{n:04d}") for n in range(FLOW_ALERTS)]
    config = _config(cluster, topic)
    with sqlite_outbox(tmp_path / "outbox.sqlite3") as outbox:
        async with Notifier(config, outbox, [KafkaSink(config.kafka)], None) as notifier:
            for n, alert in enumerate(alerts):
                assert await notifier.submit(alert)
                if n == FLOW_ALERTS // 3:
                    await wait_until(lambda: outbox.count_pending("kafka") < FLOW_ALERTS // 3, what="alerts flowing")
                    cluster.stop_broker(victim, kill=True)  # a crash, in the middle of the flow
                await asyncio.sleep(0.02)  # alerts arrive over time, not in one burst
            await wait_until(lambda: outbox.count_pending("kafka") == 0, SETTLE_S, what="every alert delivered")
            assert cluster.running_ids == [b for b in (1, 2, 3) if b != victim]
    records = await read_topic(cluster.bootstrap, topic)
    counts = _alert_ids(records)
    assert set(counts) == {a.alert_id for a in alerts}, "alerts lost"
    # The idempotent producer retried across the leader election without writing anything twice.
    assert max(counts.values()) == 1, {k: v for k, v in counts.items() if v > 1}
    # Keyed by person id: each person's alerts stay on one partition.
    assert len({(r.key, r.partition) for r in records}) == len({r.key for r in records})


async def test_two_brokers_lost_alerts_wait_in_the_outbox_until_they_return(
    cluster: KafkaCluster, topic: str, make_alert: AlertFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await _durable_topic(cluster, topic)
    before = [make_alert() for _ in range(5)]
    during = [make_alert() for _ in range(10)]
    config = _config(cluster, topic)
    with sqlite_outbox(tmp_path / "outbox.sqlite3") as outbox:
        async with Notifier(config, outbox, [KafkaSink(config.kafka)], None) as notifier:
            for alert in before:
                assert await notifier.submit(alert)
            await wait_until(lambda: outbox.count_pending("kafka") == 0, SETTLE_S, what="deliveries before the outage")

            cluster.stop_broker(2)
            cluster.stop_broker(3)
            with caplog.at_level(logging.WARNING, logger="aiokafka.producer.sender"):
                for alert in during:
                    assert await notifier.submit(alert)
                # Every partition now has one in-sync replica, fewer than min.insync.replicas: acks=all
                # writes are refused, and every alert stays pending through repeated failed attempts.
                await wait_until(
                    lambda: any(p.attempts >= 3 for p in outbox.pending("kafka")), SETTLE_S, what="failed attempts"
                )
                pending = outbox.pending("kafka", limit=1000)
                assert {p.alert_id for p in pending} == {a.alert_id for a in during}
                assert all(p.last_error for p in pending if p.attempts)
            refusals = [r for r in caplog.records if "NotEnoughReplicas" in r.getMessage()]
            assert refusals, "the broker did not refuse the writes for lack of in-sync replicas"
            cluster.start_brokers([2, 3])
            await wait_until(lambda: outbox.count_pending("kafka") == 0, SETTLE_S, what="delivery after the return")
    await _wait_for_full_isr(cluster.bootstrap, topic)
    counts = _alert_ids(await read_topic(cluster.bootstrap, topic))
    # At least once (consumers deduplicate by alert id / ce_id): every alert is there.
    assert set(counts) == {a.alert_id for a in before + during}
