"""The quality gate: faces too small or too uncertain are not searched at all."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridwatch.config.model import QualityConfig
from recognition.faces import Faces


@dataclass(frozen=True, slots=True)
class QualityVerdict:
    accepted: npt.NDArray[np.bool_]
    face_px: npt.NDArray[np.float32]
    reasons: list[str | None]


class QualityGate:
    def __init__(self, config: QualityConfig) -> None:
        self._config = config

    def check(self, faces: Faces) -> QualityVerdict:
        face_px = np.minimum(faces.widths, faces.heights).astype(np.float32)
        reasons: list[str | None] = []
        for px, score in zip(face_px, faces.scores, strict=True):
            if px < self._config.min_face_px:
                reasons.append(f"too small ({px:.0f} px < {self._config.min_face_px} px)")
            elif score < self._config.min_det_score:
                reasons.append(f"low detection score ({score:.2f} < {self._config.min_det_score:.2f})")
            else:
                reasons.append(None)
        accepted = np.array([r is None for r in reasons], dtype=bool)
        return QualityVerdict(accepted=accepted, face_px=face_px, reasons=reasons)
