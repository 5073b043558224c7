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


class DatabaseConfig(StrictModel):
    """The one database of registries, rule state and outbox (SQLite file, or a PostgreSQL server)."""

    url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^((sqlite|postgresql|postgresql\+psycopg)://|$)",
        description="SQLAlchemy URL: sqlite:///path (relative paths against the config directory) or "
        "postgresql+psycopg://user:${DB_PASSWORD}@host:5432/gridwatch (password only from ${ENV}, or the whole "
        "URL from one placeholder such as ${GRIDWATCH_DATABASE_URL:-}); unset or empty: the SQLite file "
        "gridwatch.sqlite3 in data_dir. Needs a restart.",
    )
    connect_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="How long opening a connection to the server may take."
    )
    retry_s: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="While the database is unreachable, how long one call waits and retries (with backoff) "
        "before it fails.",
    )
    pool_size: int = Field(default=5, ge=1, le=100, description="Connections kept open to a PostgreSQL server.")


class ServiceConfig(StrictModel):
    name: str = Field(default="gridwatch", min_length=1, max_length=64, description="Instance name.")
    data_dir: Path = Field(
        default=Path("var/gridwatch"),
        description="Directory for the audit log, logs and the default SQLite database; "
        "relative paths are resolved against the config directory.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of the service."
    )
    http: HttpConfig = Field(default_factory=HttpConfig, description="HTTP API.")
    database: DatabaseConfig = Field(
        default_factory=DatabaseConfig, description="Where registries, rule state and the outbox are stored."
    )
    transport: TransportConfig = Field(
        default_factory=TransportConfig, description="How stages exchange events (in process, or Kafka)."
    )
