"""The one result type for the faces of an image: parallel numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Faces:
    """The faces found in one image, as parallel arrays of length ``n``.

    - ``boxes``: ``(n, 4)`` float32, ``x1, y1, x2, y2`` in pixels of the analysed image;
    - ``scores``: ``(n,)`` float32 detection scores in ``[0, 1]``;
    - ``landmarks``: ``(n, 5, 2)`` float32: eyes, nose, mouth corners (x, y);
    - ``embeddings``: ``(n, d)`` float32, L2-normalised, or ``None`` before embedding.

    Embeddings are personal data: they stay in memory unless a face matched a registry.
    """

    boxes: npt.NDArray[np.float32]
    scores: npt.NDArray[np.float32]
    landmarks: npt.NDArray[np.float32]
    embeddings: npt.NDArray[np.float32] | None = None

    def __post_init__(self) -> None:
        n = len(self.boxes)
        if self.boxes.shape != (n, 4):
            raise ValueError(f"boxes must have shape (n, 4), got {self.boxes.shape}")
        if self.scores.shape != (n,):
            raise ValueError(f"scores must have shape ({n},), got {self.scores.shape}")
        if self.landmarks.shape != (n, 5, 2):
            raise ValueError(f"landmarks must have shape ({n}, 5, 2), got {self.landmarks.shape}")
        if self.embeddings is not None and (self.embeddings.ndim != 2 or len(self.embeddings) != n):
            raise ValueError(f"embeddings must have shape ({n}, d), got {self.embeddings.shape}")

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls) -> Faces:
        return cls(
            boxes=np.empty((0, 4), np.float32),
            scores=np.empty((0,), np.float32),
            landmarks=np.empty((0, 5, 2), np.float32),
        )

    @classmethod
    def from_insightface(cls, detections: npt.NDArray[np.float32], keypoints: npt.NDArray[np.float32] | None) -> Faces:
        """From SCRFD's ``detect()``: ``(n, 5)`` boxes+score and ``(n, 5, 2)`` keypoints."""
        if len(detections) == 0:
            return cls.empty()
        if keypoints is None:
            raise ValueError("the detector gave no landmarks; a 5-keypoint detector is required")
        return cls(
            boxes=np.ascontiguousarray(detections[:, :4], dtype=np.float32),
            scores=np.ascontiguousarray(detections[:, 4], dtype=np.float32),
            landmarks=np.ascontiguousarray(keypoints, dtype=np.float32),
        )

    @property
    def widths(self) -> npt.NDArray[np.float32]:
        return self.boxes[:, 2] - self.boxes[:, 0]

    @property
    def heights(self) -> npt.NDArray[np.float32]:
        return self.boxes[:, 3] - self.boxes[:, 1]

    def select(self, mask: npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> Faces:
        """The faces picked by a boolean mask or an index array."""
        return Faces(
            boxes=self.boxes[mask],
            scores=self.scores[mask],
            landmarks=self.landmarks[mask],
            embeddings=None if self.embeddings is None else self.embeddings[mask],
        )

    def with_embeddings(self, embeddings: npt.NDArray[np.float32]) -> Faces:
        return replace(self, embeddings=embeddings)
