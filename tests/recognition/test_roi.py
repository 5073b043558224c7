"""A camera's region of interest: a face whose box centre lies outside it never reaches the embedder."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.cameras import FileCameraConfig
from gridwatch.core.config.model import QualityConfig
from gridwatch.core.events import SourceKind
from recognition.analyzer import InsightFaceAnalyzer
from recognition.quality import QualityGate
from recognition.recognizer import CameraAnalysis, Recognizer, SourceInfo
from recognition.roi import inside_roi
from tests.recognition.test_tracks import PERFORMER, REGISTRIES, registries_knowing
from tests.support.cameras import LOCATION_CLASS, SIGNAGE_CHECKED
from tests.support.metrics import sample

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_box_centres_inside_outside_and_on_the_edge() -> None:
    left_half = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]
    faces = np.array([[10, 10, 30, 30], [300, 10, 340, 50], [180, 0, 220, 20]], dtype=np.float32)
    assert inside_roi(left_half, faces, 400, 200).tolist() == [True, False, True]


@pytest.mark.parametrize(
    ("roi", "error"),
    [
        ([(0, 0), (1, 0)], "at least 3"),
        ([(0, 0), (1.2, 0), (1, 1)], "less than or equal to 1"),
        ([(0, 0), (-0.1, 0), (1, 1)], "greater than or equal to 0"),
        ([(0, 0), (0.5, 0.5), (1, 1)], "no area"),
    ],
)
def test_a_region_of_interest_is_validated(roi: list[tuple[float, float]], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        FileCameraConfig(
            id="cam",
            kind="file",
            location_class=LOCATION_CLASS,
            signage_verified_at=SIGNAGE_CHECKED,
            path=Path("a.mp4"),
            roi=roi,
        )


@pytest.mark.parametrize("inside", [False, True])
def test_a_face_outside_the_region_is_dropped_before_embedding(
    analyzer: InsightFaceAnalyzer, tmp_path: Path, inside: bool
) -> None:
    image = cv2.imread(str(PERFORMER))
    assert image is not None
    frame = np.asarray(image, dtype=np.uint8)
    (face,) = analyzer.detect(frame).boxes
    _height, width = frame.shape[:2]
    centre_x = float(face[0] + face[2]) / 2 / width
    # A band left of the face's centre, or one that holds it.
    right = min(1.0, centre_x + 0.05) if inside else centre_x - 0.05
    roi = [(0.0, 0.0), (right, 0.0), (right, 1.0), (0.0, 1.0)]
    camera_id = f"roi-{uuid.uuid4().hex[:8]}"
    camera = CameraAnalysis.of(
        FileCameraConfig(
            id=camera_id,
            kind="file",
            location_class=LOCATION_CLASS,
            signage_verified_at=SIGNAGE_CHECKED,
            path=Path("a.mp4"),
            roi=roi,
        )
    )
    with AuditLog(tmp_path / "audit.jsonl") as audit:
        registries, store = registries_knowing(tmp_path, analyzer, PERFORMER, audit)
        try:
            recognizer = Recognizer(analyzer, QualityGate(QualityConfig()), registries)
            sightings = recognizer.recognize(
                frame, SourceInfo(camera_id, SourceKind.CAMERA), captured_at=NOW, camera=camera
            ).sightings
        finally:
            store.close()
    assert sample("gridwatch_faces_detected_total", source=camera_id) == 1
    assert sample("gridwatch_faces_outside_roi_total", camera=camera_id) == (0 if inside else 1)
    assert sample("gridwatch_faces_embedded_total", source=camera_id) == (1 if inside else 0)
    assert len(sightings) == (len(REGISTRIES) if inside else 0)
