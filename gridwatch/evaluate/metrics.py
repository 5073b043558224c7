"""Verification and identification metrics, in the terms of NIST FRTE.

Verification (1:1, pairs): ROC AUC, equal error rate, TAR at a fixed FAR.
Identification (1:N, searches against a gallery):

- a *mated* search (the person is enrolled) is a hit at threshold ``t`` when the enrolled identity
  is the best candidate, scores ``>= t`` and beats the second-best identity by the margin; anything
  else, including a probe with no usable face, is a miss: FNIR = misses / mated searches;
- a *non-mated* search (the person is not enrolled) is a false positive when its best candidate
  scores ``>= t`` (and passes the margin); a probe with no usable face returns nobody:
  FPIR = false positives / non-mated searches.

With N non-mated searches the smallest FPIR that can be measured is 1/N: targets below that are
reported as unsupported, never extrapolated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FAR_TARGETS = (1e-2, 1e-3)
FPIR_TARGETS = (0.01, 0.003, 0.001)
THRESHOLD_DECIMALS = 4

FloatArray = npt.NDArray[np.float64]


def threshold_above(score: float) -> float:
    """The smallest threshold on the 4-decimal grid that a score of ``score`` does not reach."""
    step = 10.0**-THRESHOLD_DECIMALS
    return round(math.floor(score / step + 1e-9) * step + step, THRESHOLD_DECIMALS)


# --- verification ---------------------------------------------------------------------------


def verification(genuine: FloatArray, impostor: FloatArray, fars: Sequence[float] = FAR_TARGETS) -> dict[str, Any]:
    """ROC AUC, EER and TAR at each FAR from genuine and impostor pair scores."""
    n_gen, n_imp = len(genuine), len(impostor)
    result: dict[str, Any] = {"genuine_pairs": n_gen, "impostor_pairs": n_imp}
    if n_gen == 0 or n_imp == 0:
        reason = "needs both same-person and different-person pairs with a usable face on each photo"
        return result | {"roc_auc": None, "eer": None, "tar_at_far": [], "note": reason}
    from sklearn.metrics import roc_auc_score, roc_curve

    labels = np.concatenate([np.ones(n_gen), np.zeros(n_imp)])
    scores = np.concatenate([genuine, impostor])
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    fnr = 1.0 - tpr
    i = int(np.argmin(np.abs(fnr - fpr)))
    tar_at_far = []
    finest = 1.0 / n_imp
    for far in fars:
        entry: dict[str, Any] = {"far": far}
        usable = far if n_imp * far >= 1.0 - 1e-9 else finest
        if usable != far:
            entry |= {
                "supported": False,
                "note": f"{n_imp} impostor pairs measure FAR only down to 1/{n_imp} = {finest:.2g}; "
                f"TAR is given at that FAR instead",
            }
        else:
            entry["supported"] = True
        j = int(np.flatnonzero(fpr <= usable + 1e-12).max())
        entry |= {
            "at_far": round(usable, 6),
            "tar": round(float(tpr[j]), 4),
            "threshold": None if not np.isfinite(thresholds[j]) else round(float(thresholds[j]), 4),
        }
        tar_at_far.append(entry)
    return result | {
        "roc_auc": round(float(roc_auc_score(labels, scores)), 4),
        "eer": round(float((fnr[i] + fpr[i]) / 2.0), 4),
        "eer_threshold": None if not np.isfinite(thresholds[i]) else round(float(thresholds[i]), 4),
        "genuine_mean": round(float(genuine.mean()), 4),
        "impostor_mean": round(float(impostor.mean()), 4),
        "tar_at_far": tar_at_far,
    }


def verification_det(genuine: FloatArray, impostor: FloatArray) -> tuple[FloatArray, FloatArray]:
    """FMR and FNMR over every threshold (for the DET plot)."""
    from sklearn.metrics import roc_curve

    labels = np.concatenate([np.ones(len(genuine)), np.zeros(len(impostor))])
    fpr, tpr, _ = roc_curve(labels, np.concatenate([genuine, impostor]), drop_intermediate=False)
    return np.asarray(fpr, dtype=np.float64), np.asarray(1.0 - tpr, dtype=np.float64)


# --- identification -------------------------------------------------------------------------


@dataclass(frozen=True)
class Searches:
    """The outcome of every search, as parallel arrays; NaN means "no candidate".

    - ``mated_hit``: the score of the enrolled identity when it was the best candidate, else NaN
      (wrong identity first, no usable probe face, identity not enrolled);
    - ``mated_second``: the second-best identity's score (NaN: none);
    - ``nonmated_top`` / ``nonmated_second``: the best and second-best candidate's scores (NaN: the
      probe had no usable face).
    """

    mated_hit: FloatArray
    mated_second: FloatArray
    nonmated_top: FloatArray
    nonmated_second: FloatArray

    @property
    def mated(self) -> int:
        return len(self.mated_hit)

    @property
    def nonmated(self) -> int:
        return len(self.nonmated_top)

    def scores(self) -> FloatArray:
        values = np.concatenate([self.mated_hit, self.nonmated_top, self.mated_second, self.nonmated_second])
        return np.asarray(values[np.isfinite(values)], dtype=np.float64)


def _accepted(top: FloatArray, second: FloatArray, threshold: float, margin: float) -> npt.NDArray[np.bool_]:
    """The product's decision (``recognition.registries.decide``), vectorised."""
    with np.errstate(invalid="ignore"):
        reaches = np.nan_to_num(top, nan=-np.inf) >= threshold
        clear = np.isnan(second) | (np.nan_to_num(top, nan=-np.inf) - second >= margin)
    return reaches & clear


def fnir(searches: Searches, threshold: float, margin: float = 0.0) -> float:
    if searches.mated == 0:
        return float("nan")
    hits = _accepted(searches.mated_hit, searches.mated_second, threshold, margin)
    return float(1.0 - hits.mean())


def fpir(searches: Searches, threshold: float, margin: float = 0.0) -> float:
    if searches.nonmated == 0:
        return float("nan")
    return float(_accepted(searches.nonmated_top, searches.nonmated_second, threshold, margin).mean())


def at_threshold(searches: Searches, threshold: float, margin: float) -> dict[str, Any]:
    return {
        "threshold": threshold,
        "fpir": _round(fpir(searches, threshold)),
        "fnir": _round(fnir(searches, threshold)),
        "margin": margin,
        "fpir_with_margin": _round(fpir(searches, threshold, margin)),
        "fnir_with_margin": _round(fnir(searches, threshold, margin)),
    }


def threshold_for_fpir(searches: Searches, target: float) -> dict[str, Any]:
    """The lowest 4-decimal threshold whose FPIR (threshold rule alone) is at most ``target``."""
    n = searches.nonmated
    entry: dict[str, Any] = {"fpir": target, "nonmated": n}
    if n == 0:
        return entry | {"supported": False, "threshold": None, "fnir": None, "note": "no non-mated searches"}
    if n * target < 1.0 - 1e-9:
        return entry | {
            "supported": False,
            "threshold": None,
            "fnir": None,
            "note": f"{n} non-mated searches measure FPIR only down to 1/{n} = {1.0 / n:.2g}; "
            f"FPIR {target:g} needs at least {math.ceil(1.0 / target)}",
        }
    seen = searches.scores()
    allowed = math.floor(n * target + 1e-9)
    tops = np.sort(searches.nonmated_top[np.isfinite(searches.nonmated_top)])[::-1]
    if allowed >= len(tops):
        threshold = round(float(seen.min()), THRESHOLD_DECIMALS)
    else:
        threshold = threshold_above(float(tops[allowed]))
        if threshold > float(seen.max()):
            return entry | {
                "supported": False,
                "threshold": None,
                "fnir": None,
                "note": "this FPIR needs a threshold above every score the evaluation saw (FNIR would be 1)",
            }
    return entry | {
        "supported": True,
        "threshold": threshold,
        "fpir_observed": _round(fpir(searches, threshold)),
        "fnir": _round(fnir(searches, threshold)),
    }


def identification_det(searches: Searches) -> tuple[FloatArray, FloatArray, FloatArray]:
    """FPIR and FNIR at every distinct score (thresholds ascending), for the DET plot."""
    thresholds = np.unique(np.concatenate([searches.mated_hit, searches.nonmated_top]))
    thresholds = thresholds[np.isfinite(thresholds)]
    fpirs = np.array([fpir(searches, float(t)) for t in thresholds])
    fnirs = np.array([fnir(searches, float(t)) for t in thresholds])
    return thresholds, fpirs, fnirs


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)
