"""`model:` section: the face model pack and the quality gate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from gridwatch.core.config.base import StrictModel

# Chosen with `gridwatch eval` on the shared photos and clip: see the README, "Recognition quality".
MAX_YAW_DEG_DEFAULT = 70.0
MIN_BLUR_DEFAULT = 15.0

# A file of the pack folder (no path separators, not hidden) and its SHA-256 as lowercase hex.
PackFileName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", max_length=128)]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class QualityConfig(StrictModel):
    min_face_px: int = Field(
        default=40, ge=8, le=4096, description="Smallest accepted face (shorter box side, pixels)."
    )
    min_det_score: float = Field(default=0.6, ge=0.0, le=1.0, description="Smallest accepted detection score.")
    max_yaw_deg: float = Field(
        default=MAX_YAW_DEG_DEFAULT,
        ge=0.0,
        le=90.0,
        description="Largest accepted head yaw (degrees, estimated from the 5 landmarks); 90 switches it off.",
    )
    min_blur: float = Field(
        default=MIN_BLUR_DEFAULT,
        ge=0.0,
        le=100000.0,
        description=(
            "Smallest accepted sharpness: variance of the Laplacian of the aligned 112x112 grey face crop "
            "(higher is sharper); 0 switches it off."
        ),
    )


class ModelConfig(StrictModel):
    backend: Literal["insightface", "opencv_zoo"] = Field(
        default="insightface",
        description=(
            "Model pack family: insightface (SCRFD + ArcFace; non-commercial research licence) or "
            "opencv_zoo (YuNet + SFace; MIT/Apache-2.0). Embeddings of two packs are not comparable: "
            "re-enrol and recalibrate after a change."
        ),
    )
    pack: str = Field(
        default="buffalo_s",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Model pack name, looked up under the insightface model root.",
    )
    path: Path | None = Field(default=None, description="Explicit pack folder; if set, it must exist (no fallback).")
    calibration: Path | None = Field(
        default=None,
        description=(
            "The pack's calibration (FMR/FNMR by threshold) built from the site's own labelled photos with "
            "`gridwatch calibrate pack`; unset: the calibration shipped for the pack family. Relative to the "
            "config folder."
        ),
    )
    detector_input_size: int = Field(
        default=640, ge=128, le=1280, multiple_of=32, description="Detector input side, pixels."
    )
    detector_threshold: float = Field(
        default=0.5, ge=0.05, le=1.0, description="Score below which the detector drops a box."
    )
    threads: int = Field(default=2, ge=1, le=64, description="onnxruntime intra-op threads per session.")
    quality: QualityConfig = Field(default_factory=QualityConfig, description="Quality gate.")
    sha256: dict[PackFileName, Sha256Hex] | None = Field(
        default=None,
        min_length=1,
        description=(
            "Pinned SHA-256 (64 lowercase hex) of the pack's model files, by file name; written by "
            "`gridwatch model pin`. When set, every model file gridwatch uses must be pinned and match, "
            "or the service refuses to start. Unset: the pack is not pinned."
        ),
    )
