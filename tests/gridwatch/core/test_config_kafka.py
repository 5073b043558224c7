"""Topic declarations (`service.transport.kafka.topics`): bounded, a segment within the retention, errors placed."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridwatch.core.config.kafka import DAY_MS, HOUR_MS, KafkaTopicsConfig
from gridwatch.core.config.loader import ConfigError, load_config
from gridwatch.core.config.transport import KafkaTransportConfig


def test_unset_counts_come_from_the_transport_and_the_retention_is_managed() -> None:
    kafka = KafkaTransportConfig(
        partitions=4,
        replication_factor=3,
        topics=KafkaTopicsConfig.model_validate(
            {"acks": {"partitions": 1, "retention_ms": 2 * HOUR_MS, "segment_ms": HOUR_MS}}
        ),
    )
    acks = kafka.declaration("acks")
    assert (acks.partitions, acks.replication_factor) == (1, 3)
    assert acks.configs == {"cleanup.policy": "delete", "retention.ms": str(2 * HOUR_MS), "segment.ms": str(HOUR_MS)}
    alerts = kafka.declaration("alerts")
    assert (alerts.partitions, alerts.configs["retention.ms"]) == (4, str(7 * DAY_MS))


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("{retention_ms: 3600000, segment_ms: 7200000}", "is longer than retention_ms"),
        ("{retention_ms: -1, segment_ms: 3600000}", "greater than or equal to 3600000"),
        ("{retention_ms: 86400000, segment_ms: 3600000, replication: 3}", "Extra inputs are not permitted"),
    ],
)
def test_a_bad_topic_declaration_is_refused_with_its_place(tmp_path: Path, topic: str, reason: str) -> None:
    config = tmp_path / "gridwatch.yaml"
    config.write_text(f"service:\n  transport:\n    kafka:\n      topics:\n        acks: {topic}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    message = str(caught.value)
    assert reason in message
    assert f"{config}:5" in message
    assert "service.transport.kafka.topics.acks" in message
