"""A pack's calibration: FMR and FNMR as functions of the threshold, from labelled photos.

A calibration is built from labelled photos: every pair of usable photos of two different people is
an impostor comparison, every pair of one person's photos a genuine one. FMR(t) is the share of
impostor comparisons scoring ``>= t``, FNMR(t) the share of genuine ones scoring ``< t``.

Impostor scores cluster by pair of people (look-alikes): which people a data set holds moves FMR
more than how many comparisons it has. The prediction is therefore the 95th percentile of FMR(t)
over resamples of the identities (``fmr_upper``), not the plain share (``fmr``, kept beside it).

With K impostor comparisons nothing below about 10/K can be measured. Above the last threshold
that still has ``TAIL_MIN_EXCEEDANCES`` impostor scores at or over it (``t0``), FMR is *extrapolated*
with an exponential tail anchored there: ``FMR(t) = FMR_upper(t0) * exp(-(t - t0) / s)``, ``s`` the
mean excess of the impostor scores over ``t0`` (the maximum-likelihood exponential fit of that tail).
Impostor cosine similarities of these recognisers fall off faster than an exponential (roughly
Gaussian), so the extrapolation errs towards more false matches, not fewer. The file says which
thresholds are measured and which are extrapolated.

The files shipped for each pack family live in ``recognition/calibrations/`` (package data).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from recognition.modelpack import ModelPackError

CALIBRATION_FORMAT = 1
CALIBRATIONS_DIR = Path(__file__).with_name("calibrations")
GRID_STEP = 0.01
# Fewer exceedances than this and the empirical FMR is noise: the tail model takes over.
TAIL_MIN_EXCEEDANCES = 10
BOOTSTRAP_RESAMPLES = 500
BOOTSTRAP_QUANTILE = 0.95

FloatArray = npt.NDArray[np.float64]


class CalibrationFileError(ModelPackError):
    """A calibration file is missing, malformed or for another recogniser; the message says which."""


@dataclass(frozen=True)
class PackCalibration:
    """FMR(t) and FNMR(t) of one recogniser, from the data named in ``source``."""

    backend: str
    pack: str
    recognizer: str
    recognizer_sha256: str
    created: str
    source: list[dict[str, Any]]
    counts: dict[str, int]
    grid: FloatArray  # thresholds, ascending, GRID_STEP apart
    fmr_measured: FloatArray  # share of impostor comparisons >= t (NaN above the measured range)
    fmr_upper: FloatArray  # its 95th percentile over resampled identities (NaN above the measured range)
    fnmr_measured: FloatArray  # share of genuine comparisons < t
    tail_from: float  # t0: above it FMR is extrapolated
    tail_fmr: float  # upper FMR at t0
    tail_scale: float  # s: mean excess of impostor scores over t0
    raw: dict[str, Any]

    def fmr(self, threshold: float) -> float:
        """Predicted false-match rate of one comparison at ``threshold``: the upper bound over identities,
        extrapolated above ``tail_from``. The prediction errs towards more false matches."""
        if threshold > self.tail_from:
            return float(self.tail_fmr * math.exp(-(threshold - self.tail_from) / self.tail_scale))
        return float(np.interp(threshold, self.grid, np.nan_to_num(self.fmr_upper, nan=0.0)))

    def fnmr(self, threshold: float) -> float:
        """Predicted false non-match rate of one genuine comparison at ``threshold`` (measured)."""
        return float(np.interp(threshold, self.grid, self.fnmr_measured))

    def extrapolated(self, threshold: float) -> bool:
        return threshold > self.tail_from

    @property
    def source_text(self) -> str:
        parts = [f"{s.get('name', '?')} ({s.get('identities', '?')} identities)" for s in self.source]
        return f"{' + '.join(parts)}, {self.created}"


def build_calibration(
    genuine: FloatArray,
    impostor: FloatArray,
    impostor_identities: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]],
    *,
    backend: str,
    pack: str,
    recognizer: str,
    recognizer_sha256: str,
    source: Sequence[dict[str, Any]],
    counts: dict[str, int],
    quality_gate: dict[str, Any],
    created: dt.date | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> dict[str, Any]:
    """The calibration document (JSON-ready) from genuine and impostor comparison scores.

    ``impostor_identities``: the two identities (0..k-1) of each impostor comparison, for the bound
    over identities (see ``identity_bootstrap_upper``)."""
    if len(genuine) == 0 or len(impostor) < TAIL_MIN_EXCEEDANCES:
        raise CalibrationFileError(
            f"a calibration needs genuine comparisons and at least {TAIL_MIN_EXCEEDANCES} impostor ones "
            f"(got {len(genuine)} and {len(impostor)})"
        )
    grid = np.round(np.arange(0.0, 1.0 + GRID_STEP / 2, GRID_STEP), 2)
    imp = np.sort(impostor)
    gen = np.sort(genuine)
    exceed = len(imp) - np.searchsorted(imp, grid - 1e-12, side="left")
    fmr = exceed / len(imp)
    upper = np.maximum(identity_bootstrap_upper(impostor, impostor_identities, grid, resamples=resamples), fmr)
    fnmr = np.searchsorted(gen, grid - 1e-12, side="left") / len(gen)
    measurable = exceed >= TAIL_MIN_EXCEEDANCES
    at = int(np.flatnonzero(measurable).max())
    t0 = float(grid[at])
    over = imp[imp >= t0 - 1e-12]
    scale = max(float((over - t0).mean()), 1e-3)
    return {
        "format": CALIBRATION_FORMAT,
        "backend": backend,
        "pack": pack,
        "recognizer": recognizer,
        "recognizer_sha256": recognizer_sha256,
        "created": (created or dt.date.today()).isoformat(),
        "source": list(source),
        "counts": dict(counts) | {"genuine_comparisons": len(gen), "impostor_comparisons": len(imp)},
        "quality_gate": quality_gate,
        "summary": {
            "genuine_mean": round(float(gen.mean()), 4),
            "impostor_mean": round(float(imp.mean()), 4),
            "impostor_max": round(float(imp.max()), 4),
            "genuine_min": round(float(gen.min()), 4),
        },
        "fmr": {
            "note": (
                f"fmr: measured on {len(imp)} impostor comparisons for thresholds up to {t0:.2f} (at least "
                f"{TAIL_MIN_EXCEEDANCES} scores at or above it). fmr_upper: the 95th percentile of FMR over "
                f"{resamples} resamples of the identities (impostor scores cluster by pair of people: a sample "
                "with other look-alikes gives another FMR); predictions use it. Above measured_up_to, FMR is an "
                "EXTRAPOLATION by the exponential tail, not a measurement"
            ),
            "measured_up_to": round(t0, 2),
            "bootstrap": {"resamples": resamples, "quantile": BOOTSTRAP_QUANTILE, "over": "identities"},
            "tail": {
                "model": "exponential",
                "extrapolation": True,
                "from": round(t0, 2),
                "fmr_at_from": float(fmr[at]),
                "fmr_upper_at_from": float(upper[at]),
                "scale": round(scale, 6),
                "formula": "FMR(t) = fmr_upper_at_from * exp(-(t - from) / scale) for t > from",
            },
        },
        "grid": [
            {
                "t": float(t),
                "fmr": None if not m else round(float(f), 8),
                "fmr_upper": None if not m else round(float(u), 8),
                "fnmr": round(float(n), 6),
            }
            for t, f, u, n, m in zip(grid, fmr, upper, fnmr, measurable, strict=True)
        ],
    }


def identity_bootstrap_upper(
    impostor: FloatArray,
    identities: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]],
    grid: FloatArray,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    quantile: float = BOOTSTRAP_QUANTILE,
    seed: int = 0,
) -> FloatArray:
    """FMR(t) at its ``quantile`` over resamples (with replacement) of the identities.

    Each resample weighs every pair of identities by how often both were drawn; a comparison of a
    person with themself is never an impostor one, so a pair drawn twice of one identity does not count.
    """
    a, b = identities
    k = int(max(a.max(), b.max())) + 1
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    pair = lo * k + hi
    exceed = np.zeros((k * k, len(grid)))
    total = np.bincount(pair, minlength=k * k).astype(np.float64)
    order = np.argsort(impostor)
    sorted_scores, sorted_pairs = impostor[order], pair[order]
    for j, t in enumerate(grid):
        start = int(np.searchsorted(sorted_scores, t - 1e-12, side="left"))
        exceed[:, j] = np.bincount(sorted_pairs[start:], minlength=k * k)
    rng = np.random.default_rng(seed)
    draws = np.empty((resamples, len(grid)))
    for r in range(resamples):
        w = np.bincount(rng.integers(0, k, k), minlength=k).astype(np.float64)
        weights = np.triu(np.outer(w, w), k=1).reshape(-1)
        denominator = float(weights @ total)
        draws[r] = (weights @ exceed) / denominator if denominator > 0 else 0.0
    return np.asarray(np.quantile(draws, quantile, axis=0), dtype=np.float64)


def parse_calibration(document: dict[str, Any], *, where: str = "calibration") -> PackCalibration:
    try:
        if document["format"] != CALIBRATION_FORMAT:
            raise CalibrationFileError(f"{where}: format {document['format']} (this gridwatch reads format 1)")
        rows = document["grid"]
        tail = document["fmr"]["tail"]
        return PackCalibration(
            backend=str(document["backend"]),
            pack=str(document["pack"]),
            recognizer=str(document["recognizer"]),
            recognizer_sha256=str(document["recognizer_sha256"]),
            created=str(document["created"]),
            source=list(document["source"]),
            counts={k: int(v) for k, v in document["counts"].items()},
            grid=np.array([r["t"] for r in rows], dtype=np.float64),
            fmr_measured=np.array([np.nan if r["fmr"] is None else r["fmr"] for r in rows], dtype=np.float64),
            fmr_upper=np.array([np.nan if r["fmr_upper"] is None else r["fmr_upper"] for r in rows], dtype=np.float64),
            fnmr_measured=np.array([r["fnmr"] for r in rows], dtype=np.float64),
            tail_from=float(tail["from"]),
            tail_fmr=float(tail["fmr_upper_at_from"]),
            tail_scale=float(tail["scale"]),
            raw=document,
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, CalibrationFileError):
            raise
        raise CalibrationFileError(f"{where}: not a calibration file ({type(exc).__name__}: {exc})") from exc


def read_calibration(path: Path) -> PackCalibration:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CalibrationFileError(f"{path}: cannot read ({exc.strerror})") from exc
    except json.JSONDecodeError as exc:
        raise CalibrationFileError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from exc
    return parse_calibration(document, where=str(path))


def write_calibration(document: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def shipped_calibration_path(backend: str) -> Path:
    """Where the calibration shipped for a pack family lives (next to the pack code, in the package)."""
    return CALIBRATIONS_DIR / f"{backend}.json"


def calibration_for(backend: str, recognizer_sha256: str, *, path: Path | None = None) -> PackCalibration:
    """The calibration of this recogniser: ``path`` (a site's own) or the one shipped for ``backend``.

    Raises ``CalibrationFileError`` when the file is missing or was made with another recogniser file:
    similarities of two recognisers are not comparable, so neither is their calibration.
    """
    file = path if path is not None else shipped_calibration_path(backend)
    calibration = read_calibration(file)
    if calibration.recognizer_sha256 != recognizer_sha256:
        raise CalibrationFileError(
            f"{file}: calibrated for recogniser {calibration.recognizer} "
            f"{calibration.recognizer_sha256[:12]}…, the pack in use has {recognizer_sha256[:12]}…; "
            "rebuild it with `gridwatch calibrate pack`"
        )
    return calibration
