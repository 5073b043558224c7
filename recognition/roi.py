"""A camera's region of interest: faces whose box centre lies outside it are not embedded."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt


def inside_roi(
    polygon: Sequence[tuple[float, float]], boxes: npt.NDArray[np.float32], width: int, height: int
) -> npt.NDArray[np.bool_]:
    """Per box (``(n, 4)`` x1, y1, x2, y2 in pixels): whether its centre lies in ``polygon`` (points in
    0..1 of the frame's width and height) or on its edge."""
    scale = np.array([width, height], dtype=np.float32)
    contour = (np.asarray(polygon, dtype=np.float32) * scale).reshape(-1, 1, 2)
    centres = (boxes[:, :2] + boxes[:, 2:4]) / 2.0
    return np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0 for x, y in centres], dtype=bool)
