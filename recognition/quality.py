"""The quality gate: faces too small, too uncertain, too turned or too blurred are not searched at all.

Small, blurred and profile faces are where strangers get matched as known people. Each check has
its own limit in ``model.quality``; the measured values are reported on every sighting.

- size: the shorter side of the detector's box, in pixels of the analysed image;
- detection score: the detector's confidence;
- yaw: degrees, estimated from the 5 landmarks (``recognition.pose``);
- blur: the variance of the Laplacian of the aligned 112x112 grey face crop (higher is sharper).
  The crop is scale-normalised, so a small face enlarged to 112 px reads as blurred, as it is to
  the recogniser. It is made in memory and dropped at once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from gridwatch.core.config.model import QualityConfig
from gridwatch.core.faces import Faces
from recognition.align import align_face
from recognition.pose import estimate_yaw


class Rejection(enum.StrEnum):
    """Why the gate refused a face (also the failure-to-acquire categories of ``gridwatch eval``)."""

    TOO_SMALL = "too_small"
    LOW_DET_SCORE = "low_det_score"
    TOO_MUCH_YAW = "too_much_yaw"
    TOO_BLURRED = "too_blurred"


@dataclass(frozen=True, slots=True)
class QualityMeasures:
    """The quality values of ``n`` faces, as parallel ``(n,)`` float32 arrays."""

    face_px: npt.NDArray[np.float32]
    det_score: npt.NDArray[np.float32]
    yaw: npt.NDArray[np.float32]
    blur: npt.NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.face_px)


@dataclass(frozen=True, slots=True)
class QualityVerdict:
    """The gate's decision per face; ``reasons`` are words for an operator, ``codes`` for counting."""

    accepted: npt.NDArray[np.bool_]
    face_px: npt.NDArray[np.float32]
    reasons: list[str | None]
    codes: list[Rejection | None]
    measures: QualityMeasures

    @property
    def blur(self) -> npt.NDArray[np.float32]:
        return self.measures.blur

    @property
    def yaw(self) -> npt.NDArray[np.float32]:
        return self.measures.yaw


def blur_measure(image: npt.NDArray[np.uint8], landmarks: npt.NDArray[np.float32]) -> float:
    """Variance of the Laplacian of one face's aligned grey crop (``landmarks``: ``(5, 2)``)."""
    crop = align_face(image, landmarks)
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    value = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    del crop, grey  # personal data: never kept
    return value


def measure(image: npt.NDArray[np.uint8], faces: Faces) -> QualityMeasures:
    """The quality values of every face of ``image``."""
    return QualityMeasures(
        face_px=np.minimum(faces.widths, faces.heights).astype(np.float32),
        det_score=np.asarray(faces.scores, dtype=np.float32),
        yaw=estimate_yaw(faces.landmarks),
        blur=np.array([blur_measure(image, faces.landmarks[i]) for i in range(len(faces))], dtype=np.float32),
    )


class QualityGate:
    def __init__(self, config: QualityConfig) -> None:
        self._config = config

    @property
    def config(self) -> QualityConfig:
        return self._config

    def check(self, faces: Faces, image: npt.NDArray[np.uint8]) -> QualityVerdict:
        """Measure and judge the faces of ``image``."""
        return self.judge(measure(image, faces))

    def judge(self, measures: QualityMeasures) -> QualityVerdict:
        """Apply this gate's limits to values already measured (``gridwatch eval`` compares gates)."""
        reasons: list[str | None] = []
        codes: list[Rejection | None] = []
        for i in range(len(measures)):
            code, reason = self._reject(
                float(measures.face_px[i]),
                float(measures.det_score[i]),
                float(measures.yaw[i]),
                float(measures.blur[i]),
            )
            codes.append(code)
            reasons.append(reason)
        accepted = np.array([c is None for c in codes], dtype=bool)
        return QualityVerdict(
            accepted=accepted, face_px=measures.face_px, reasons=reasons, codes=codes, measures=measures
        )

    def _reject(self, px: float, score: float, yaw: float, blur: float) -> tuple[Rejection | None, str | None]:
        c = self._config
        # Size first: yaw and blur are meaningless on a face of a few pixels.
        if px < c.min_face_px:
            return Rejection.TOO_SMALL, f"too small ({px:.0f} px < {c.min_face_px} px)"
        if score < c.min_det_score:
            return Rejection.LOW_DET_SCORE, f"low detection score ({score:.2f} < {c.min_det_score:.2f})"
        if abs(yaw) > c.max_yaw_deg:
            return Rejection.TOO_MUCH_YAW, f"too much yaw ({abs(yaw):.0f}° > {c.max_yaw_deg:.0f}°)"
        if blur < c.min_blur:
            return Rejection.TOO_BLURRED, f"too blurred (sharpness {blur:.0f} < {c.min_blur:.0f})"
        return None, None


# Where each term of ``quality_score`` stops growing: a face this large, this sharp is as good as any.
_FULL_SIZE_PX = 112.0  # the recogniser's input side
_FULL_SHARPNESS = 300.0


def quality_score(measures: QualityMeasures) -> npt.NDArray[np.float32]:
    """One number in 0..1 per face for choosing the best view of a track: larger, surer, sharper and
    more frontal is better. Each term saturates, so no single one (a huge but blurred face) dominates."""
    size = np.clip(measures.face_px / _FULL_SIZE_PX, 0.0, 1.0)
    sharpness = np.clip(measures.blur / _FULL_SHARPNESS, 0.0, 1.0)
    frontal = np.cos(np.radians(np.clip(np.abs(measures.yaw), 0.0, 90.0)))
    score = size * np.clip(measures.det_score, 0.0, 1.0) * np.sqrt(sharpness) * frontal
    return np.asarray(score, dtype=np.float32)
