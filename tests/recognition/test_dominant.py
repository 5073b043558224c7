"""The dominant face: a clear subject among several faces is used (and said so); faces alike in size are
refused with the reason; a terminal's FaceRect picks its face."""

from __future__ import annotations

import numpy as np
import pytest

from gridwatch.core.config.model import QualityConfig
from gridwatch.core.faces import Faces
from recognition.analyzer import InsightFaceAnalyzer
from recognition.dominant import dominant_face
from recognition.enroll import EnrollmentError, decode_image, enrollment_sample
from recognition.quality import QualityGate
from tests.support.paths import TESTDATA

TWO_ALIKE = TESTDATA / "faces" / "group" / "two_people.jpg"  # two faces of 155 and 150 px
ONE_LARGE = TESTDATA / "faces-dev" / "jerry_seinfeld" / "4.jpg"  # a 62 px face and a 13 px one behind


def faces_of(*boxes: tuple[float, float, float, float]) -> Faces:
    n = len(boxes)
    return Faces(
        boxes=np.array(boxes, dtype=np.float32).reshape(n, 4),
        scores=np.full(n, 0.9, np.float32),
        landmarks=np.zeros((n, 5, 2), np.float32),
    )


@pytest.mark.parametrize(
    ("boxes", "rect", "index", "reason"),
    [
        pytest.param([(0, 0, 100, 100)], None, 0, "one face", id="one"),
        pytest.param([(0, 0, 100, 100), (200, 0, 240, 40)], None, 0, "used the largest", id="large-and-small"),
        pytest.param([(0, 0, 100, 100), (200, 0, 290, 90)], None, None, "none clearly the subject", id="alike"),
        pytest.param([(0, 0, 100, 100), (200, 0, 290, 90)], (190, 0, 300, 100), 1, "FaceRect", id="rect"),
        pytest.param([(0, 0, 100, 100), (200, 0, 290, 90)], (400, 0, 500, 100), None, "none inside", id="rect-empty"),
        pytest.param([], None, None, "no face", id="none"),
    ],
)
def test_dominant_face_rules(
    boxes: list[tuple[float, float, float, float]],
    rect: tuple[float, float, float, float] | None,
    index: int | None,
    reason: str,
) -> None:
    faces = faces_of(*boxes) if boxes else Faces.empty()
    choice = dominant_face(faces, face_rect=rect)
    assert choice.index == index
    assert reason in choice.reason


def test_a_photo_with_one_large_face_is_enrolled_from_it(analyzer: InsightFaceAnalyzer) -> None:
    data = ONE_LARGE.read_bytes()
    image = decode_image(data)
    faces = analyzer.detect(image)
    assert len(faces) == 2
    choice = dominant_face(faces)
    assert choice.chosen
    assert "used the largest" in choice.reason
    sample = enrollment_sample(analyzer, QualityGate(QualityConfig()), data, what="4.jpg")
    alone = analyzer.embed(image, faces.select(np.array([choice.index], dtype=np.intp)))
    assert alone.embeddings is not None
    assert float(sample.embedding @ alone.embeddings[0]) > 0.999


def test_two_faces_alike_in_size_are_refused_with_the_reason(analyzer: InsightFaceAnalyzer) -> None:
    with pytest.raises(EnrollmentError, match=r"2 faces found, none clearly the subject .*use a photo of one person"):
        enrollment_sample(analyzer, QualityGate(QualityConfig()), TWO_ALIKE.read_bytes(), what="two_people.jpg")


def test_a_face_rect_picks_one_of_two_real_faces(analyzer: InsightFaceAnalyzer) -> None:
    faces = analyzer.detect(decode_image(TWO_ALIKE.read_bytes()))
    assert len(faces) == 2
    for i in range(2):
        x1, y1, x2, y2 = (float(v) for v in faces.boxes[i])
        pad = 10.0
        choice = dominant_face(faces, face_rect=(x1 - pad, y1 - pad, x2 + pad, y2 + pad))
        assert choice.index == i
        assert "FaceRect" in choice.reason


def test_the_reference_photo_of_a_dominant_face_enrolment_shows_no_bystander(analyzer: InsightFaceAnalyzer) -> None:
    data = ONE_LARGE.read_bytes()
    sample = enrollment_sample(analyzer, QualityGate(QualityConfig()), data, what="4.jpg")
    assert sample.dominant is not None
    assert "used the largest" in sample.dominant
    kept = sample.reference(data)
    assert kept != data
    assert len(analyzer.detect(decode_image(kept))) == 1  # the subject only: the face behind is covered
    single = (TESTDATA / "faces" / "biden" / "biden.jpg").read_bytes()
    alone = enrollment_sample(analyzer, QualityGate(QualityConfig()), single, what="biden.jpg")
    assert alone.dominant is None
    assert alone.reference(single) == single
