"""The recognizer on real photos moves the face, sighting and inference-time metrics."""

from __future__ import annotations

import datetime as dt
import uuid
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
from recognition.enroll import enrollment_sample
from recognition.quality import QualityGate
from recognition.recognizer import Recognizer, SourceInfo
from recognition.registries import Registries
from recognition.store import RegistryStore
from tests.support.db import sqlite_url
from tests.support.keys import site_keys
from tests.support.metrics import sample
from tests.support.paths import TESTDATA

FACES = TESTDATA / "faces"
# Its own registry name and source ids: the metrics registry is shared by the whole test session.
REGISTRY = f"metrics-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def registries(tmp_path: Path, analyzer: InsightFaceAnalyzer) -> Iterator[Registries]:
    config = RegistryConfig(name=REGISTRY, purpose="metrics test", legal_basis="test fixture", retention_days=1)
    store = RegistryStore(
        Database(sqlite_url(tmp_path / "gridwatch.sqlite3")), keys=site_keys(tmp_path), owns_database=True
    )
    with AuditLog(tmp_path / "audit.jsonl") as audit:
        regs = Registries([config], store, model_id=analyzer.model_id, dim=analyzer.embedding_dim, audit=audit)
        regs.load()
        # Someone enrolled: a source is covered (and its faces gated and searched) only by a non-empty registry.
        gate = QualityGate(QualityConfig())
        enrolled = enrollment_sample(analyzer, gate, (FACES / "biden" / "biden.jpg").read_bytes(), what="biden")
        regs.enroll(REGISTRY, "Test Person", [(enrolled.photo_sha256, enrolled.embedding)], actor="tester")
        yield regs
    store.close()


def inference_count(step: str) -> float:
    return sample("gridwatch_inference_seconds_count", step=step)


def test_a_match_moves_faces_sightings_and_inference_time(
    analyzer: InsightFaceAnalyzer, registries: Registries
) -> None:
    gate = QualityGate(QualityConfig())
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    recognizer = Recognizer(analyzer, gate, registries)
    before = {
        "detected": sample("gridwatch_faces_detected_total", source=camera),
        "embedded": sample("gridwatch_faces_embedded_total", source=camera),
        "sightings": sample("gridwatch_sightings_total", registry=REGISTRY, source_kind="camera"),
        **{step: inference_count(step) for step in ("detect", "embed", "search")},
    }

    photo = cv2.imread(str(FACES / "biden" / "biden2.jpg"))
    assert photo is not None
    image = np.asarray(photo, dtype=np.uint8)
    sightings = recognizer.recognize(
        image, SourceInfo(camera, SourceKind.CAMERA), captured_at=dt.datetime.now(dt.UTC)
    ).sightings

    assert len(sightings) == 1
    assert sample("gridwatch_faces_detected_total", source=camera) - before["detected"] == 1
    assert sample("gridwatch_faces_gated_total", source=camera) == 0
    assert sample("gridwatch_faces_embedded_total", source=camera) - before["embedded"] == 1
    assert sample("gridwatch_sightings_total", registry=REGISTRY, source_kind="camera") - before["sightings"] == 1
    for step in ("detect", "embed", "search"):
        assert inference_count(step) - before[step] >= 1, step
    assert sample("gridwatch_inference_seconds_sum", step="detect") > 0


def test_a_blurred_face_is_counted_as_gated_and_never_embedded(
    analyzer: InsightFaceAnalyzer, registries: Registries
) -> None:
    gate = QualityGate(QualityConfig())
    gate_id = f"gate-{uuid.uuid4().hex[:8]}"
    image = cv2.imread(str(FACES / "obama" / "obama.jpg"))
    assert image is not None
    blurred = np.asarray(cv2.GaussianBlur(image, (0, 0), sigmaX=12), dtype=np.uint8)
    before_gated = sample("gridwatch_faces_gated_total", source=gate_id)

    sightings = (
        Recognizer(analyzer, gate, registries)
        .recognize(blurred, SourceInfo(gate_id, SourceKind.GATE), captured_at=dt.datetime.now(dt.UTC))
        .sightings
    )

    assert sightings == []
    assert sample("gridwatch_faces_detected_total", source=gate_id) >= 1
    assert sample("gridwatch_faces_gated_total", source=gate_id) - before_gated == 1
    assert sample("gridwatch_faces_embedded_total", source=gate_id) == 0
