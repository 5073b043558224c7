"""`cameras:` section: one entry per camera."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from gridwatch.core.config.base import Identifier, StrictModel


class BackoffConfig(StrictModel):
    initial_s: float = Field(default=0.5, gt=0.0, le=60.0, description="First reconnect delay.")
    max_s: float = Field(default=30.0, gt=0.0, le=3600.0, description="Cap of the reconnect delay.")
    factor: float = Field(default=2.0, ge=1.0, le=10.0, description="Growth per failed attempt.")


class _CameraBase(StrictModel):
    id: Identifier = Field(description="Unique camera id, used in sightings and alerts.")
    name: str = Field(default="", max_length=200, description="Human-readable name.")
    grid: str | None = Field(default=None, max_length=64, description="Grid (area of responsibility).")
    fps: float = Field(default=5.0, gt=0.0, le=30.0, description="Frames analysed per second.")
    enabled: bool = Field(default=True, description="Disabled cameras are not started.")
    backoff: BackoffConfig = Field(default_factory=BackoffConfig, description="Reconnect backoff.")


class RtspCameraConfig(_CameraBase):
    kind: Literal["rtsp"] = Field(description="An RTSP stream, read with OpenCV's FFmpeg backend over TCP.")
    url: str = Field(
        min_length=8,
        max_length=2048,
        repr=False,  # may hold credentials
        description="rtsp:// URL; put credentials in ${ENV} placeholders.",
    )
    open_timeout_s: float = Field(default=5.0, gt=0.0, le=120.0, description="Open timeout.")
    read_timeout_s: float = Field(default=5.0, gt=0.0, le=120.0, description="Read timeout.")

    @field_validator("url")
    @classmethod
    def _rtsp_scheme(cls, url: str) -> str:
        if not url.lower().startswith(("rtsp://", "rtsps://")):
            raise ValueError("must start with rtsp:// or rtsps://")
        return url


class FileCameraConfig(_CameraBase):
    kind: Literal["file"] = Field(description="A video file played in real time and looped (demos).")
    path: Path = Field(description="Video file; relative to the config directory.")
    loop: bool = Field(default=True, description="Start again at the end.")


CameraConfig = Annotated[RtspCameraConfig | FileCameraConfig, Field(discriminator="kind")]
