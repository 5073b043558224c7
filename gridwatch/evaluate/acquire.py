"""Faces → embeddings with the product's own parts: the pack's detector and embedder, the quality
gate's measures, the enrolment rule "exactly one face per photo".

Every face found is embedded, even one the configured gate would refuse, so that one run can
compare gates (``QualityGate.judge`` on the stored measures). Embeddings live in memory only.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from gridwatch.core.interfaces import FaceAnalyzer
from recognition.dominant import dominant_face
from recognition.enroll import EnrollmentError, decode_image, read_photo
from recognition.quality import QualityMeasures, measure

log = logging.getLogger(__name__)


class AcquireFailure(enum.StrEnum):
    """Why a photo gave no face to compare, before the quality gate."""

    UNREADABLE = "unreadable"
    NO_FACE = "no_face"
    SEVERAL_FACES = "several_faces"


@dataclass(frozen=True, slots=True)
class Sample:
    """One face: its embedding and quality values (or why there is none)."""

    embedding: npt.NDArray[np.float32] | None
    measures: QualityMeasures | None  # one face
    failure: AcquireFailure | None = None
    faces: int = 0
    dominant: str | None = None  # why this face was used among several (recognition.dominant), else None


def acquire_photo(analyzer: FaceAnalyzer, path: Path) -> Sample:
    """A photo's subject (the enrolment rule): its only face, or the dominant one among several; a photo
    whose faces are alike in size fails as ``several_faces``."""
    try:
        image = decode_image(read_photo(path), what=str(path))
    except EnrollmentError as exc:
        log.warning("%s", exc)
        return Sample(None, None, AcquireFailure.UNREADABLE)
    faces = analyzer.detect(image)
    if len(faces) == 0:
        return Sample(None, None, AcquireFailure.NO_FACE)
    dominant = None
    if len(faces) > 1:
        choice = dominant_face(faces)
        if choice.index is None:
            return Sample(None, None, AcquireFailure.SEVERAL_FACES, faces=len(faces))
        faces, dominant = faces.select(np.array([choice.index], dtype=np.intp)), choice.reason
    embedded = analyzer.embed(image, faces)
    assert embedded.embeddings is not None
    return Sample(embedded.embeddings[0], measure(image, faces), faces=1, dominant=dominant)


def all_faces(analyzer: FaceAnalyzer, image: npt.NDArray[np.uint8]) -> list[Sample]:
    """Every face of an image (distractors: each face is a search of a person not enrolled)."""
    faces = analyzer.detect(image)
    if len(faces) == 0:
        return []
    embedded = analyzer.embed(image, faces)
    assert embedded.embeddings is not None
    measures = measure(image, faces)
    return [Sample(embedded.embeddings[i], _one(measures, i), faces=1) for i in range(len(faces))]


@dataclass(frozen=True, slots=True)
class DistractorSource:
    """Where distractor faces came from, for the report."""

    path: str
    kind: str  # "video" or "photo"
    images: int
    faces: int
    frames: str | None = None  # the frame ranges used, for videos


def video_distractors(
    analyzer: FaceAnalyzer,
    clip: Path,
    *,
    ranges: Sequence[tuple[int, int]] | None,
    every: int,
) -> tuple[list[Sample], DistractorSource]:
    """Faces from every ``every``-th frame of ``clip`` inside ``ranges`` (``[start, end)`` frame numbers)."""
    samples: list[Sample] = []
    frames = 0
    for _, image in _frames(clip, ranges, every):
        frames += 1
        samples += all_faces(analyzer, image)
    if frames == 0:
        raise OSError(f"{clip}: no frames read (not a video, or the frame ranges are past its end)")
    label = None if ranges is None else ",".join(f"{a}:{b}" for a, b in ranges)
    return samples, DistractorSource(str(clip), "video", frames, len(samples), label)


def photo_distractors(analyzer: FaceAnalyzer, path: Path) -> tuple[list[Sample], DistractorSource]:
    """Every face of a photo, or of every photo in a folder."""
    from gridwatch.evaluate.datasets import IMAGE_SUFFIXES

    files = sorted(f for f in path.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES) if path.is_dir() else [path]
    samples: list[Sample] = []
    for file in files:
        try:
            image = decode_image(read_photo(file), what=str(file))
        except EnrollmentError as exc:
            raise OSError(str(exc)) from exc
        samples += all_faces(analyzer, image)
    return samples, DistractorSource(str(path), "photo", len(files), len(samples))


def _frames(
    clip: Path, ranges: Sequence[tuple[int, int]] | None, every: int
) -> Iterator[tuple[int, npt.NDArray[np.uint8]]]:
    if not clip.is_file():
        raise OSError(f"{clip}: no such video file")
    capture = cv2.VideoCapture(str(clip))
    try:
        if not capture.isOpened():
            raise OSError(f"{clip}: cannot open as a video")
        last = max(b for _, b in ranges) if ranges else None
        index = 0
        while last is None or index < last:
            ok, image = capture.read()
            if not ok:
                break
            inside = ranges is None or any(a <= index < b for a, b in ranges)
            if inside and index % every == 0:
                yield index, np.asarray(image, dtype=np.uint8)
            index += 1
    finally:
        capture.release()


def parse_frame_ranges(text: str) -> list[tuple[int, int]]:
    """``"0:20,82:211"`` → ``[(0, 20), (82, 211)]`` (start included, end excluded)."""
    ranges = []
    for part in text.split(","):
        start, sep, end = part.strip().partition(":")
        if not sep or not start.isdigit() or not end.isdigit() or int(start) >= int(end):
            raise ValueError(f"bad frame range {part.strip()!r}: expected START:END with START < END, e.g. 0:20")
        ranges.append((int(start), int(end)))
    return ranges


def _one(measures: QualityMeasures, i: int) -> QualityMeasures:
    return QualityMeasures(
        face_px=measures.face_px[i : i + 1],
        det_score=measures.det_score[i : i + 1],
        yaw=measures.yaw[i : i + 1],
        blur=measures.blur[i : i + 1],
    )
