"""`service.transport`: how stages exchange events (in one process, or over Kafka topics)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gridwatch.core.config.base import StrictModel
from gridwatch.core.config.kafka import KafkaConnectionConfig, KafkaTopicsConfig, TopicDeclaration, TopicRole


class KafkaTransportConfig(KafkaConnectionConfig):
    group_prefix: str = Field(
        default="gridwatch",
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Consumer groups are named <group_prefix>.<stage>; processes of one site share it.",
    )
    create_topics: bool = Field(
        default=True, description="Create missing topics at start (off where an operator creates them)."
    )
    partitions: int = Field(
        default=6, ge=1, le=1000, description="Partitions of a topic whose declaration (`topics`) sets none."
    )
    replication_factor: int = Field(
        default=1, ge=1, le=10, description="Replication of a topic whose declaration (`topics`) sets none."
    )
    topics: KafkaTopicsConfig = Field(
        default_factory=KafkaTopicsConfig,
        description="Declarations of every gridwatch topic (the notifier's too): partitions, replication, "
        "retention; applied when topics are created at start and by `gridwatch kafka init`.",
    )

    def declaration(self, role: TopicRole) -> TopicDeclaration:
        """The declared shape of the topic of ``role``, counts defaulting to ``partitions``/``replication_factor``."""
        return self.topics.declared(role, partitions=self.partitions, replication_factor=self.replication_factor)


class TransportConfig(StrictModel):
    driver: Literal["inprocess", "kafka"] = Field(
        default="inprocess",
        description="inprocess: bounded queues in one process (the embedded default); "
        "kafka: the topics of DESIGN §1, keyed by person id.",
    )
    queue_size: int = Field(default=1000, ge=1, le=1_000_000, description="Capacity of each in-process queue.")
    kafka: KafkaTransportConfig = Field(default_factory=KafkaTransportConfig, description="Kafka driver settings.")

    @model_validator(mode="after")
    def _sasl_credentials(self) -> TransportConfig:
        if self.driver == "kafka" and (missing := self.kafka.missing_sasl_credentials()):
            raise ValueError(f"kafka.security_protocol {self.kafka.security_protocol} needs {' and '.join(missing)}")
        return self
