"""How to reach a Kafka cluster: shared by the Kafka alert sink and the Kafka stage transport."""

from __future__ import annotations

import ssl
from typing import Any

from pydantic import Field

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
