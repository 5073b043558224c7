"""Enrolment on real photos: refusals, then enrol → match → remove → forgotten."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from gridwatch.core.audit import AuditLog, verify
from gridwatch.core.config.model import QualityConfig
from gridwatch.core.config.registries import RegistryConfig
from recognition.analyzer import InsightFaceAnalyzer
from recognition.enroll import EnrollmentError, enrollment_sample
from recognition.quality import QualityGate
from recognition.registries import Registries, UnknownPersonError
from recognition.store import RegistryStore
from tests.support.db import Databases
from tests.support.paths import TESTDATA

FACES = TESTDATA / "faces"


def no_face_jpeg() -> bytes:
    """A real JPEG of a textured scene with no face in it."""
    rng = np.random.default_rng(3)
    image = cv2.GaussianBlur(rng.integers(0, 255, (360, 480, 3), dtype=np.uint8), (9, 9), 0)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes()


@pytest.fixture
def registries(tmp_path: Path, analyzer: InsightFaceAnalyzer, databases: Databases) -> Iterator[Registries]:
    config = RegistryConfig(
        name="watch", purpose="test registry", legal_basis="test fixture", retention_days=30, threshold=0.45
    )
    store = RegistryStore(databases(), keys=databases.keys())
    with AuditLog(tmp_path / "audit.jsonl") as audit:
        regs = Registries([config], store, model_id=analyzer.model_id, dim=analyzer.embedding_dim, audit=audit)
        regs.load()
        yield regs
    store.close()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(lambda: (FACES / "group" / "two_people.jpg").read_bytes(), "2 faces found", id="two-faces"),
        pytest.param(no_face_jpeg, "no face found", id="no-face"),
        pytest.param(lambda: b"\xff\xd8\xff\xe0 truncated", "not a decodable image", id="corrupt"),
        pytest.param(lambda: b"", "empty file", id="empty"),
    ],
)
def test_bad_photos_are_refused(analyzer: InsightFaceAnalyzer, data, expected: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EnrollmentError, match=expected):
        enrollment_sample(analyzer, QualityGate(QualityConfig()), data(), what="photo")


def test_tiny_face_is_refused_by_the_quality_gate(analyzer: InsightFaceAnalyzer) -> None:
    image = cv2.imread(str(FACES / "obama" / "obama.jpg"))
    small = cv2.resize(image, None, fx=0.12, fy=0.12, interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".png", small)
    assert ok
    with pytest.raises(EnrollmentError, match="too small"):
        enrollment_sample(analyzer, QualityGate(QualityConfig(min_face_px=40)), data.tobytes(), what="tiny")


def test_enrol_match_remove_forgets(analyzer: InsightFaceAnalyzer, registries: Registries, tmp_path: Path) -> None:
    gate = QualityGate(QualityConfig())
    sample = enrollment_sample(analyzer, gate, (FACES / "biden" / "biden.jpg").read_bytes(), what="biden.jpg")
    person = registries.enroll("watch", "Test Person", [(sample.photo_sha256, sample.embedding)], actor="tester")
    assert person.expires_at - person.enrolled_at == dt.timedelta(days=30)

    probe = enrollment_sample(analyzer, gate, (FACES / "biden" / "biden2.jpg").read_bytes(), what="biden2.jpg")
    stranger = enrollment_sample(analyzer, gate, (FACES / "obama" / "obama.jpg").read_bytes(), what="obama.jpg")
    matches = registries.match(np.stack([probe.embedding, stranger.embedding]), "any-camera")
    assert [m.person_id for m in matches[0]] == [person.person_id]
    assert matches[1] == []

    registries.remove(person.person_id, actor="tester")
    assert registries.match(probe.embedding[None, :], "any-camera") == [[]]
    assert registries.size("watch") == 0
    with pytest.raises(UnknownPersonError):
        registries.remove(person.person_id, actor="tester")
    # A fresh index rebuilt from the store forgets too.
    registries.load()
    assert registries.size("watch") == 0

    actions = [json.loads(line)["action"] for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert actions == ["registry.enroll", "registry.remove"]
    assert verify(tmp_path / "audit.jsonl").ok


def test_expired_entries_are_purged(analyzer: InsightFaceAnalyzer, registries: Registries) -> None:
    sample = enrollment_sample(
        analyzer,
        QualityGate(QualityConfig()),
        (FACES / "kit_harington" / "kit1.jpeg").read_bytes(),
        what="kit1",
    )
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
    registries.enroll("watch", "Old Entry", [(sample.photo_sha256, sample.embedding)], actor="tester", now=long_ago)
    assert registries.size("watch") == 1
    purged = registries.purge_expired()
    assert [p.display_name for p in purged] == ["Old Entry"]
    assert registries.size("watch") == 0
