"""`service:` section: where state lives and how the process presents itself."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, IPvAnyNetwork, model_validator

from gridwatch.core.config.base import StrictModel
from gridwatch.core.config.transport import TransportConfig

# Who may read /status and /metrics on the device-facing port when nothing is configured: this host only.
LOOPBACK = (IPv4Network("127.0.0.1/32"), IPv6Network("::1/128"))


def _loopback() -> list[IPv4Network | IPv6Network]:
    return list(LOOPBACK)


class HttpConfig(StrictModel):
    """The device-facing listener: push terminals post here, so every limit assumes hostile clients.

    The defaults fit a site with dozens of terminals (each holds one or two connections at a time). Behind a
    reverse proxy every request comes from the proxy's address: raise ``max_connections_per_address`` to
    ``max_connections`` there, and keep the proxy's own limits.
    """

    enabled: bool = Field(default=True, description="Serve the HTTP API (health, gate endpoints, status).")
    host: str = Field(default="127.0.0.1", description="Address to bind.", min_length=1, max_length=255)
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    max_connections: int = Field(
        default=256,
        ge=8,
        le=4096,
        description="Open connections at most; one more is answered 503 and closed before its request is read. "
        "Keep it well under the process's file limit (ulimit -n), which cameras and the database share.",
    )
    max_connections_per_address: int = Field(
        default=32,
        ge=1,
        le=4096,
        description="Open connections from one client address at most; one more is answered 503 and closed.",
    )
    keepalive_s: int = Field(
        default=5, ge=1, le=300, description="An idle connection between requests is closed after this many seconds."
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="A request's line and headers must be complete this long after the connection opened (or "
        "after its first byte, on a kept-alive connection); else 408 and the connection is closed.",
    )
    body_timeout_s: float = Field(
        default=60.0,
        gt=0,
        le=600,
        description="A request's whole body must arrive within this long of its headers; else the connection "
        "is closed (the endpoint sees a disconnect and nothing is accepted).",
    )
    max_header_bytes: int = Field(
        default=16_384,
        ge=1024,
        le=1_048_576,
        description="Request line and headers larger than this are answered 400 and the connection is closed.",
    )
    unauthenticated_per_minute: int = Field(
        default=20,
        ge=1,
        le=600,
        description="Requests answered 401/403 per client address per minute; beyond it, every request from "
        "that address (except /healthz) is answered 429 until the minute has passed.",
    )
    status_allow: list[IPvAnyNetwork] = Field(
        default_factory=_loopback,
        max_length=64,
        description="Client networks (CIDR) that may read /status and /metrics; others get 404. Docs and the "
        "OpenAPI page are never served on this port. Default: this host's loopback only.",
    )


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


class GateIntakeConfig(StrictModel):
    """Between the gates and recognition: a gate event is acknowledged only once it is durable."""

    queue_per_gate: int = Field(
        default=8,
        ge=1,
        le=256,
        description="Events of one gate waiting for recognition (the one in recognition not counted); one more "
        "is refused: ISAPI push 503, MQTT not acknowledged, streams count it dropped.",
    )
    wait_s: float = Field(
        default=10.0,
        ge=0.5,
        le=60.0,
        description="An event not recognised within this long is withdrawn and refused like a full queue (keep "
        "it under the terminals' own request timeout).",
    )
    retry_after_s: int = Field(
        default=2, ge=1, le=60, description="What a refused ISAPI push terminal is told to wait (Retry-After)."
    )
    poison_after_failures: int = Field(
        default=5,
        ge=2,
        le=1000,
        description="An event (gate + device serial) whose recognition failed this often is, when it comes again, "
        "answered as taken and dropped (counted, logged): a terminal would otherwise resend it forever.",
    )


class ConsoleConfig(StrictModel):
    """The operator console: its own listener (never the device-facing one), sign-in, roles, scopes.

    Changes need a restart (like every ``service.*`` key).
    """

    enabled: bool = Field(default=False, description="Serve the operator console and its API.")
    host: str = Field(default="127.0.0.1", description="Address to bind.", min_length=1, max_length=255)
    port: int = Field(default=8081, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    tls_cert: Path | None = Field(
        default=None,
        description="PEM certificate (chain) for HTTPS; with tls_key. Relative paths against the config directory. "
        "Under TLS the session cookie is marked Secure.",
    )
    tls_key: Path | None = Field(default=None, description="PEM private key of tls_cert.")
    public_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://[^\s]+$",
        description="How operators reach the console (behind a proxy), for links; default: the listener.",
    )
    session_ttl_s: int = Field(
        default=43200, ge=300, le=604800, description="A signed-in session ends this long after sign-in."
    )
    timezone: str = Field(
        default="Asia/Shanghai",
        min_length=1,
        max_length=64,
        description="The site's zone for the times the pages show (IANA name).",
    )
    language: Literal["zh", "en"] = Field(default="zh", description="Language of the pages' labels.")
    max_failed_sign_ins: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Failed sign-ins per user and per client address within sign_in_window_s before further "
        "attempts are refused (429) until the window has passed (counted in memory).",
    )
    sign_in_window_s: int = Field(default=300, ge=10, le=86400, description="The window of max_failed_sign_ins.")

    @model_validator(mode="after")
    def _tls_pair(self) -> ConsoleConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both or neither")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        return self


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
    console: ConsoleConfig = Field(
        default_factory=ConsoleConfig, description="The operator console (a second listener). Needs a restart."
    )
    database: DatabaseConfig = Field(
        default_factory=DatabaseConfig, description="Where registries, rule state and the outbox are stored."
    )
    transport: TransportConfig = Field(
        default_factory=TransportConfig, description="How stages exchange events (in process, or Kafka)."
    )
    gate_intake: GateIntakeConfig = Field(
        default_factory=GateIntakeConfig, description="Per-gate queues in front of recognition, and their bounds."
    )
