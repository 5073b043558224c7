"""`notifier:` section: where alerts go."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from gridwatch.core.config.base import StrictModel
from gridwatch.core.config.kafka import KafkaConnectionConfig


class ConsoleSinkConfig(StrictModel):
    enabled: bool = Field(default=True, description="Print each alert on standard output.")


class JsonlSinkConfig(StrictModel):
    enabled: bool = Field(default=False, description="Append each alert to a JSON-lines file.")
    path: Path = Field(default=Path("alerts.jsonl"), description="Relative to the data directory.")


class KafkaSinkConfig(KafkaConnectionConfig):
    enabled: bool = Field(default=False, description="Publish alerts to Kafka.")
    topic: str = Field(
        default="gridwatch.alerts",
        min_length=1,
        max_length=249,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Alert topic; keyed by person id.",
    )

    @model_validator(mode="after")
    def _sasl_credentials(self) -> KafkaSinkConfig:
        # The producer cannot be built without them: every delivery would fail and alerts pile up.
        if self.enabled and (missing := self.missing_sasl_credentials()):
            raise ValueError(f"security_protocol {self.security_protocol} needs {' and '.join(missing)}")
        return self


class OutboxConfig(StrictModel):
    retry_initial_s: float = Field(default=1.0, gt=0.0, le=60.0, description="First redelivery delay.")
    retry_max_s: float = Field(default=60.0, gt=0.0, le=3600.0, description="Cap of the redelivery delay.")
    park_after_attempts: int = Field(
        default=20,
        ge=2,
        le=10_000,
        description=(
            "Failed attempts after which an alert is parked for a sink (kept aside for an operator), "
            "but only once a later alert was delivered to that sink: a sink that is down parks nothing."
        ),
    )


class NotifierConfig(StrictModel):
    console: ConsoleSinkConfig = Field(default_factory=ConsoleSinkConfig, description="Console sink.")
    jsonl: JsonlSinkConfig = Field(default_factory=JsonlSinkConfig, description="JSONL file sink.")
    kafka: KafkaSinkConfig = Field(default_factory=KafkaSinkConfig, description="Kafka sink.")
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="Durable outbox.")
