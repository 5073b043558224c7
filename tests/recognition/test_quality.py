"""The quality gate on real photos (size, blur, yaw) and the yaw estimate on known geometry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.model import QualityConfig
from gridwatch.core.config.registries import RegistryConfig
from gridwatch.core.db import Database
from gridwatch.core.events import SourceKind
from recognition.analyzer import InsightFaceAnalyzer
from recognition.enroll import EnrollmentError, enrollment_sample
from recognition.pose import NOSE_DEPTH, estimate_yaw
from recognition.quality import QualityGate, Rejection
from recognition.recognizer import Recognizer, SourceInfo
from recognition.registries import Registries
from recognition.store import RegistryStore
from tests.support.db import sqlite_url
from tests.support.keys import site_keys
from tests.support.paths import TESTDATA

FACES = TESTDATA / "faces"


def png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    image = cv2.imread(str(FACES / "obama" / "obama.jpg"))
    assert image is not None
    return image


def test_original_is_accepted_blurred_and_tiny_copies_are_refused(
    analyzer: InsightFaceAnalyzer, photo: np.ndarray
) -> None:
    gate = QualityGate(QualityConfig())
    sample = enrollment_sample(analyzer, gate, png(photo), what="original")
    assert sample.embedding.shape == (512,)

    blurred = cv2.GaussianBlur(photo, (0, 0), sigmaX=12)
    with pytest.raises(EnrollmentError, match="too blurred"):
        enrollment_sample(analyzer, gate, png(blurred), what="blurred")

    tiny = cv2.resize(photo, None, fx=0.1, fy=0.1, interpolation=cv2.INTER_AREA)
    with pytest.raises(EnrollmentError, match="too small"):
        enrollment_sample(analyzer, gate, png(tiny), what="tiny")


def test_verdict_reports_measures_and_codes(analyzer: InsightFaceAnalyzer, photo: np.ndarray) -> None:
    blurred = cv2.GaussianBlur(photo, (0, 0), sigmaX=12)
    gate = QualityGate(QualityConfig())
    sharp = gate.check(analyzer.detect(photo), photo)
    soft = gate.check(analyzer.detect(blurred), blurred)
    assert sharp.codes == [None]
    assert soft.codes == [Rejection.TOO_BLURRED]
    assert sharp.blur[0] > 10 * soft.blur[0]
    assert abs(float(sharp.yaw[0])) < 15  # a frontal portrait
    # Switching the check off accepts the blurred face.
    assert QualityGate(QualityConfig(min_blur=0)).check(analyzer.detect(blurred), blurred).codes == [None]


def test_turned_face_is_refused_by_the_yaw_limit(analyzer: InsightFaceAnalyzer, photo: np.ndarray) -> None:
    faces = analyzer.detect(photo)
    verdict = QualityGate(QualityConfig(max_yaw_deg=0.0)).check(faces, photo)
    assert verdict.codes == [Rejection.TOO_MUCH_YAW]
    assert "too much yaw" in (verdict.reasons[0] or "")


def landmarks_at(yaw_deg: float, roll_deg: float = 0.0, scale: float = 40.0) -> np.ndarray:
    """Project a 5-point head model turned by ``yaw_deg`` and rolled by ``roll_deg`` (orthographic)."""
    half = 1.0
    points = np.array([[-half, 0, 0], [half, 0, 0], [0, 1.0, NOSE_DEPTH * half], [-0.8, 2.0, 0.2], [0.8, 2.0, 0.2]])
    yaw, roll = np.radians(yaw_deg), np.radians(roll_deg)
    turn = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    tilt = np.array([[np.cos(roll), -np.sin(roll)], [np.sin(roll), np.cos(roll)]])
    projected = (points @ turn.T)[:, :2] @ tilt.T
    return (projected * scale + 200.0).astype(np.float32)


@pytest.mark.parametrize("yaw", [-70.0, -45.0, -20.0, 0.0, 10.0, 30.0, 60.0])
@pytest.mark.parametrize("roll", [0.0, 25.0])
def test_yaw_estimate_follows_the_head_model(yaw: float, roll: float) -> None:
    estimated = estimate_yaw(landmarks_at(yaw, roll)[None])
    assert estimated.shape == (1,)
    assert estimated[0] == pytest.approx(yaw, abs=1.0)


def test_yaw_of_no_faces_is_empty() -> None:
    assert estimate_yaw(np.empty((0, 5, 2), np.float32)).shape == (0,)


@pytest.fixture
def registries(tmp_path: Path, analyzer: InsightFaceAnalyzer) -> Iterator[Registries]:
    config = RegistryConfig(name="watch", purpose="test registry", legal_basis="test fixture", retention_days=1)
    store = RegistryStore(
        Database(sqlite_url(tmp_path / "gridwatch.sqlite3")), keys=site_keys(tmp_path), owns_database=True
    )
    with AuditLog(tmp_path / "audit.jsonl") as audit:
        regs = Registries([config], store, model_id=analyzer.model_id, dim=analyzer.embedding_dim, audit=audit)
        regs.load()
        yield regs
    store.close()


def test_every_sighting_reports_its_quality_values(analyzer: InsightFaceAnalyzer, registries: Registries) -> None:
    gate = QualityGate(QualityConfig())
    sample = enrollment_sample(analyzer, gate, (FACES / "biden" / "biden.jpg").read_bytes(), what="biden")
    registries.enroll("watch", "Test Person", [(sample.photo_sha256, sample.embedding)], actor="tester")
    image = cv2.imread(str(FACES / "biden" / "biden2.jpg"))
    sightings = (
        Recognizer(analyzer, gate, registries)
        .recognize(image, SourceInfo("cam-1", SourceKind.CAMERA), captured_at=dt.datetime.now(dt.UTC))
        .sightings
    )
    assert len(sightings) == 1
    quality = sightings[0].quality
    assert quality.blur is not None
    assert quality.blur > QualityConfig().min_blur
    assert quality.yaw is not None
    assert abs(quality.yaw) <= QualityConfig().max_yaw_deg
    assert quality.face_px > 40
