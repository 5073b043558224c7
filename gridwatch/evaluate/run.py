"""One evaluation: acquire every face once, then score verification and identification per quality gate.

Identification protocol (identity folders only; pairs carry no identities):

- gallery: every identity with at least two photos enrols one photo, the first (by file name) that
  has exactly one face and passes the gate; if none does, the identity fails to enrol;
- mated searches: every other photo of those identities (a probe without a usable face, or of an
  identity that failed to enrol, is a miss);
- non-mated searches: (1) leave-one-out: every photo of each enrolled identity, searched against the
  gallery without that identity; (2) photos of identities with a single photo, against the whole
  gallery; (3) distractor faces (video frames, photos of people not enrolled), against the whole
  gallery. A probe without a usable face returns nobody (no false positive).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gridwatch.core.config.model import QualityConfig
from gridwatch.core.interfaces import FaceAnalyzer
from gridwatch.evaluate.acquire import DistractorSource, Sample, acquire_photo
from gridwatch.evaluate.datasets import Dataset
from gridwatch.evaluate.metrics import FloatArray, Searches
from recognition.quality import QualityGate

log = logging.getLogger(__name__)

NAN = float("nan")


@dataclass(frozen=True)
class GateSetting:
    name: str
    config: QualityConfig


def gate_settings(configured: QualityConfig) -> list[GateSetting]:
    """The configured gate and the gates that leave out one or more of its checks, to see what each adds."""
    off = {"max_yaw_deg": 90.0, "min_blur": 0.0}
    return [
        GateSetting("none", QualityConfig(min_face_px=8, min_det_score=0.0, max_yaw_deg=90.0, min_blur=0.0)),
        GateSetting("size+score", configured.model_copy(update=off)),
        GateSetting("size+score+yaw", configured.model_copy(update={"min_blur": 0.0})),
        GateSetting("size+score+blur", configured.model_copy(update={"max_yaw_deg": 90.0})),
        GateSetting("configured", configured),
    ]


@dataclass
class Acquired:
    """Every photo's sample, and the distractor faces; all in memory."""

    photos: dict[Path, Sample]
    distractors: list[Sample] = field(default_factory=list)
    distractor_sources: list[DistractorSource] = field(default_factory=list)


def acquire_dataset(analyzer: FaceAnalyzer, dataset: Dataset) -> dict[Path, Sample]:
    samples: dict[Path, Sample] = {}
    for i, photo in enumerate(dataset.photos, start=1):
        samples[photo.path] = acquire_photo(analyzer, photo.path)
        if i % 50 == 0:
            log.info("%d/%d photos", i, len(dataset.photos))
    return samples


def usable(sample: Sample, gate: QualityGate) -> bool:
    if sample.embedding is None or sample.measures is None:
        return False
    return bool(gate.judge(sample.measures).accepted[0])


def photo_counts(dataset: Dataset, samples: dict[Path, Sample], gate: QualityGate) -> dict[str, int]:
    """Failures to acquire: before the gate (no face, several faces, unreadable) and by the gate."""
    counts: Counter[str] = Counter()
    for photo in dataset.photos:
        sample = samples[photo.path]
        if sample.failure is not None:
            counts[sample.failure.value] += 1
            continue
        assert sample.measures is not None
        code = gate.judge(sample.measures).codes[0]
        counts[code.value if code is not None else "usable"] += 1
    keys = ("usable", "unreadable", "no_face", "several_faces", "too_small", "low_det_score", "too_much_yaw")
    return {k: counts.get(k, 0) for k in (*keys, "too_blurred")}


# --- verification ---------------------------------------------------------------------------


def verification_scores(
    dataset: Dataset, samples: dict[Path, Sample], gate: QualityGate
) -> tuple[FloatArray, FloatArray, int]:
    """Genuine and impostor scores; the number of pairs skipped for want of a usable face."""
    genuine: list[float] = []
    impostor: list[float] = []
    skipped = 0
    if dataset.kind == "pairs":
        pairs = [(p.a, p.b, p.same) for p in dataset.pairs]
    else:
        photos = dataset.photos
        pairs = [(a.path, b.path, a.identity == b.identity) for i, a in enumerate(photos) for b in photos[i + 1 :]]
    for a, b, same in pairs:
        sa, sb = samples[a], samples[b]
        if not (usable(sa, gate) and usable(sb, gate)):
            skipped += 1
            continue
        assert sa.embedding is not None
        assert sb.embedding is not None
        (genuine if same else impostor).append(float(sa.embedding @ sb.embedding))
    return np.array(genuine, dtype=np.float64), np.array(impostor, dtype=np.float64), skipped


# --- identification -------------------------------------------------------------------------


@dataclass
class IdentificationRun:
    searches: Searches
    counts: dict[str, Any]


def identification_searches(
    dataset: Dataset, samples: dict[Path, Sample], distractors: Sequence[Sample], gate: QualityGate
) -> IdentificationRun | None:
    if dataset.kind != "folders":
        return None
    by_identity: dict[str, list[Path]] = {}
    for photo in dataset.photos:
        assert photo.identity is not None
        by_identity.setdefault(photo.identity, []).append(photo.path)
    eligible = {who: paths for who, paths in by_identity.items() if len(paths) >= 2}
    single = [paths[0] for paths in by_identity.values() if len(paths) == 1]

    enrolled: dict[str, Path] = {}
    for who, paths in eligible.items():
        first_usable = next((p for p in paths if usable(samples[p], gate)), None)
        if first_usable is not None:
            enrolled[who] = first_usable
    names = sorted(enrolled)
    gallery = np.stack([_vector(samples[enrolled[w]]) for w in names]) if names else np.empty((0, 1))

    mated_hit: list[float] = []
    mated_second: list[float] = []
    for who, paths in eligible.items():
        enrolment = enrolled.get(who, paths[0])
        for path in paths:
            if path == enrolment:
                continue
            sample = samples[path]
            if who not in enrolled or not usable(sample, gate):
                mated_hit.append(NAN)
                mated_second.append(NAN)
                continue
            top, second, best = _search(gallery, _vector(sample))
            mated_hit.append(top if names[best] == who else NAN)
            mated_second.append(second)

    nonmated: list[tuple[float, float]] = []
    leave_one_out = 0
    if len(names) >= 2:
        for i, who in enumerate(names):
            others = np.delete(gallery, i, axis=0)
            for path in eligible[who]:
                leave_one_out += 1
                nonmated.append(_nonmated(others, samples[path], gate))
    for path in single:
        nonmated.append(_nonmated(gallery, samples[path], gate) if names else (NAN, NAN))
    for sample in distractors:
        nonmated.append(_nonmated(gallery, sample, gate) if names else (NAN, NAN))

    searches = Searches(
        mated_hit=np.array(mated_hit, dtype=np.float64),
        mated_second=np.array(mated_second, dtype=np.float64),
        nonmated_top=np.array([t for t, _ in nonmated], dtype=np.float64),
        nonmated_second=np.array([s for _, s in nonmated], dtype=np.float64),
    )
    counts = {
        "gallery_identities": len(names),
        "failed_to_enrol_identities": len(eligible) - len(names),
        "mated_searches": searches.mated,
        "nonmated_searches": searches.nonmated,
        "nonmated_leave_one_out": leave_one_out,
        "nonmated_unenrolled_photos": len(single),
        "nonmated_distractor_faces": len(distractors),
        "distractor_faces_usable": sum(usable(s, gate) for s in distractors),
    }
    return IdentificationRun(searches, counts)


def _vector(sample: Sample) -> FloatArray:
    assert sample.embedding is not None
    return np.asarray(sample.embedding, dtype=np.float64)


def _search(gallery: FloatArray, probe: FloatArray) -> tuple[float, float, int]:
    """Best score, second-best identity's score (NaN if none) and the best identity's row."""
    scores = gallery @ probe
    order = np.argsort(scores)[::-1]
    second = float(scores[order[1]]) if len(order) > 1 else NAN
    return float(scores[order[0]]), second, int(order[0])


def _nonmated(gallery: FloatArray, sample: Sample, gate: QualityGate) -> tuple[float, float]:
    if not usable(sample, gate) or len(gallery) == 0:
        return NAN, NAN
    top, second, _ = _search(gallery, _vector(sample))
    return top, second
