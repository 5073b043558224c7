"""`gridwatch kafka init`: topics created as declared, idempotent, drift checked and fixed, on Apache Kafka.

The session broker is shared, so these configs use the notifier's topics, whose names a config can
choose (unique per test); the transport's fixed names (``gridwatch.sightings``...) are planned the
same way (``test_plan_*``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from gridwatch.cli import main
from gridwatch.core.config.kafka import DAY_MS, HOUR_MS
from gridwatch.core.config.loader import load_config
from gridwatch.kafka_cli import EXIT_DRIFT, EXIT_UNREACHABLE, plan_topics
from tests.support.kafka import KafkaBroker, create_topic, free_port

ALERTS_RETENTION_MS = 2 * HOUR_MS
# How long a config change may take to show in the cluster's description (it takes about a second).
SETTLE_S = 30.0


def write_site(directory: Path, bootstrap: str, prefix: str, *, transport: str = "inprocess") -> Path:
    """A config whose notifier uses four topics named ``<prefix>.<role>``; alerts get their own declaration."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "gridwatch.yaml").write_text(
        f"""service:
  data_dir: {directory / "data"}
  transport:
    driver: {transport}
    kafka:
      bootstrap_servers: {bootstrap}
      partitions: 2
      topics:
        alerts: {{partitions: 3, retention_ms: {ALERTS_RETENTION_MS}, segment_ms: {HOUR_MS}}}
notifier:
  console: {{enabled: false}}
  kafka:
    enabled: true
    bootstrap_servers: {bootstrap}
    topic: {prefix}.alerts
  acks:
    consume: true
    topic: {prefix}.acks
  alert_events:
    enabled: true
    topic: {prefix}.alert-events
channels:
  - id: push
    type: kafka
    topic: {prefix}.notifications
""",
        encoding="utf-8",
    )
    return directory


@pytest.fixture
def prefix() -> str:
    return f"kafka-init.{uuid.uuid4().hex[:8]}"


@pytest.fixture
def site(tmp_path: Path, kafka: KafkaBroker, prefix: str) -> Path:
    return write_site(tmp_path / "site", kafka.bootstrap, prefix)


async def _describe(bootstrap: str, topics: list[str]) -> dict[str, tuple[int, int, dict[str, str]]]:
    """Per topic: partitions, replication factor, and its configs (all of them, defaults included)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="gridwatch-tests-admin")
    await admin.start()
    try:
        described = {t["topic"]: t["partitions"] for t in await admin.describe_topics(topics)}
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
    finally:
        await admin.close()
    configs = {
        r["resource_name"]: {e["config_names"]: e["config_value"] for e in r["config_entries"]}
        for response in responses
        for r in response.to_object()["resources"]
    }
    return {t: (len(described[t]), len(described[t][0]["replicas"]), configs[t]) for t in topics}


async def _alter(bootstrap: str, topic: str, configs: dict[str, str]) -> None:
    """Sets the topic's overrides by hand, and waits until the cluster describes them (that takes a moment)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="gridwatch-tests-admin")
    await admin.start()
    try:
        [response] = await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs)])
        assert all(r["error_code"] == 0 for r in response.to_object()["resources"])
    finally:
        await admin.close()
    deadline = time.monotonic() + SETTLE_S
    while not configs.items() <= (await _describe(bootstrap, [topic]))[topic][2].items():
        assert time.monotonic() < deadline, f"{topic}: {configs} not described within {SETTLE_S} s"
        await asyncio.sleep(0.2)


def _topics(prefix: str) -> list[str]:
    return [f"{prefix}.{role}" for role in ("alerts", "acks", "alert-events", "notifications")]


def test_init_creates_the_declared_topics_and_a_second_run_changes_nothing(
    site: Path, kafka: KafkaBroker, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kafka", "init", "-c", str(site)]) == 0
    out = capsys.readouterr().out
    assert out.count(": created (") == 4, out
    assert "4 topic(s): 4 created, 0 altered, 0 not as declared" in out

    described = asyncio.run(_describe(kafka.bootstrap, _topics(prefix)))
    partitions, replication, configs = described[f"{prefix}.alerts"]
    assert (partitions, replication) == (3, 1)
    assert configs["retention.ms"] == str(ALERTS_RETENTION_MS)
    assert configs["segment.ms"] == str(HOUR_MS)
    assert configs["cleanup.policy"] == "delete"
    for topic in _topics(prefix)[1:]:
        partitions, replication, configs = described[topic]
        assert (partitions, replication) == (2, 1), topic  # service.transport.kafka.partitions
        assert configs["retention.ms"] == str(DAY_MS if "alert-events" not in topic else 7 * DAY_MS), topic
        assert configs["segment.ms"] == str(HOUR_MS if "alert-events" not in topic else 6 * HOUR_MS), topic

    assert main(["kafka", "init", "-c", str(site)]) == 0
    again = capsys.readouterr().out
    assert "4 topic(s): 0 created, 0 altered, 0 not as declared" in again
    assert [line.strip() for line in again.splitlines() if line.startswith("  ")] == [
        f"{topic}: ok"
        for topic in (f"{prefix}.alerts", f"{prefix}.acks", f"{prefix}.alert-events", f"{prefix}.notifications")
    ]
    assert asyncio.run(_describe(kafka.bootstrap, _topics(prefix))) == described
    assert main(["kafka", "init", "-c", str(site), "--check"]) == 0


def test_retention_drift_is_reported_by_check_and_fixed_by_init(
    site: Path, kafka: KafkaBroker, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kafka", "init", "-c", str(site)]) == 0
    acks = f"{prefix}.acks"
    # Someone raised the retention by hand; the topic also has an override of its own, which must survive.
    drifted = {
        "retention.ms": str(30 * DAY_MS),
        "segment.ms": str(HOUR_MS),
        "cleanup.policy": "delete",
        "max.message.bytes": "200000",
    }
    asyncio.run(_alter(kafka.bootstrap, acks, drifted))
    capsys.readouterr()

    assert main(["kafka", "init", "-c", str(site), "--check"]) == EXIT_DRIFT
    out = capsys.readouterr().out
    assert f"{acks}: retention.ms {30 * DAY_MS} -> {DAY_MS} (not changed)" in out
    assert "1 not as declared (--check: nothing changed)" in out
    assert asyncio.run(_describe(kafka.bootstrap, [acks]))[acks][2]["retention.ms"] == str(30 * DAY_MS)

    assert main(["kafka", "init", "-c", str(site)]) == 0
    out = capsys.readouterr().out
    assert f"{acks}: altered retention.ms {30 * DAY_MS} -> {DAY_MS}" in out
    assert "0 created, 1 altered, 0 not as declared" in out
    configs = asyncio.run(_describe(kafka.bootstrap, [acks]))[acks][2]
    assert configs["retention.ms"] == str(DAY_MS)
    assert configs["segment.ms"] == str(HOUR_MS)
    assert configs["max.message.bytes"] == "200000"
    assert main(["kafka", "init", "-c", str(site), "--check"]) == 0


def test_fewer_declared_partitions_than_exist_is_reported_not_hidden(
    site: Path, kafka: KafkaBroker, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    notifications = f"{prefix}.notifications"
    declared = {"cleanup.policy": "delete", "retention.ms": str(DAY_MS), "segment.ms": str(HOUR_MS)}
    asyncio.run(create_topic(kafka.bootstrap, notifications, partitions=4, configs=declared))

    assert main(["kafka", "init", "-c", str(site)]) == EXIT_DRIFT
    out = capsys.readouterr().out
    assert f"{notifications}: partitions: 4 exist, 2 declared: Kafka cannot remove partitions" in out
    assert "3 created, 0 altered, 1 not as declared" in out
    assert asyncio.run(_describe(kafka.bootstrap, [notifications]))[notifications][0] == 4
    assert main(["kafka", "init", "-c", str(site), "--check"]) == EXIT_DRIFT


def test_a_replication_factor_the_cluster_cannot_give_is_reported(
    tmp_path: Path, kafka: KafkaBroker, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    site = write_site(tmp_path / "site", kafka.bootstrap, prefix)
    config = site / "gridwatch.yaml"
    config.write_text(
        config.read_text().replace("      partitions: 2\n", "      partitions: 2\n      replication_factor: 2\n")
    )
    acks = f"{prefix}.acks"
    declared = {"cleanup.policy": "delete", "retention.ms": str(DAY_MS), "segment.ms": str(HOUR_MS)}
    asyncio.run(create_topic(kafka.bootstrap, acks, partitions=2, configs=declared))

    assert main(["kafka", "init", "-c", str(site)]) == EXIT_DRIFT
    out = capsys.readouterr().out
    # One broker: the existing topic has one replica, and no new topic can have two.
    assert f"{acks}: replication: 1, 2 declared: not changed" in out
    assert out.count(": missing: create failed: ") == 3, out
    assert "0 created, 0 altered, 4 not as declared" in out


def test_missing_topics_fail_the_check_and_nothing_is_created(
    site: Path, kafka: KafkaBroker, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kafka", "init", "-c", str(site), "--check"]) == EXIT_DRIFT
    out = capsys.readouterr().out
    assert out.count(": missing") == 4, out

    async def existing() -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()

    assert not set(_topics(prefix)) & asyncio.run(existing())


def test_an_unreachable_cluster_is_one_line_and_its_own_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = write_site(tmp_path / "site", f"127.0.0.1:{free_port()}", "nowhere")
    assert main(["kafka", "init", "-c", str(site)]) == EXIT_UNREACHABLE
    err = capsys.readouterr().err
    assert "unreachable" in err
    assert len(err.strip().splitlines()) == 1


def test_plan_puts_the_transport_topics_and_the_notifier_topics_of_one_cluster_together(tmp_path: Path) -> None:
    loaded = load_config(write_site(tmp_path / "site", "broker:9092", "site", transport="kafka"))
    [cluster] = plan_topics(loaded.config)
    assert list(cluster.topics) == [
        "gridwatch.sightings",
        "gridwatch.stranger-attempts",
        "gridwatch.alerts",
        "site.alerts",
        "site.acks",
        "site.alert-events",
        "site.notifications",
    ]
    sightings = cluster.topics["gridwatch.sightings"].declared
    assert (sightings.partitions, sightings.configs["retention.ms"]) == (2, str(DAY_MS))
    assert cluster.topics["site.alerts"].declared.partitions == 3


def test_plan_of_a_config_without_kafka_is_empty(tmp_path: Path) -> None:
    (tmp_path / "gridwatch.yaml").write_text(f"service:\n  data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    assert plan_topics(load_config(tmp_path).config) == []
