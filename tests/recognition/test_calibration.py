"""A pack's calibration: measured FMR/FNMR, the bound over identities, the marked extrapolation."""

from __future__ import annotations

import itertools
import math

import numpy as np

from recognition.calibration import (
    PackCalibration,
    build_calibration,
    parse_calibration,
    read_calibration,
    shipped_calibration_path,
)


def synthetic(seed: int = 1, identities: int = 40, impostors: int = 20000) -> PackCalibration:
    """Impostors ~ N(0, 0.08), genuine ~ N(0.55, 0.12): roughly an ArcFace pack's shape."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, identities, impostors)
    b = (a + rng.integers(1, identities, impostors)) % identities
    document = build_calibration(
        rng.normal(0.55, 0.12, 2000),
        rng.normal(0.0, 0.08, impostors),
        (a.astype(np.int64), b.astype(np.int64)),
        backend="insightface",
        pack="synthetic",
        recognizer="r.onnx",
        recognizer_sha256="0" * 64,
        source=[{"name": "synthetic", "identities": identities}],
        counts={"photos": 0},
        quality_gate={},
        resamples=100,
    )
    return parse_calibration(document)


CAL = synthetic()


def test_fmr_is_measured_up_to_the_tail_and_marked_as_extrapolated_above() -> None:
    tail = CAL.raw["fmr"]["tail"]
    assert tail["extrapolation"] is True
    assert "EXTRAPOLATION" in CAL.raw["fmr"]["note"]
    # Measured rows stop where fewer than 10 impostor scores reach the threshold.
    rows = CAL.raw["grid"]
    assert rows[-1]["fmr"] is None
    assert all(r["fmr"] is not None for r in rows if r["t"] <= tail["from"])
    assert not CAL.extrapolated(tail["from"])
    assert CAL.extrapolated(tail["from"] + 0.01)
    # The prediction is the upper bound over identities: never below the measured FMR.
    for r in rows:
        if r["fmr"] is not None:
            assert r["fmr_upper"] >= r["fmr"]
    values = [CAL.fmr(t) for t in np.arange(0.0, 1.0, 0.005)]
    assert all(x >= y for x, y in itertools.pairwise(values))  # non-increasing
    misses = [CAL.fnmr(t) for t in np.arange(0.0, 1.0, 0.005)]
    assert all(x <= y for x, y in itertools.pairwise(misses))  # non-decreasing


def test_the_exponential_tail_errs_towards_more_false_matches_than_a_gaussian_impostor() -> None:
    # The synthetic impostors are N(0, 0.08): their true FMR at 0.45 is ~1e-8.
    true_fmr = 0.5 * math.erfc(0.45 / (0.08 * math.sqrt(2)))
    assert CAL.fmr(0.45) > true_fmr


def test_shipped_calibrations_parse_and_say_where_they_come_from() -> None:
    for backend in ("insightface", "opencv_zoo"):
        calibration = read_calibration(shipped_calibration_path(backend))
        assert calibration.backend == backend
        assert [s["name"] for s in calibration.source] == ["faces", "faces-dev"]
        assert calibration.counts["impostor_comparisons"] > 20_000
        assert calibration.raw["fmr"]["tail"]["extrapolation"] is True
