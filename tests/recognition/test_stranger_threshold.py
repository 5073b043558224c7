"""Look-alike strangers join at the threshold the known registries use: a `threshold: auto` registry's solved
one (for its current size), not the 0.45 stand-in its config carries. Real photos, real models, the shipped
insightface calibration."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.model import QualityConfig
from gridwatch.core.config.registries import RegistryConfig
from gridwatch.core.db import Database
from gridwatch.core.events import SourceKind
from recognition.analyzer import InsightFaceAnalyzer, normalize
from recognition.calibration import read_calibration, shipped_calibration_path
from recognition.quality import QualityGate
from recognition.recognizer import Recognizer, SourceInfo
from recognition.registries import Registries
from recognition.store import RegistryStore
from recognition.strangers import StrangerClusters, StrangerWatch
from recognition.thresholds import AutoThresholds, solve_threshold
from tests.recognition.test_stranger_attempts import photo
from tests.support.db import sqlite_url
from tests.support.keys import site_keys

GATE = "gate-east-face"
DEVICE_TIME = dt.datetime(2024, 5, 1, 8, 30, tzinfo=dt.UTC)
STAND_IN = 0.45
# A district-wide allowlist: 100,000 templates, a million faces a day, one false alert in ten days.
RESIDENTS = RegistryConfig.model_validate(
    {
        "name": "residents",
        "purpose": "stranger threshold test",
        "legal_basis": "test fixture",
        "retention_days": 1,
        "threshold": "auto",
        "max_false_alerts_per_day": 0.1,
        "faces_per_day": 1_000_000,
        "expected_size": 100_000,
        "sources": [GATE],
    }
)
WATCH = StrangerWatch(known_registries=frozenset({"residents"}), threshold=STAND_IN, window_s=600.0)


@pytest.fixture
def registries(tmp_path: Path) -> Iterator[Registries]:
    store = RegistryStore(
        Database(sqlite_url(tmp_path / "gridwatch.sqlite3")), keys=site_keys(tmp_path), owns_database=True
    )
    calibration = read_calibration(shipped_calibration_path("insightface"))
    with AuditLog(tmp_path / "audit.jsonl") as audit:
        regs = Registries(
            [RESIDENTS], store, model_id="test@0", dim=512, audit=audit, thresholds=AutoThresholds(calibration, {})
        )
        regs.load()
        try:
            yield regs
        finally:
            store.close()


def test_strangers_join_at_the_solved_threshold_of_an_auto_registry(
    analyzer: InsightFaceAnalyzer, registries: Registries
) -> None:
    calibration = read_calibration(shipped_calibration_path("insightface"))
    solved = solve_threshold(calibration, size=100_000, faces_per_day=1_000_000, max_false_alerts_per_day=0.1)
    assert RESIDENTS.threshold == STAND_IN  # what the config says: a stand-in
    assert registries.configs["residents"].threshold == solved.threshold > 0.8
    recognizer = Recognizer(analyzer, QualityGate(QualityConfig()), registries, StrangerClusters({GATE: WATCH}))
    assert recognizer.stranger_threshold(WATCH) == solved.threshold
    # Two photos of one stranger, similarity about 0.68: one cluster at the stand-in, two at the solved threshold.
    source = SourceInfo(GATE, SourceKind.GATE)
    first = recognizer.recognize(photo("kit_harington/kit1.jpeg"), source, captured_at=DEVICE_TIME)
    second = recognizer.recognize(photo("kit_harington/kit2.jpeg"), source, captured_at=DEVICE_TIME)
    assert None not in (first.stranger, second.stranger)
    assert first.stranger != second.stranger
    assert recognizer.strangers.count(GATE) == 2


def test_a_watch_of_registries_not_running_keeps_its_configured_threshold(
    analyzer: InsightFaceAnalyzer, registries: Registries
) -> None:
    recognizer = Recognizer(analyzer, QualityGate(QualityConfig()), registries, StrangerClusters())
    elsewhere = StrangerWatch(known_registries=frozenset({"gone"}), threshold=0.6, window_s=60.0)
    assert recognizer.stranger_threshold(elsewhere) == 0.6


def test_observe_joins_at_the_threshold_it_is_given() -> None:
    rng = np.random.default_rng(5)
    base = normalize(rng.standard_normal((1, 512)).astype(np.float32))[0]
    noise = rng.standard_normal(512).astype(np.float32)
    noise -= (noise @ base) * base
    noise /= np.linalg.norm(noise)
    alike = (0.6 * base + 0.8 * noise).astype(np.float32)  # similarity 0.6 to ``base``
    lenient, strict = StrangerClusters({GATE: WATCH}), StrangerClusters({GATE: WATCH})
    assert lenient.observe(GATE, base) == lenient.observe(GATE, alike)  # the watch's 0.45
    assert strict.observe(GATE, base, threshold=0.7) != strict.observe(GATE, alike, threshold=0.7)
