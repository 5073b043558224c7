"""A pack's calibration (FMR and FNMR as functions of the threshold) and thresholds solved from it.

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

Searching a registry of N enrolled templates with F faces a day makes about ``N * F * FMR(t)``
false matches a day (each probe is compared with each template; the rare false matches are
independent). ``solve_threshold`` picks the lowest threshold that keeps that at or under a target.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gridwatch.core.config.registries import RegistryConfig
from gridwatch.core.config.root import GridwatchConfig
from recognition.modelpack import ModelPackError

log = logging.getLogger(__name__)

CALIBRATION_FORMAT = 1
CALIBRATIONS_DIR = Path(__file__).with_name("calibrations")
GRID_STEP = 0.01
# Fewer exceedances than this and the empirical FMR is noise: the tail model takes over.
TAIL_MIN_EXCEEDANCES = 10
BOOTSTRAP_RESAMPLES = 500
BOOTSTRAP_QUANTILE = 0.95
THRESHOLD_DECIMALS = 4
# The solved threshold never goes past this: above it FNMR is near 1 for every shipped pack.
MAX_SOLVED_THRESHOLD = 0.95

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


# --- thresholds from an operating point -------------------------------------------------------


@dataclass(frozen=True)
class OperatingPoint:
    """What a registry's threshold means, by the calibration."""

    threshold: float
    size: int
    faces_per_day: float
    false_alerts_per_day: float
    miss_rate: float  # FNMR at the threshold
    fmr: float
    extrapolated: bool  # FMR at the threshold comes from the tail model
    target: float | None = None  # max false alerts per day (auto thresholds)
    met: bool = True
    reason: str | None = None  # why the target cannot be met


def operating_point(
    calibration: PackCalibration, threshold: float, *, size: int, faces_per_day: float
) -> OperatingPoint:
    fmr = calibration.fmr(threshold)
    return OperatingPoint(
        threshold=threshold,
        size=size,
        faces_per_day=faces_per_day,
        false_alerts_per_day=size * faces_per_day * fmr,
        miss_rate=calibration.fnmr(threshold),
        fmr=fmr,
        extrapolated=calibration.extrapolated(threshold),
    )


def solve_threshold(
    calibration: PackCalibration, *, size: int, faces_per_day: float, max_false_alerts_per_day: float
) -> OperatingPoint:
    """The lowest threshold (4 decimals) with ``size * faces_per_day * FMR(t) <= max_false_alerts_per_day``.

    An empty registry is solved as a registry of one (it has no false alerts, but its first entry
    should not face a threshold of 0). When even ``MAX_SOLVED_THRESHOLD`` gives more false alerts
    than the target, that threshold is returned with ``met=False`` and the reason.
    """
    n = max(size, 1)
    comparisons = n * faces_per_day
    step = 10.0**-THRESHOLD_DECIMALS
    low, high = 0.0, MAX_SOLVED_THRESHOLD
    if comparisons * calibration.fmr(high) > max_false_alerts_per_day:
        point = operating_point(calibration, high, size=size, faces_per_day=faces_per_day)
        reason = (
            f"{max_false_alerts_per_day:g} false alerts a day cannot be met with {n} enrolled and "
            f"{faces_per_day:g} faces a day: even threshold {high} predicts {point.false_alerts_per_day:.3g} "
            f"(and misses {point.miss_rate:.0%} of genuine faces); raise the target, search fewer faces "
            "or split the registry"
        )
        return _with(point, target=max_false_alerts_per_day, met=False, reason=reason)
    # FMR(t) is non-increasing: bisect on the 4-decimal grid.
    while high - low > step / 2:
        mid = round((low + high) / 2, THRESHOLD_DECIMALS + 2)
        if comparisons * calibration.fmr(mid) <= max_false_alerts_per_day:
            high = mid
        else:
            low = mid
    threshold = math.ceil(high / step - 1e-6) * step
    threshold = round(min(threshold, MAX_SOLVED_THRESHOLD), THRESHOLD_DECIMALS)
    point = operating_point(calibration, threshold, size=size, faces_per_day=faces_per_day)
    return _with(point, target=max_false_alerts_per_day)


def needs_resolve(solved_size: int, size: int, *, tolerance: float = 0.10) -> bool:
    """True when the registry's size moved by more than ``tolerance`` since its threshold was solved."""
    base = max(solved_size, 1)
    return abs(max(size, 1) - base) > tolerance * base


def _with(point: OperatingPoint, **changes: Any) -> OperatingPoint:
    return replace(point, **changes)


# --- per registry -----------------------------------------------------------------------------

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class FacesPerDay:
    value: float | None
    how: str  # "configured", "estimated from N camera(s)" or why there is no figure


def faces_per_day(registry: RegistryConfig, config: GridwatchConfig) -> FacesPerDay:
    """The registry's ``faces_per_day``, or an estimate: the analysed frames a day of the cameras it covers,
    one face each (a busy camera's ceiling; a quiet one sees far fewer). Gates send no frame rate."""
    if registry.faces_per_day is not None:
        return FacesPerDay(registry.faces_per_day, "configured")
    covered = [c for c in config.cameras if "*" in registry.sources or c.id in registry.sources]
    gates = [g for g in config.gates if "*" in registry.sources or g.id in registry.sources]
    if not covered:
        why = "set faces_per_day: it covers only gates, which send no frame rate" if gates else "no sources"
        return FacesPerDay(None, why)
    value = sum(c.fps for c in covered) * SECONDS_PER_DAY
    note = f"estimated from the fps of {len(covered)} camera(s)"
    if gates:
        note += f"; {len(gates)} gate(s) not counted"
    return FacesPerDay(value, note)


def registry_point(
    calibration: PackCalibration, registry: RegistryConfig, *, size: int, faces: float | None
) -> OperatingPoint | None:
    """The registry's operating point: solved for an auto threshold, evaluated for a fixed one.

    None when the faces a day are unknown (an auto threshold cannot be solved then)."""
    n = max(size, registry.expected_size or 0)
    if faces is None:
        return None
    if registry.max_false_alerts_per_day is not None:
        return solve_threshold(
            calibration, size=n, faces_per_day=faces, max_false_alerts_per_day=registry.max_false_alerts_per_day
        )
    return operating_point(calibration, registry.threshold, size=n, faces_per_day=faces)


class AutoThresholds:
    """Solves the ``threshold: auto`` registries for their current size; thread-safe, no I/O.

    ``effective(config, size)`` is called on the search path: it returns the registry config with the
    solved threshold, solving again only when the config changed or the size moved by more than 10%.
    """

    def __init__(self, calibration: PackCalibration, faces: dict[str, FacesPerDay]) -> None:
        self._calibration = calibration
        self._faces = dict(faces)
        self._solved: dict[str, tuple[RegistryConfig, int, RegistryConfig]] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_config(cls, calibration: PackCalibration, config: GridwatchConfig) -> AutoThresholds:
        return cls(calibration, {r.name: faces_per_day(r, config) for r in config.registries})

    def reconfigure(self, config: GridwatchConfig) -> None:
        with self._lock:
            self._faces = {r.name: faces_per_day(r, config) for r in config.registries}
            self._solved.clear()

    def effective(self, config: RegistryConfig, size: int) -> RegistryConfig:
        if not config.auto_threshold:
            return config
        with self._lock:
            cached = self._solved.get(config.name)
            if cached is not None and cached[0] is config and not needs_resolve(cached[1], size):
                return cached[2]
            # A configured figure is read from the config itself, so that a reloaded value counts at once.
            faces = (
                FacesPerDay(config.faces_per_day, "configured")
                if config.faces_per_day is not None
                else self._faces.get(config.name, FacesPerDay(None, "not estimated: added after start"))
            )
            point = registry_point(self._calibration, config, size=size, faces=faces.value)
            if point is None:
                log.error(
                    "registry %s: threshold auto cannot be solved (%s); keeping %.4f",
                    config.name,
                    faces.how,
                    config.threshold,
                )
                solved = config
            else:
                solved = config.model_copy(update={"threshold": point.threshold})
                if point.met:
                    log.info(
                        "registry %s: threshold auto solved to %.4f for %d templates and %.0f faces/day: "
                        "%.3g false alerts/day expected (target %g), miss rate %.1f%%",
                        config.name,
                        point.threshold,
                        point.size,
                        point.faces_per_day,
                        point.false_alerts_per_day,
                        config.max_false_alerts_per_day,
                        100 * point.miss_rate,
                    )
                else:
                    log.error("registry %s: %s", config.name, point.reason)
            self._solved[config.name] = (config, size, solved)
            return solved
