"""The gain of 2–3 enrolment photos over one: best template per person, same probes for every k."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gridwatch.core.config.model import QualityConfig
from gridwatch.evaluate.acquire import Sample
from gridwatch.evaluate.datasets import Dataset, Photo
from gridwatch.evaluate.templates import enrolment_gain
from recognition.quality import QualityGate, QualityMeasures

GOOD = QualityMeasures(
    face_px=np.array([120.0], np.float32),
    det_score=np.array([0.9], np.float32),
    yaw=np.array([0.0], np.float32),
    blur=np.array([100.0], np.float32),
)


def unit(v: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
    return (v / np.linalg.norm(v)).astype(np.float32)


def test_more_enrolment_photos_find_a_person_whose_first_photo_is_unlike_the_probes() -> None:
    rng = np.random.default_rng(7)
    photos, samples = [], {}
    for who in ("ann", "bob", "cy"):
        centre = unit(rng.standard_normal(64))
        odd = unit(rng.standard_normal(64))  # the first photo: the person years ago
        vectors = [odd] + [unit(centre + 0.2 * unit(rng.standard_normal(64))) for _ in range(5)]
        for i, vector in enumerate(vectors):
            path = Path(f"/data/{who}/{i}.jpg")
            photos.append(Photo(path, who))
            samples[path] = Sample(vector, GOOD, faces=1)
    dataset = Dataset("folders", Path("/data"), photos)
    gain = enrolment_gain(dataset, samples, QualityGate(QualityConfig()), threshold=0.45, margin=0.05)
    assert gain is not None
    assert gain["identities"] == 3
    assert gain["probes"] == 9  # photos 3..5 of each: the same probes for 1, 2 and 3 templates
    by_photos = {row["photos"]: row for row in gain["by_photos"]}
    assert by_photos[1]["fnir"] == 1.0  # the odd first photo matches none of the probes
    assert by_photos[2]["fnir"] == 0.0
    assert by_photos[3]["fnir"] == 0.0
    assert all(row["fpir"] == 0.0 for row in by_photos.values())


def test_pairs_give_no_enrolment_gain() -> None:
    dataset = Dataset("pairs", Path("/data/pairs.csv"), [])
    assert enrolment_gain(dataset, {}, QualityGate(QualityConfig()), 0.45, 0.05) is None
