"""Turning an enrolment photo into one embedding, or a clear refusal."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from gridwatch.core.interfaces import FaceAnalyzer
from recognition.dominant import dominant_face
from recognition.quality import QualityGate


class EnrollmentError(ValueError):
    """The photo cannot be enrolled; the message says why, in words for the operator."""


@dataclass(frozen=True, slots=True)
class EnrollmentSample:
    photo_sha256: str
    embedding: npt.NDArray[np.float32]
    # Why this face was used when the photo showed several (``recognition.dominant``), else None.
    dominant: str | None = None
    # The photo to keep as reference: with every other face covered when it showed several (a bystander
    # matches no registry and leaves no image), else None (the photo as given).
    reference_photo: bytes | None = None

    def reference(self, photo: bytes) -> bytes:
        """What to keep as the reference photo of ``photo`` (the bytes this sample was made from)."""
        return photo if self.reference_photo is None else self.reference_photo


def decode_image(data: bytes, *, what: str = "image") -> npt.NDArray[np.uint8]:
    if not data:
        raise EnrollmentError(f"{what}: empty file")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise EnrollmentError(f"{what}: not a decodable image (JPEG, PNG, ...) or truncated")
    return np.asarray(image, dtype=np.uint8)


def enrollment_sample(analyzer: FaceAnalyzer, gate: QualityGate, data: bytes, *, what: str) -> EnrollmentSample:
    image = decode_image(data, what=what)
    faces = analyzer.detect(image)
    if len(faces) == 0:
        raise EnrollmentError(f"{what}: no face found")
    dominant = reference = None
    if len(faces) > 1:
        # A face in the background does not make the photo unusable; two faces alike in size do.
        choice = dominant_face(faces)
        if choice.index is None:
            raise EnrollmentError(f"{what}: {choice.reason}")
        others = faces.select(np.arange(len(faces)) != choice.index)
        faces = faces.select(np.array([choice.index], dtype=np.intp))
        dominant, reference = choice.reason, _covered_jpeg(image, others.boxes)
    verdict = gate.check(faces, image)
    if not verdict.accepted[0]:
        raise EnrollmentError(f"{what}: face rejected by the quality gate: {verdict.reasons[0]}")
    embedded = analyzer.embed(image, faces)
    assert embedded.embeddings is not None
    return EnrollmentSample(hashlib.sha256(data).hexdigest(), embedded.embeddings[0], dominant, reference)


def _covered_jpeg(image: npt.NDArray[np.uint8], boxes: npt.NDArray[np.float32], *, grow: float = 0.25) -> bytes:
    """The image as JPEG with each box (grown by ``grow`` on every side, to cover hair and chin) filled grey."""
    covered = image.copy()
    height, width = covered.shape[:2]
    for x1, y1, x2, y2 in boxes.tolist():
        dx, dy = (x2 - x1) * grow, (y2 - y1) * grow
        left, top = max(int(x1 - dx), 0), max(int(y1 - dy), 0)
        right, bottom = min(int(x2 + dx) + 1, width), min(int(y2 + dy) + 1, height)
        covered[top:bottom, left:right] = 128
    ok, encoded = cv2.imencode(".jpg", covered, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise EnrollmentError("the photo cannot be re-encoded as JPEG")
    return encoded.tobytes()


def reference_jpeg(data: bytes, *, what: str = "photo", quality: int = 90) -> bytes:
    """The enrolment photo as a fresh JPEG: decoded and re-encoded, so no EXIF (GPS position, device,
    time) or other metadata of the original file is kept with the reference photo."""
    image = decode_image(data, what=what)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise EnrollmentError(f"{what}: cannot be re-encoded as JPEG")
    return encoded.tobytes()


def read_photo(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise EnrollmentError(f"{path}: cannot read ({exc.strerror})") from exc
