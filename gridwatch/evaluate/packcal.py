"""`gridwatch calibrate pack`: a pack's calibration (FMR(t), FNMR(t)) from labelled photos.

Every usable photo of every identity folder of every data set given is compared with every other:
pairs of one identity are genuine, all the others (across data sets too) impostor comparisons. A
photo counts when it shows exactly one face and passes the quality gate (the enrolment rule); the
others are counted as failures to acquire and left out. Embeddings stay in memory.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gridwatch.core.config.model import QualityConfig
from gridwatch.core.interfaces import FaceAnalyzer
from gridwatch.evaluate.acquire import acquire_photo
from gridwatch.evaluate.datasets import load_identity_folders
from gridwatch.evaluate.run import usable
from recognition.quality import QualityGate

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


@dataclass
class LabelledEmbeddings:
    """Usable faces' embeddings (rows) and their identities, plus what the data sets held."""

    vectors: npt.NDArray[np.float32]
    identities: list[str]
    source: list[dict[str, Any]]
    counts: dict[str, int]


def embed_identity_sets(
    analyzer: FaceAnalyzer, roots: Sequence[Path], quality: QualityConfig, *, exclude: Sequence[str] = ()
) -> LabelledEmbeddings:
    """Every usable face of the identity folders under ``roots`` (an identity is ``<root name>/<folder>``)."""
    gate = QualityGate(quality)
    vectors: list[npt.NDArray[np.float32]] = []
    identities: list[str] = []
    source: list[dict[str, Any]] = []
    photos = failed = 0
    for root in roots:
        dataset = load_identity_folders(root, exclude=exclude)
        digest = hashlib.sha256()
        used = 0
        for i, photo in enumerate(dataset.photos, start=1):
            digest.update(photo.path.read_bytes())
            sample = acquire_photo(analyzer, photo.path)
            if usable(sample, gate):
                assert sample.embedding is not None
                vectors.append(np.asarray(sample.embedding, dtype=np.float32))
                identities.append(f"{root.name}/{photo.identity}")
                used += 1
            else:
                failed += 1
            if i % 50 == 0:
                log.info("%s: %d/%d photos", root, i, len(dataset.photos))
        photos += len(dataset.photos)
        source.append(
            {
                "name": root.name,
                "identities": len(dataset.identities),
                "photos": len(dataset.photos),
                "usable_photos": used,
                "sha256_of_photos": digest.hexdigest(),
            }
        )
    counts = {
        "photos": photos,
        "usable_photos": len(identities),
        "failed_to_acquire_photos": failed,
        "identities": len(set(identities)),
    }
    matrix = np.stack(vectors) if vectors else np.empty((0, 0), np.float32)
    return LabelledEmbeddings(matrix, identities, source, counts)


@dataclass
class Comparisons:
    genuine: FloatArray
    impostor: FloatArray
    # The identities (0..k-1) of the two photos of each impostor comparison.
    impostor_identities: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]


def comparison_scores(vectors: npt.NDArray[np.float32], identities: Sequence[str]) -> Comparisons:
    """Genuine and impostor scores of every pair of rows (each pair once)."""
    names = sorted(set(identities))
    labels = np.array([names.index(who) for who in identities], dtype=np.int64)
    if len(labels) < 2:
        empty = np.empty(0, np.int64)
        return Comparisons(np.empty(0), np.empty(0), (empty, empty))
    scores = vectors.astype(np.float64) @ vectors.astype(np.float64).T
    first, second = np.triu_indices(len(labels), k=1)
    same = labels[first] == labels[second]
    values = scores[first, second]
    return Comparisons(values[same], values[~same], (labels[first][~same], labels[second][~same]))


def subset(embeddings: LabelledEmbeddings, keep: set[str]) -> tuple[npt.NDArray[np.float32], list[str]]:
    rows = [i for i, who in enumerate(embeddings.identities) if who in keep]
    return embeddings.vectors[rows], [embeddings.identities[i] for i in rows]
