"""Real models on real photos: same person above the default threshold, different people below."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest

from gridwatch.core.config.registries import RegistryConfig
from gridwatch.core.faces import Faces
from recognition.analyzer import InsightFaceAnalyzer
from tests.support.paths import TESTDATA

FACES = TESTDATA / "faces"
DEFAULT_THRESHOLD = RegistryConfig.model_fields["threshold"].default


def manifest() -> dict[str, list[str]]:
    """Every single-face photo of the shared test data, by identity."""
    people: dict[str, list[str]] = {}
    with (FACES / "manifest.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            people.setdefault(row["identity"], []).append(row["path"])
    return people


def embed_one(analyzer: InsightFaceAnalyzer, path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, path
    faces = analyzer.detect(image)
    assert len(faces) == 1, f"{path}: {len(faces)} faces"
    embedded = analyzer.embed(image, faces)
    assert embedded.embeddings is not None
    return embedded.embeddings[0]


@pytest.fixture(scope="module")
def embeddings(analyzer: InsightFaceAnalyzer) -> dict[str, list[np.ndarray]]:
    return {who: [embed_one(analyzer, FACES / p) for p in paths] for who, paths in manifest().items()}


def test_embeddings_are_unit_vectors(embeddings: dict[str, list[np.ndarray]]) -> None:
    for vectors in embeddings.values():
        for v in vectors:
            assert v.shape == (512,)
            assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-4)


def test_same_person_scores_above_threshold(embeddings: dict[str, list[np.ndarray]]) -> None:
    for who, vectors in embeddings.items():
        for a, b in itertools.combinations(vectors, 2):
            assert float(a @ b) >= DEFAULT_THRESHOLD, who


def test_different_people_score_below_threshold(embeddings: dict[str, list[np.ndarray]]) -> None:
    for (who_a, va), (who_b, vb) in itertools.combinations(embeddings.items(), 2):
        for a in va:
            for b in vb:
                assert float(a @ b) < DEFAULT_THRESHOLD, (who_a, who_b)


def test_group_photo_gives_two_faces_with_landmarks(analyzer: InsightFaceAnalyzer) -> None:
    image = cv2.imread(str(FACES / "group" / "two_people.jpg"))
    faces = analyzer.detect(image)
    assert len(faces) == 2
    assert faces.landmarks.shape == (2, 5, 2)
    assert faces.embeddings is None
    embedded = analyzer.embed(image, faces)
    assert embedded.embeddings is not None
    assert embedded.embeddings.shape == (2, 512)


def test_faces_rejects_inconsistent_shapes() -> None:
    with pytest.raises(ValueError, match="scores"):
        Faces(np.zeros((2, 4), np.float32), np.zeros(3, np.float32), np.zeros((2, 5, 2), np.float32))
