"""Aligning a face to the 112x112 ArcFace template from its 5 landmarks, in memory.

The same template and the same least-squares similarity transform (Umeyama) as insightface's
``face_align.norm_crop`` and OpenCV's ``FaceRecognizerSF.alignCrop``: both recognisers of the
shipped packs were trained on crops made this way. The crop is personal data: callers keep it
only for the call that needs it.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

ALIGNED_SIZE = 112

# Left eye, right eye, nose tip, left and right mouth corner (image left/right) in a 112x112 crop.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def similarity_transform(source: npt.NDArray[np.floating], target: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """The 2x3 matrix of the least-squares similarity (rotation, uniform scale, shift) source → target."""
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0  # a reflection is not a similarity
    rotation = u @ np.diag(sign) @ vt
    variance = (src_c**2).sum() / len(src)
    scale = float((singular * sign).sum() / variance) if variance > 0 else 1.0
    shift = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, shift[:, None]])


def align_face(
    image: npt.NDArray[np.uint8], landmarks: npt.NDArray[np.float32], size: int = ALIGNED_SIZE
) -> npt.NDArray[np.uint8]:
    """The ``size`` x ``size`` aligned crop of one face (``landmarks``: ``(5, 2)``)."""
    template = ARCFACE_TEMPLATE * (size / ALIGNED_SIZE)
    matrix = similarity_transform(landmarks, template)
    crop = cv2.warpAffine(image, matrix, (size, size), borderValue=0.0)
    return np.asarray(crop, dtype=np.uint8)
