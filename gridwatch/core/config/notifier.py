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


class AcksConfig(StrictModel):
    """Acknowledgement by one-click link, staff API token, and the ``gridwatch.acks`` topic."""

    signing_secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=512,
        repr=False,
        description=(
            "Key that signs one-click acknowledgement links and staff API tokens: a ${ENV} placeholder "
            "(e.g. 32 random bytes, base64). Needed once `routes:` are configured."
        ),
    )
    link_ttl_s: int = Field(
        default=86400, ge=60, le=30 * 86400, description="How long a one-click acknowledgement link stays valid."
    )
    public_url: str | None = Field(
        default=None,
        max_length=500,
        pattern=r"^https?://[^\s]+$",
        description="Base URL staff reach gridwatch at (links are <public_url>/a/<token>); unset: the HTTP listener.",
    )
    consume: bool = Field(default=False, description="Read acknowledgements from `topic` (notifier.kafka's cluster).")
    topic: str = Field(
        default="gridwatch.acks",
        min_length=1,
        max_length=249,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Topic a push gateway produces acknowledgements to.",
    )


class AlertEventsConfig(StrictModel):
    """Case transitions (notified, acknowledged, escalated, resolved) published on Kafka."""

    enabled: bool = Field(default=False, description="Publish case transitions (notifier.kafka's cluster).")
    topic: str = Field(
        default="gridwatch.alert-events",
        min_length=1,
        max_length=249,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Topic of the case transitions, keyed like the alerts.",
    )


class NotifierConfig(StrictModel):
    console: ConsoleSinkConfig = Field(default_factory=ConsoleSinkConfig, description="Console sink.")
    jsonl: JsonlSinkConfig = Field(default_factory=JsonlSinkConfig, description="JSONL file sink.")
    kafka: KafkaSinkConfig = Field(default_factory=KafkaSinkConfig, description="Kafka sink.")
    outbox: OutboxConfig = Field(
        default_factory=OutboxConfig, description="Durable outbox (alerts, and the notifications of staff)."
    )
    acks: AcksConfig = Field(default_factory=AcksConfig, description="Acknowledgements.")
    alert_events: AlertEventsConfig = Field(default_factory=AlertEventsConfig, description="Case transitions on Kafka.")
