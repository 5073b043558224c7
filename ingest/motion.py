"""Motion gating: while nothing in a camera's picture moves, its frames are not analysed.

Each frame due for analysis is shrunk to a small grey thumbnail and compared with the last analysed
frame's (not the previous frame's: a slow walk changes little from one frame to the next, but adds up);
it counts as moving when enough pixels changed. A frame is analysed when it moves, and at least every
``max_skip_s`` whatever happens (a person standing still is still looked at). The thumbnail of the
last analysed frame is all that is kept, in memory, and only until the next analysed frame.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from gridwatch.core.config.cameras import MotionConfig

# Width of the thumbnail motion is measured on: small enough to cost well under a millisecond, and to
# smooth away sensor noise and compression artefacts.
THUMBNAIL_WIDTH = 96


class MotionGate:
    def __init__(self, config: MotionConfig) -> None:
        self._config = config
        self._previous: npt.NDArray[np.uint8] | None = None
        self._last_analysed: float | None = None

    def due(self, image: npt.NDArray[np.uint8], now: float) -> bool:
        """Whether the frame ``image`` (BGR), taken at ``now`` (seconds, any monotonic origin), is analysed."""
        thumbnail = _thumbnail(image)
        previous = self._previous
        if (
            previous is None
            or previous.shape != thumbnail.shape
            or self._last_analysed is None
            or now - self._last_analysed >= self._config.max_skip_s
            or self.changed_share(previous, thumbnail) >= self._config.threshold
        ):
            self._previous, self._last_analysed = thumbnail, now
            return True
        return False

    def changed_share(self, previous: npt.NDArray[np.uint8], current: npt.NDArray[np.uint8]) -> float:
        """The share of thumbnail pixels whose grey level changed by at least ``pixel_delta``."""
        delta = cv2.absdiff(previous, current)
        return float(np.count_nonzero(delta >= self._config.pixel_delta)) / delta.size

    def reset(self) -> None:
        """Forget the previous frame (a reconnect: the next frame is analysed)."""
        self._previous = None
        self._last_analysed = None


def _thumbnail(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    height, width = image.shape[:2]
    size = (THUMBNAIL_WIDTH, max(1, round(height * THUMBNAIL_WIDTH / max(width, 1))))
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.GaussianBlur(small, (3, 3), 0), dtype=np.uint8)
