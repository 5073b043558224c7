"""`cameras:` section: one entry per camera.

Every camera declares where it looks (``location_class``) and when the signs telling people about it were
last checked (``signage_verified_at``): face recognition in public places must be necessary and
signposted (PIPL art. 26; the 2025 face-recognition measures, art. 13), and it is forbidden in private
spaces (toilets, changing rooms, hotel rooms, baths), whose classes are refused by name.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, field_validator

from gridwatch.core.config.base import Identifier, StrictModel


class BackoffConfig(StrictModel):
    initial_s: float = Field(default=0.5, gt=0.0, le=60.0, description="First reconnect delay.")
    max_s: float = Field(default=30.0, gt=0.0, le=3600.0, description="Cap of the reconnect delay.")
    factor: float = Field(default=2.0, ge=1.0, le=10.0, description="Growth per failed attempt.")


# Where a camera may look. A class names the kind of place, not the place itself.
LocationClass = Literal[
    "public_street",
    "public_square",
    "compound_entrance",
    "building_entrance",
    "lobby",
    "corridor",
    "stairwell",
    "elevator",
    "parking",
    "perimeter",
]
LOCATION_CLASSES: tuple[str, ...] = get_args(LocationClass)
# Private spaces: the measures forbid image capture and identification there, whatever the purpose.
REFUSED_LOCATION_CLASSES: tuple[str, ...] = ("toilet", "changing_room", "hotel_room", "bath")
# The oldest signage check accepted (a typo guard; re-check signs long before this matters).
EARLIEST_SIGNAGE_CHECK = dt.date(2000, 1, 1)


class _CameraBase(StrictModel):
    id: Identifier = Field(description="Unique camera id, used in sightings and alerts.")
    name: str = Field(default="", max_length=200, description="Human-readable name.")
    grid: str | None = Field(default=None, max_length=64, description="Grid (area of responsibility).")
    fps: float = Field(default=5.0, gt=0.0, le=30.0, description="Frames analysed per second.")
    enabled: bool = Field(default=True, description="Disabled cameras are not started.")
    backoff: BackoffConfig = Field(default_factory=BackoffConfig, description="Reconnect backoff.")

    # -- lawful-use declarations (required: a camera without them does not start) --
    location_class: LocationClass = Field(
        description=(
            "The kind of place the camera looks at. Private spaces (toilet, changing_room, hotel_room, bath) "
            "are refused."
        ),
    )
    signage_verified_at: dt.date = Field(
        ge=EARLIEST_SIGNAGE_CHECK,
        description="The date the signs announcing face recognition at this camera were last checked in place.",
    )

    @field_validator("location_class", mode="before")
    @classmethod
    def _not_a_private_space(cls, value: Any) -> Any:
        if isinstance(value, str) and value in REFUSED_LOCATION_CLASSES:
            raise ValueError(
                "a private space: face recognition is not allowed in toilets, changing rooms, hotel rooms or "
                "baths (PIPL art. 26; face-recognition measures art. 13); remove this camera"
            )
        return value

    @field_validator("signage_verified_at")
    @classmethod
    def _not_in_the_future(cls, value: dt.date) -> dt.date:
        # One day of slack: the site's date may be ahead of UTC.
        if value > dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1):
            raise ValueError("in the future: give the date the signage was actually checked")
        return value


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
