"""Thresholds solved from an operating point (false alerts a day) with a pack's calibration."""

from __future__ import annotations

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
from recognition.thresholds import AutoThresholds, FacesPerDay, needs_resolve, solve_threshold
from tests.recognition.test_calibration import synthetic
from tests.support.db import sqlite_url
from tests.support.keys import site_keys

CAL = synthetic()  # the shape of an ArcFace pack (see test_calibration)


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


@pytest.fixture
def registries(tmp_path: Path) -> Iterator[Registries]:
    store = RegistryStore(
        Database(sqlite_url(tmp_path / "gridwatch.sqlite3")), keys=site_keys(tmp_path), owns_database=True
    )
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
