"""Head yaw from the 5 detector landmarks: no extra model, a few arithmetic operations per face.

Model: seen from the front, the nose tip lies midway between the eyes and ``NOSE_DEPTH`` times the
half eye distance in front of them. Turned by a yaw ``θ``, the half eye distance shrinks to
``e·cos θ`` and the nose tip moves sideways by ``d·sin θ``, so ``tan θ = (offset / half) · e / d``.
The offset is measured along the eye line, which makes the estimate insensitive to roll. It is an
estimate (±10° on frontal-to-45° faces); beyond ~60° the far eye is hidden and detectors guess its
landmark, so such faces read as "large yaw" rather than as an exact angle.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

# Depth of the nose tip in front of the eyes, in half eye distances (anthropometric mean ≈ 32 mm
# half interpupillary distance, ≈ 30 mm nose-tip protrusion in front of the eyes' plane).
NOSE_DEPTH = 0.95

LEFT_EYE, RIGHT_EYE, NOSE = 0, 1, 2


def estimate_yaw(landmarks: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Yaw in degrees for each face of ``landmarks`` ``(n, 5, 2)``: 0 frontal, the sign gives the side
    (positive: the nose points to the image's right)."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.size == 0:
        return np.empty((0,), np.float32)
    left, right, nose = points[:, LEFT_EYE], points[:, RIGHT_EYE], points[:, NOSE]
    eye_axis = right - left
    eye_distance = np.linalg.norm(eye_axis, axis=1)
    half = np.maximum(eye_distance / 2.0, 1e-6)
    unit = eye_axis / np.maximum(eye_distance, 1e-6)[:, None]
    offset = ((nose - (left + right) / 2.0) * unit).sum(axis=1)
    yaw = np.degrees(np.arctan2(offset, half * NOSE_DEPTH))
    return np.asarray(yaw, dtype=np.float32)
