"""`service:` section: where state lives and how the process presents itself."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from gridwatch.core.config.base import StrictModel
from gridwatch.core.config.transport import TransportConfig


class HttpConfig(StrictModel):
    enabled: bool = Field(default=True, description="Serve the HTTP API (status, health).")
    host: str = Field(default="127.0.0.1", description="Address to bind.", min_length=1, max_length=255)
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port; 0 picks a free one.")


class ServiceConfig(StrictModel):
    name: str = Field(default="gridwatch", min_length=1, max_length=64, description="Instance name.")
    data_dir: Path = Field(
        default=Path("var/gridwatch"),
        description="Directory for the registry store, rule state, outbox and audit log; "
        "relative paths are resolved against the config directory.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of the service."
    )
    http: HttpConfig = Field(default_factory=HttpConfig, description="HTTP API.")
    transport: TransportConfig = Field(
        default_factory=TransportConfig, description="How stages exchange events (in process, or Kafka)."
    )
