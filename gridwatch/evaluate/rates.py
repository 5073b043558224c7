"""Rates at the operating point, for the report: measured at the threshold, predicted by the pack's
calibration, failures to acquire, and per-group rates (NISTIR 8280's demographic differentials).

Per group: a genuine pair counts for its group when both photos carry it; an impostor pair counts
for a group when both photos carry it (same-group impostors, the comparisons that matter for
false matches within a group); pairs across two groups are reported together as ``mixed``.
The largest ratio between groups is the highest rate over the lowest; it is null when the lowest
is 0 (then the note says so), as a ratio to 0 means nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gridwatch.evaluate.acquire import Sample
from gridwatch.evaluate.datasets import Dataset
from gridwatch.evaluate.metrics import FloatArray
from gridwatch.evaluate.run import usable
from recognition.calibration import PackCalibration
from recognition.quality import QualityGate

MIXED = "mixed"


def at_threshold_rates(genuine: FloatArray, impostor: FloatArray, threshold: float) -> dict[str, Any]:
    """FNMR and FMR of the pairs at ``threshold`` (a pair matches at ``score >= threshold``)."""
    return {
        "threshold": threshold,
        "fnmr": None if len(genuine) == 0 else round(float((genuine < threshold).mean()), 6),
        "fmr": None if len(impostor) == 0 else round(float((impostor >= threshold).mean()), 8),
        "genuine": len(genuine),
        "impostor": len(impostor),
    }


def calibration_prediction(
    calibration: PackCalibration | None, threshold: float, *, note: str | None = None
) -> dict[str, Any]:
    if calibration is None:
        return {
            "pack": None,
            "source": None,
            "fnmr_at_threshold": None,
            "fmr_at_threshold": None,
            "note": note or "no calibration",
        }
    return {
        "pack": calibration.pack,
        "source": calibration.source_text,
        "fnmr_at_threshold": round(calibration.fnmr(threshold), 6),
        "fmr_at_threshold": float(f"{calibration.fmr(threshold):.4g}"),
        "fmr_extrapolated": calibration.extrapolated(threshold),
    }


def failure_to_acquire(
    dataset: Dataset, samples: dict[Path, Sample], gate: QualityGate, pairs_skipped: int, pairs_total: int
) -> dict[str, Any]:
    """Share of photos without a usable face (none, several, unreadable, refused by the gate) and of pairs
    left out for it."""
    failed = sum(not usable(samples[p.path], gate) for p in dataset.photos)
    photos = len(dataset.photos)
    return {
        "photos": round(failed / photos, 6) if photos else None,
        "pairs": round(pairs_skipped / pairs_total, 6) if pairs_total else None,
        "photos_failed": failed,
        "pairs_failed": pairs_skipped,
    }


def group_rates(
    dataset: Dataset, samples: dict[Path, Sample], gate: QualityGate, threshold: float
) -> dict[str, Any] | None:
    """Per-group FNMR and FMR at ``threshold``; None when the pairs carry no groups."""
    if dataset.kind != "pairs" or not any(p.group_a or p.group_b for p in dataset.pairs):
        return None
    scores: dict[str, tuple[list[float], list[float]]] = {}
    for pair in dataset.pairs:
        sa, sb = samples[pair.a], samples[pair.b]
        if not (usable(sa, gate) and usable(sb, gate)):
            continue
        assert sa.embedding is not None
        assert sb.embedding is not None
        group = pair.group_a if pair.group_a == pair.group_b and pair.group_a else MIXED
        genuine, impostor = scores.setdefault(group, ([], []))
        (genuine if pair.same else impostor).append(float(sa.embedding @ sb.embedding))
    groups = {
        name: at_threshold_rates(np.array(g, dtype=np.float64), np.array(i, dtype=np.float64), threshold)
        for name, (g, i) in sorted(scores.items())
    }
    compared = {k: v for k, v in groups.items() if k != MIXED}
    return {
        "threshold": threshold,
        "groups": groups,
        "largest_ratio": {
            "fnmr": _ratio([v["fnmr"] for v in compared.values()]),
            "fmr": _ratio([v["fmr"] for v in compared.values()]),
        },
        "note": "genuine and impostor pairs within one group; pairs across groups are under 'mixed' and not "
        "in the ratios; a ratio is null when fewer than two groups have the rate or the lowest is 0",
    }


def _ratio(rates: list[float | None]) -> float | None:
    known = [r for r in rates if r is not None]
    if len(known) < 2 or min(known) == 0:
        return None
    return round(max(known) / min(known), 4)
