"""`notifier:` section: where alerts go."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from gridwatch.core.config.base import StrictModel


class ConsoleSinkConfig(StrictModel):
    enabled: bool = Field(default=True, description="Print each alert on standard output.")


class JsonlSinkConfig(StrictModel):
    enabled: bool = Field(default=False, description="Append each alert to a JSON-lines file.")
    path: Path = Field(default=Path("alerts.jsonl"), description="Relative to the data directory.")


class KafkaSinkConfig(StrictModel):
    enabled: bool = Field(default=False, description="Publish alerts to Kafka.")
    bootstrap_servers: str = Field(
        default="127.0.0.1:9092", min_length=3, max_length=2000, description="host:port[,host:port...]"
    )
    topic: str = Field(
        default="gridwatch.alerts",
        min_length=1,
        max_length=249,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Alert topic; keyed by person id.",
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

    @model_validator(mode="after")
    def _sasl_credentials(self) -> KafkaSinkConfig:
        # The producer cannot be built without them: every delivery would fail and alerts pile up.
        if self.enabled and self.security_protocol.startswith("SASL_"):
            missing = [key for key in ("sasl_username", "sasl_password") if getattr(self, key) is None]
            if missing:
                raise ValueError(f"security_protocol {self.security_protocol} needs {' and '.join(missing)}")
        return self


class OutboxConfig(StrictModel):
    retry_initial_s: float = Field(default=1.0, gt=0.0, le=60.0, description="First redelivery delay.")
    retry_max_s: float = Field(default=60.0, gt=0.0, le=3600.0, description="Cap of the redelivery delay.")


class NotifierConfig(StrictModel):
    console: ConsoleSinkConfig = Field(default_factory=ConsoleSinkConfig, description="Console sink.")
    jsonl: JsonlSinkConfig = Field(default_factory=JsonlSinkConfig, description="JSONL file sink.")
    kafka: KafkaSinkConfig = Field(default_factory=KafkaSinkConfig, description="Kafka sink.")
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="Durable outbox.")
