"""`gates:` section: face terminals of residential gates, one entry per terminal, chosen by `kind`.

gridwatch only listens to a gate: it never blocks, delays or changes the door's own decision.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from gridwatch.core.config.base import Identifier, StrictModel
from gridwatch.core.config.cameras import BackoffConfig

Direction = Literal["in", "out"]


class DoorConfig(StrictModel):
    door: str = Field(
        min_length=1, max_length=32, description="Door number or reader id as the device reports it (doorNo, ReaderID)."
    )
    direction: Direction = Field(description="Whether a pass at this door/reader is an entry or an exit.")


class _GateBase(StrictModel):
    id: Identifier = Field(description="Unique gate id, used in sightings and alerts (shares the id space of cameras).")
    name: str = Field(default="", max_length=200, description="Human-readable name.")
    grid: str | None = Field(default=None, max_length=64, description="Grid (area of responsibility).")
    enabled: bool = Field(default=True, description="Disabled gates are not started.")
    timezone: str = Field(
        default="UTC",
        min_length=1,
        max_length=64,
        description="IANA time zone of the device clock, for device times sent without an offset.",
    )
    doors: list[DoorConfig] = Field(default_factory=list, description="Direction per door/reader.")
    default_direction: Direction | None = Field(
        default=None, description="Direction for doors not listed (None: unknown)."
    )
    max_image_bytes: int = Field(
        default=2 * 1024 * 1024, ge=10_000, le=20 * 1024 * 1024, description="Largest accepted face snapshot."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {zone!r}") from None
        return zone


class _HttpDeviceBase(_GateBase):
    url: str = Field(
        min_length=8,
        max_length=2048,
        repr=False,
        description="Base URL of the device, http(s)://host[:port]; no credentials in it.",
    )
    username: str | None = Field(default=None, max_length=128, description="Device user; use ${ENV}.")
    password: str | None = Field(default=None, max_length=256, repr=False, description="Device password; use ${ENV}.")
    connect_timeout_s: float = Field(default=5.0, gt=0.0, le=120.0, description="Connect timeout.")
    idle_timeout_s: float = Field(
        default=90.0, gt=0.0, le=3600.0, description="No byte (not even a heartbeat) for this long means reconnect."
    )
    backoff: BackoffConfig = Field(default_factory=BackoffConfig, description="Reconnect backoff.")

    @field_validator("url")
    @classmethod
    def _http_scheme(cls, url: str) -> str:
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return url


class IsapiPushGateConfig(_GateBase):
    kind: Literal["isapi_push"] = Field(
        description="The terminal pushes ISAPI event multipart bodies to gridwatch's HTTP endpoint."
    )
    username: str = Field(min_length=1, max_length=128, description="HTTP Basic user the device must send; ${ENV}.")
    password: str = Field(
        min_length=1, max_length=256, repr=False, description="HTTP Basic password the device must send; ${ENV}."
    )
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=10_000, le=50 * 1024 * 1024, description="Largest accepted request body."
    )


class IsapiStreamGateConfig(_HttpDeviceBase):
    kind: Literal["isapi_stream"] = Field(
        description="gridwatch long-polls GET /ISAPI/Event/notification/alertStream (digest auth)."
    )
    backfill_max_events: int = Field(
        default=1000,
        ge=0,
        le=4000,  # below the stream's memory of recent serials (4096), which deduplicates the recovered events
        description="Most missed events searched in the device's history (AcsEvent) per gap; 0 turns backfill off.",
    )
    backfill_page_size: int = Field(
        default=30, ge=1, le=100, description="Events asked per AcsEvent search page (terminals cap it, often at 30)."
    )


class DahuaStreamGateConfig(_HttpDeviceBase):
    kind: Literal["dahua_stream"] = Field(
        description="gridwatch attaches to /cgi-bin/eventManager.cgi?action=attach&codes=[AccessControl]."
    )
    heartbeat_s: int = Field(default=5, ge=1, le=300, description="Heartbeat interval asked of the device.")


class MqttGateConfig(_GateBase):
    kind: Literal["mqtt"] = Field(description="The terminal publishes JSON captures to an MQTT broker.")
    host: str = Field(default="127.0.0.1", min_length=1, max_length=255, description="MQTT broker host.")
    port: int = Field(default=1883, ge=1, le=65535, description="MQTT broker port.")
    username: str | None = Field(default=None, max_length=128, description="Broker user; use ${ENV}.")
    password: str | None = Field(default=None, max_length=256, repr=False, description="Broker password; ${ENV}.")
    topic: str = Field(min_length=1, max_length=512, description="Capture topic (wildcards allowed).")
    ack_topic: str = Field(
        default="{topic}/ack",
        min_length=1,
        max_length=512,
        description="Acknowledgement topic; {topic} is the capture's topic, {device_no} the device number.",
    )
    client_id: str = Field(default="", max_length=64, description="MQTT client id (empty: gridwatch-<gate id>).")
    backoff: BackoffConfig = Field(default_factory=BackoffConfig, description="Reconnect backoff.")


GateConfig = Annotated[
    IsapiPushGateConfig | IsapiStreamGateConfig | DahuaStreamGateConfig | MqttGateConfig,
    Field(discriminator="kind"),
]
