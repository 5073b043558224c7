"""Pack calibrations and thresholds solved from an operating point (false alerts a day)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.registries import RegistryConfig
from gridwatch.core.db import Database
from recognition.analyzer import normalize
from recognition.registries import Outcome, Registries
from recognition.store import RegistryStore
from recognition.thresholds import (
    AutoThresholds,
    FacesPerDay,
    PackCalibration,
    build_calibration,
    needs_resolve,
    parse_calibration,
    shipped_calibration_path,
    solve_threshold,
)
from tests.support.db import sqlite_url


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


@pytest.mark.parametrize(
    ("small", "large"),
    [
        pytest.param({"size": 30, "faces_per_day": 10_000}, {"size": 100_000, "faces_per_day": 10_000}, id="size"),
        pytest.param({"size": 500, "faces_per_day": 1_000}, {"size": 500, "faces_per_day": 1_000_000}, id="faces"),
    ],
)
def test_a_larger_registry_or_more_faces_gives_a_higher_threshold(
    small: dict[str, float], large: dict[str, float]
) -> None:
    low = solve_threshold(CAL, max_false_alerts_per_day=0.1, **small)  # type: ignore[arg-type]
    high = solve_threshold(CAL, max_false_alerts_per_day=0.1, **large)  # type: ignore[arg-type]
    assert low.met
    assert high.met
    assert high.threshold > low.threshold
    assert high.miss_rate >= low.miss_rate
    for point in (low, high):
        # The solved threshold meets the target and is the lowest on the 4-decimal grid that does.
        assert point.false_alerts_per_day <= 0.1
        lower = point.threshold - 1e-4
        assert point.size * point.faces_per_day * CAL.fmr(lower) > 0.1


def test_a_target_that_cannot_be_met_says_so() -> None:
    point = solve_threshold(CAL, size=10**7, faces_per_day=10**8, max_false_alerts_per_day=1e-6)
    assert not point.met
    assert point.reason is not None
    assert "cannot be met" in point.reason
    assert point.false_alerts_per_day > 1e-6


def test_resolving_needs_a_change_of_more_than_ten_percent() -> None:
    assert not needs_resolve(100, 109)
    assert needs_resolve(100, 111)
    assert needs_resolve(100, 89)
    assert not needs_resolve(0, 1)  # an empty registry is solved as one of one


def auto_config(**extra: object) -> RegistryConfig:
    fields: dict[str, object] = {
        "name": "watch",
        "purpose": "test registry",
        "legal_basis": "test fixture",
        "retention_days": 30,
        "threshold": "auto",
        "max_false_alerts_per_day": 0.1,
        "faces_per_day": 10_000,
    }
    return RegistryConfig.model_validate(fields | extra)


def test_auto_thresholds_resolve_only_when_the_size_moves() -> None:
    config = auto_config()
    thresholds = AutoThresholds(CAL, {"watch": FacesPerDay(None, "configured below")})
    first = thresholds.effective(config, 100)
    assert (
        first.threshold == solve_threshold(CAL, size=100, faces_per_day=10_000, max_false_alerts_per_day=0.1).threshold
    )
    assert thresholds.effective(config, 105) is first  # within 10%: kept
    grown = thresholds.effective(config, 10_000)
    assert grown.threshold > first.threshold
    fixed = RegistryConfig(name="f", purpose="test registry", legal_basis="test fixture", retention_days=1)
    assert thresholds.effective(fixed, 10_000) is fixed


def test_threshold_auto_needs_a_target_and_a_target_needs_auto() -> None:
    with pytest.raises(ValueError, match="needs max_false_alerts_per_day"):
        RegistryConfig.model_validate(
            {"name": "w", "purpose": "xxx", "legal_basis": "yyy", "retention_days": 1, "threshold": "auto"}
        )
    with pytest.raises(ValueError, match="only used with threshold: auto"):
        auto_config(threshold=0.5)
    assert auto_config().auto_threshold


def test_shipped_calibrations_parse_and_say_where_they_come_from() -> None:
    for backend in ("insightface", "opencv_zoo"):
        from recognition.thresholds import read_calibration

        calibration = read_calibration(shipped_calibration_path(backend))
        assert calibration.backend == backend
        assert [s["name"] for s in calibration.source] == ["faces", "faces-dev"]
        assert calibration.counts["impostor_comparisons"] > 20_000
        assert calibration.raw["fmr"]["tail"]["extrapolation"] is True


@pytest.fixture
def registries(tmp_path: Path) -> Iterator[Registries]:
    store = RegistryStore(Database(sqlite_url(tmp_path / "gridwatch.sqlite3")), owns_database=True)
    with AuditLog(tmp_path / "audit.jsonl") as audit:
        thresholds = AutoThresholds(CAL, {})
        registries = Registries([auto_config()], store, model_id="test@0", dim=512, audit=audit, thresholds=thresholds)
        registries.load()
        try:
            yield registries
        finally:
            store.close()


def test_registries_decide_with_the_solved_threshold(registries: Registries) -> None:
    rng = np.random.default_rng(3)
    vectors = normalize(rng.standard_normal((2, 512)).astype(np.float32))
    for i in range(2):
        registries.enroll("watch", f"p{i}", [(f"sha{i}", vectors[i])], actor="test")
    solved = registries.configs["watch"].threshold
    assert solved == solve_threshold(CAL, size=2, faces_per_day=10_000, max_false_alerts_per_day=0.1).threshold
    assert solved != RegistryConfig.model_fields["threshold"].default

    def probe(similarity: float) -> np.ndarray:  # type: ignore[type-arg]
        noise = rng.standard_normal((1, 512)).astype(np.float32)
        noise -= (noise @ vectors[:1].T) * vectors[:1]
        noise = normalize(noise)
        return normalize(similarity * vectors[:1] + math.sqrt(1 - similarity**2) * noise)

    above = registries.decide(probe(solved + 0.02), "cam")[0][0]
    below = registries.decide(probe(solved - 0.02), "cam")[0][0]
    assert above.outcome is Outcome.MATCH
    assert below.outcome is Outcome.UNKNOWN
