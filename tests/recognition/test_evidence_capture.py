"""Recognition on real photos: a match in a registry that keeps evidence leaves its face and frame, sealed;
an unmatched face and a registry that keeps none leave nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.model import QualityConfig
from gridwatch.core.config.registries import EvidenceConfig, RegistryConfig
from gridwatch.core.db import Database
from gridwatch.core.db.schema import evidence
from gridwatch.core.events import SourceKind
from gridwatch.core.registry_keys import RegistryKeys
from recognition.analyzer import InsightFaceAnalyzer
from recognition.enroll import enrollment_sample
from recognition.evidence import EvidenceCapture, EvidenceStore
from recognition.quality import QualityGate
from recognition.recognizer import Recognizer, SourceInfo
from recognition.registries import Registries
from recognition.store import RegistryStore
from tests.support.db import sqlite_url
from tests.support.keys import site_keys
from tests.support.paths import TESTDATA

FACES = TESTDATA / "faces"
KEEPING = "kept"
PLAIN = "plain"
CAMERA = SourceInfo(f"cam-{uuid.uuid4().hex[:8]}", SourceKind.CAMERA)


def read(path: Path) -> np.ndarray:
    photo = cv2.imread(str(path))
    assert photo is not None
    return np.asarray(photo, dtype=np.uint8)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    with Database(sqlite_url(tmp_path / "gridwatch.sqlite3")) as database:
        yield database


@pytest.fixture
def keys(tmp_path: Path) -> RegistryKeys:
    return site_keys(tmp_path)


@pytest.fixture
def store(database: Database, keys: RegistryKeys) -> EvidenceStore:
    return EvidenceStore(database, keys)


@pytest.fixture
def registries(
    tmp_path: Path, analyzer: InsightFaceAnalyzer, database: Database, store: EvidenceStore, keys: RegistryKeys
) -> Iterator[Registries]:
    configs = [
        RegistryConfig(
            name=KEEPING,
            purpose="evidence test",
            legal_basis="test fixture",
            retention_days=1,
            evidence=EvidenceConfig(keep=True, retention_days=7),
        ),
        RegistryConfig(name=PLAIN, purpose="evidence test", legal_basis="test fixture", retention_days=1),
    ]
    registry_store = RegistryStore(database, keys=keys, erasure=store)
    with AuditLog(tmp_path / "audit.jsonl") as audit:
        regs = Registries(configs, registry_store, model_id=analyzer.model_id, dim=analyzer.embedding_dim, audit=audit)
        regs.load()
        gate = QualityGate(QualityConfig())
        for registry, photo in ((KEEPING, "biden/biden.jpg"), (PLAIN, "kit_harington/kit1.jpeg")):
            enrolled = enrollment_sample(analyzer, gate, (FACES / photo).read_bytes(), what=photo)
            regs.enroll(registry, photo, [(enrolled.photo_sha256, enrolled.embedding)], actor="tester")
        yield regs


@pytest.fixture
def recognizer(analyzer: InsightFaceAnalyzer, registries: Registries, store: EvidenceStore) -> Recognizer:
    return Recognizer(analyzer, QualityGate(QualityConfig()), registries, evidence=EvidenceCapture(store))


def stored_objects(database: Database) -> int:
    query = select(func.count()).select_from(evidence)
    return int(database.transaction(lambda conn: conn.execute(query).scalar_one(), what="test count"))


def test_a_match_leaves_its_face_and_frame_sealed(
    recognizer: Recognizer, store: EvidenceStore, database: Database, keys: RegistryKeys
) -> None:
    frame = read(FACES / "biden" / "biden2.jpg")
    [sighting] = recognizer.recognize(frame, CAMERA, captured_at=dt.datetime.now(dt.UTC)).sightings

    assert sighting.registry == KEEPING
    assert sighting.evidence_ref is not None
    objects = store.objects(sighting_id=sighting.sighting_id)
    assert sorted(o.kind for o in objects) == ["face", "frame"]
    assert stored_objects(database) == 2
    key_id = keys.keyring(KEEPING).key_id  # the registry's data key, not the master key
    for stored in objects:
        assert (stored.registry, stored.person_id, stored.key_id) == (KEEPING, sighting.person_id, key_id)
        assert stored.expires_at - stored.created_at == dt.timedelta(days=7)
    [face] = [o for o in objects if o.kind == "face"]
    assert face.object_id == sighting.evidence_ref

    face_jpeg = store.get(sighting.evidence_ref, registry=KEEPING, person_id=sighting.person_id)
    face_image = cv2.imdecode(np.frombuffer(face_jpeg, np.uint8), cv2.IMREAD_COLOR)
    [frame_object] = [o for o in objects if o.kind == "frame"]
    frame_jpeg = store.get(frame_object.object_id, registry=KEEPING, person_id=sighting.person_id)
    frame_image = cv2.imdecode(np.frombuffer(frame_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert frame_image.shape == frame.shape
    assert face_image.shape[0] < frame.shape[0] or face_image.shape[1] < frame.shape[1]


def test_an_unmatched_face_leaves_nothing(recognizer: Recognizer, database: Database) -> None:
    recognition = recognizer.recognize(read(FACES / "obama" / "obama.jpg"), CAMERA, captured_at=dt.datetime.now(dt.UTC))
    assert recognition.sightings == []
    assert recognizer.stats.faces_searched >= 1  # the face was searched, and matched nobody
    assert stored_objects(database) == 0


def test_a_match_in_a_registry_that_keeps_no_evidence_leaves_nothing(
    recognizer: Recognizer, database: Database
) -> None:
    [sighting] = recognizer.recognize(
        read(FACES / "kit_harington" / "kit2.jpeg"), CAMERA, captured_at=dt.datetime.now(dt.UTC)
    ).sightings
    assert sighting.registry == PLAIN
    assert sighting.evidence_ref is None
    assert stored_objects(database) == 0


def test_erasing_the_person_erases_the_evidence(
    recognizer: Recognizer, registries: Registries, database: Database
) -> None:
    [sighting] = recognizer.recognize(
        read(FACES / "biden" / "biden2.jpg"), CAMERA, captured_at=dt.datetime.now(dt.UTC)
    ).sightings
    assert stored_objects(database) == 2
    registries.remove(sighting.person_id, actor="tester")
    assert stored_objects(database) == 0


def test_a_failed_write_loses_the_evidence_not_the_sighting(
    analyzer: InsightFaceAnalyzer, registries: Registries, database: Database
) -> None:
    # A store without the data key cannot seal: the sighting still goes out, without evidence.
    recognizer = Recognizer(
        analyzer, QualityGate(QualityConfig()), registries, evidence=EvidenceCapture(EvidenceStore(database))
    )
    [sighting] = recognizer.recognize(
        read(FACES / "biden" / "biden2.jpg"), CAMERA, captured_at=dt.datetime.now(dt.UTC)
    ).sightings
    assert sighting.evidence_ref is None
    assert stored_objects(database) == 0
