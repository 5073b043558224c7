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

from pydantic import Field, field_validator, model_validator

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

# A point of a region of interest: (x, y) as fractions of the frame's width and height.
NormalisedPoint = tuple[
    Annotated[float, Field(ge=0.0, le=1.0)],
    Annotated[float, Field(ge=0.0, le=1.0)],
]


class MotionConfig(StrictModel):
    """Motion gating: while nothing in the picture moves, the face detector is not run."""

    enabled: bool = Field(default=False, description="Skip detection on frames without motion.")
    max_skip_s: float = Field(
        default=2.0, gt=0.0, le=60.0, description="Detect at least this often (seconds), motion or not."
    )
    threshold: float = Field(
        default=0.005,
        gt=0.0,
        le=1.0,
        description="Share of pixels (of a small grey copy of the frame) that must change to count as motion.",
    )
    pixel_delta: int = Field(
        default=12, ge=1, le=255, description="Change of a grey level (0..255) that counts a pixel as changed."
    )


class TrackingConfig(StrictModel):
    """Face tracks: a face is embedded when it is the best view of its track so far, not on every frame."""

    max_embeddings_per_track: int = Field(
        default=4, ge=1, le=100, description="Embeddings one unmatched track may cost at most."
    )
    # Small on purpose: the quality score tells a usable face from a poor one, not which of two usable
    # faces will match; on the shared clip the performer's first accepted face (just after a cut) missed
    # the threshold and, at 0.15, no later face of the pass was better enough to be tried.
    min_gain: float = Field(
        default=0.05,
        ge=0.0,
        le=10.0,
        description="Relative quality gain over the track's last embedded face needed to embed another one.",
    )
    lost_after_s: float = Field(default=1.0, gt=0.0, le=30.0, description="A track not seen for this long has ended.")


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

    # --- analysis: what of the picture is analysed, and how often (issues 11 and 14) -------------
    roi: list[NormalisedPoint] | None = Field(
        default=None,
        min_length=3,
        max_length=64,
        description="Region of interest: a polygon of (x, y) points in 0..1 of the frame; faces whose box "
        "centre lies outside it are dropped before embedding.",
    )
    motion: MotionConfig = Field(default_factory=MotionConfig, description="Motion gating of the detector.")
    detector_size: int | None = Field(
        default=None,
        ge=128,
        le=1280,
        multiple_of=32,
        description="Detector input side for this camera, pixels (default: model.detector_input_size).",
    )
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="Face tracks and best-shot embedding.")

    @model_validator(mode="after")
    def _roi_has_area(self) -> _CameraBase:
        if self.roi is not None and _polygon_area(self.roi) < 1e-6:
            raise ValueError("roi: the polygon has no area (its points are on one line)")
        return self


def _polygon_area(points: list[tuple[float, float]]) -> float:
    """Shoelace formula."""
    total = 0.0
    for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1], strict=True):
        total += x1 * y2 - x2 * y1
    return abs(total) / 2.0


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
