"""What enrolling 2 or 3 photos of a person buys over 1 (the store keeps every photo's template; a
decision takes each person's best template).

Protocol (identity folders): identities with at least ``max_photos + 1`` usable photos; the first
``k`` usable photos (by file name) of each are its templates, for k = 1..max_photos; the probes are
the same for every k: each identity's photos after its first ``max_photos``. A mated search is a hit
when the probe's own identity is the best candidate at or above the threshold (and, "with margin",
beats the second-best identity by the margin); a non-mated search is the same probe against the
gallery without its identity, a false positive when its best candidate reaches the threshold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gridwatch.evaluate.acquire import Sample
from gridwatch.evaluate.datasets import Dataset
from gridwatch.evaluate.metrics import FloatArray
from gridwatch.evaluate.run import usable
from recognition.quality import QualityGate

MAX_PHOTOS = 3


def enrolment_gain(
    dataset: Dataset,
    samples: dict[Path, Sample],
    gate: QualityGate,
    threshold: float,
    margin: float,
    max_photos: int = MAX_PHOTOS,
) -> dict[str, Any] | None:
    if dataset.kind != "folders":
        return None
    by_identity: dict[str, list[FloatArray]] = {}
    for photo in dataset.photos:
        sample = samples[photo.path]
        if photo.identity is not None and usable(sample, gate):
            assert sample.embedding is not None
            by_identity.setdefault(photo.identity, []).append(np.asarray(sample.embedding, dtype=np.float64))
    names = sorted(who for who, vectors in by_identity.items() if len(vectors) > max_photos)
    result: dict[str, Any] = {"threshold": threshold, "margin": margin, "identities": len(names)}
    if len(names) < 2:
        return result | {"by_photos": [], "note": f"needs 2+ identities with {max_photos + 1}+ usable photos"}
    probes = np.stack([v for who in names for v in by_identity[who][max_photos:]])
    probe_owner = np.array([i for i, who in enumerate(names) for _ in by_identity[who][max_photos:]])
    rows = []
    for k in range(1, max_photos + 1):
        templates = np.stack([v for who in names for v in by_identity[who][:k]])
        template_owner = np.array([i for i, _ in enumerate(names) for _ in range(k)])
        scores = probes @ templates.T
        # Each identity's best template (what a decision uses).
        best = np.full((len(probes), len(names)), -np.inf)
        for j in range(len(names)):
            best[:, j] = scores[:, template_owner == j].max(axis=1)
        rows.append({"photos": k} | _rates(best, probe_owner, threshold, margin))
    return result | {"probes": len(probes), "by_photos": rows}


def _rates(best: FloatArray, owner: npt.NDArray[np.int64], threshold: float, margin: float) -> dict[str, Any]:
    n = len(owner)
    order = np.argsort(best, axis=1)[:, ::-1]
    rows = np.arange(n)
    top, second = best[rows, order[:, 0]], best[rows, order[:, 1]]
    hit = (order[:, 0] == owner) & (top >= threshold)
    clear = top - second >= margin
    others = best.copy()
    others[rows, owner] = -np.inf
    other_order = np.argsort(others, axis=1)[:, ::-1]
    o_top, o_second = others[rows, other_order[:, 0]], others[rows, other_order[:, 1]]
    false = o_top >= threshold
    o_clear = ~np.isfinite(o_second) | (o_top - o_second >= margin)
    return {
        "fnir": round(float(1 - hit.mean()), 6),
        "fnir_with_margin": round(float(1 - (hit & clear).mean()), 6),
        "fpir": round(float(false.mean()), 6),
        "fpir_with_margin": round(float((false & o_clear).mean()), 6),
    }
