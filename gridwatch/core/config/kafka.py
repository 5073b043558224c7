"""How to reach a Kafka cluster (shared by the Kafka alert sink and the Kafka stage transport), and how
gridwatch's topics are declared: partitions, replication and retention (`gridwatch kafka init` applies them)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from pydantic import Field, model_validator

from gridwatch.core.config.base import StrictModel


class KafkaConnectionConfig(StrictModel):
    bootstrap_servers: str = Field(
        default="127.0.0.1:9092", min_length=3, max_length=2000, description="host:port[,host:port...]"
    )
    client_id: str = Field(default="gridwatch", min_length=1, max_length=100, description="Kafka client id.")
    enable_idempotence: bool = Field(
        default=True, description="Idempotent producer (turn off only for brokers that lack it)."
    )
    request_timeout_ms: int = Field(default=10000, ge=1000, le=300000, description="Producer request timeout.")
    security_protocol: str = Field(
        default="PLAINTEXT",
        pattern=r"^(PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL)$",
        description="Kafka protocol.",
    )
    sasl_mechanism: str | None = Field(
        default=None, pattern=r"^(PLAIN|SCRAM-SHA-256|SCRAM-SHA-512)$", description="SASL mechanism."
    )
    sasl_username: str | None = Field(default=None, max_length=256, description="Use ${ENV}.")
    sasl_password: str | None = Field(default=None, max_length=256, description="Use ${ENV}.", repr=False)

    def missing_sasl_credentials(self) -> list[str]:
        """The credential keys a SASL protocol needs and the config lacks."""
        if not self.security_protocol.startswith("SASL_"):
            return []
        return [key for key in ("sasl_username", "sasl_password") if getattr(self, key) is None]

    def security_kwargs(self) -> dict[str, Any]:
        """The aiokafka connection-security keyword arguments of these settings."""
        kwargs: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.security_protocol in ("SSL", "SASL_SSL"):
            kwargs["ssl_context"] = ssl.create_default_context()
        if self.sasl_mechanism is not None:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
        if self.sasl_username is not None:
            kwargs["sasl_plain_username"] = self.sasl_username
        if self.sasl_password is not None:
            kwargs["sasl_plain_password"] = self.sasl_password
        return kwargs


HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
# Personal data on a topic needs a time limit: no "-1" (forever), no retention past a year.
MIN_RETENTION_MS = HOUR_MS
MAX_RETENTION_MS = 365 * DAY_MS
MIN_SEGMENT_MS = 10 * 60_000
MAX_SEGMENT_MS = 7 * DAY_MS


class KafkaTopicConfig(StrictModel):
    """One topic's declaration: what `gridwatch kafka init` creates, checks and keeps.

    Kafka erases a segment once its newest record is older than ``retention_ms``, and a segment is closed
    after ``segment_ms``: a record may live up to ``retention_ms + segment_ms`` (plus the broker's
    retention check interval), so a short segment keeps the erasure close to the declared retention.
    """

    partitions: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="Partition count; unset: service.transport.kafka.partitions. Kafka can add partitions, "
        "never remove them, and adding some moves keys (persons) to other partitions.",
    )
    replication_factor: int | None = Field(
        default=None,
        ge=1,
        le=10,
        description="Replicas of each partition; unset: service.transport.kafka.replication_factor.",
    )
    retention_ms: int = Field(
        ge=MIN_RETENTION_MS,
        le=MAX_RETENTION_MS,
        description="retention.ms: records older than this are erased by the broker (1 h to 365 days; "
        "never unlimited: the records are personal data).",
    )
    segment_ms: int = Field(
        ge=MIN_SEGMENT_MS,
        le=MAX_SEGMENT_MS,
        description="segment.ms: a segment is rolled after this long, so that it can be erased; at most retention_ms.",
    )

    @model_validator(mode="after")
    def _segment_within_retention(self) -> KafkaTopicConfig:
        if self.segment_ms > self.retention_ms:
            raise ValueError(
                f"segment_ms ({self.segment_ms}) is longer than retention_ms ({self.retention_ms}): records would "
                "outlive their retention by up to a segment"
            )
        return self


def _topic(retention_ms: int, segment_ms: int) -> Any:
    return Field(
        default_factory=lambda: KafkaTopicConfig(retention_ms=retention_ms, segment_ms=segment_ms),
        description=f"Declaration (default: retention {retention_ms // HOUR_MS} h, segments of "
        f"{segment_ms // HOUR_MS} h).",
    )


class KafkaTopicsConfig(StrictModel):
    """The declarations of gridwatch's topics (DESIGN §1), by role; the names come from the rest of the config.

    The defaults follow the retention policy (README "Retention"): a topic is a buffer between processes,
    not a store. Sightings, stranger attempts, notifications and acknowledgements are kept a day (a worker
    or push gateway down overnight catches up); alerts and case transitions a week (a downstream system
    down over a long weekend catches up). The records of alerts and cases stay in the database.
    """

    sightings: KafkaTopicConfig = _topic(DAY_MS, HOUR_MS)
    stranger_attempts: KafkaTopicConfig = _topic(DAY_MS, HOUR_MS)
    alerts: KafkaTopicConfig = _topic(7 * DAY_MS, 6 * HOUR_MS)
    alert_events: KafkaTopicConfig = _topic(7 * DAY_MS, 6 * HOUR_MS)
    notifications: KafkaTopicConfig = _topic(DAY_MS, HOUR_MS)
    acks: KafkaTopicConfig = _topic(DAY_MS, HOUR_MS)

    def declared(self, role: TopicRole, *, partitions: int, replication_factor: int) -> TopicDeclaration:
        """What a topic of ``role`` must be, with the given defaults for an unset count."""
        topic: KafkaTopicConfig = getattr(self, role)
        return TopicDeclaration(
            partitions=topic.partitions or partitions,
            replication_factor=topic.replication_factor or replication_factor,
            configs={
                # A compacted topic never erases by time: the policy is part of the declaration.
                "cleanup.policy": "delete",
                "retention.ms": str(topic.retention_ms),
                "segment.ms": str(topic.segment_ms),
            },
        )


TopicRole = Literal["sightings", "stranger_attempts", "alerts", "alert_events", "notifications", "acks"]
TOPIC_ROLES: tuple[TopicRole, ...] = get_args(TopicRole)
# The topic names of DESIGN §1; the notifier's topics can be renamed in its config, the transport's cannot.
DEFAULT_TOPIC_NAMES: dict[str, TopicRole] = {
    "gridwatch.sightings": "sightings",
    "gridwatch.stranger-attempts": "stranger_attempts",
    "gridwatch.alerts": "alerts",
    "gridwatch.alert-events": "alert_events",
    "gridwatch.notifications": "notifications",
    "gridwatch.acks": "acks",
}


@dataclass(frozen=True, slots=True)
class TopicDeclaration:
    """A topic as declared: partitions, replication and the topic configs gridwatch manages."""

    partitions: int
    replication_factor: int
    configs: dict[str, str] = field(default_factory=dict)
