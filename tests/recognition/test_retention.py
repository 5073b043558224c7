"""The retention job: expired entries and evidence are erased, live ones kept, and the audit log holds the counts."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gridwatch.core.audit import AuditLog, verify
from gridwatch.core.config.model import QualityConfig
from gridwatch.core.config.registries import RegistryConfig
from gridwatch.core.db.schema import alerts
from recognition.analyzer import InsightFaceAnalyzer, normalize
from recognition.evidence import EvidenceStore
from recognition.quality import QualityGate
from recognition.recognizer import Recognizer
from recognition.registries import Registries
from recognition.retention import DATA_CLASSES, RETENTION_ACTOR, RETENTION_REPORT, run_retention
from recognition.stage import RecognitionStage
from recognition.store import RegistryStore
from recognition.strangers import StrangerClusters
from tests.support.db import Databases

WATCH = RegistryConfig(name="watch", purpose="test registry", legal_basis="test fixture", retention_days=30)
VISITORS = RegistryConfig(name="visitors", purpose="test registry", legal_basis="test fixture", retention_days=7)
IMAGE = b"\xff\xd8\xff not really a jpeg, sealed anyway"


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog(tmp_path / "audit.jsonl", checkpoint_key=None) as log:
        yield log


@pytest.fixture
def parts(databases: Databases, audit: AuditLog) -> Iterator[tuple[Registries, EvidenceStore]]:
    database = databases()
    store = RegistryStore(database, keys=databases.keys())
    registries = Registries([WATCH, VISITORS], store, model_id="test@0", dim=512, audit=audit)
    registries.load()
    evidence = EvidenceStore(database, databases.keys())
    evidence.open()
    try:
        yield registries, evidence
    finally:
        store.close()


def _enrol(registries: Registries, registry: str, name: str, *, days_ago: float, seed: int) -> str:
    vector = normalize(np.random.default_rng(seed).standard_normal((1, 512)).astype(np.float32))
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    return registries.enroll(registry, name, [(f"sha-{seed}", vector[0])], actor="test", now=now).person_id


def _evidence(store: EvidenceStore, kind: Any, person_id: str, *, days_ago: float, retention_days: int) -> None:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    store.put(kind, "watch", person_id, IMAGE, retention_days=retention_days, now=now)


def _reports(audit: AuditLog) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in audit.path.read_text(encoding="utf-8").splitlines()]
    return [r for r in records if r["action"] == RETENTION_REPORT]


def test_the_purge_writes_what_it_erased_and_what_it_kept_per_class(
    parts: tuple[Registries, EvidenceStore], audit: AuditLog
) -> None:
    registries, evidence = parts
    _enrol(registries, "watch", "Expired", days_ago=31, seed=1)
    live = _enrol(registries, "watch", "Live A", days_ago=1, seed=2)
    _enrol(registries, "watch", "Live B", days_ago=29, seed=3)
    _enrol(registries, "visitors", "Expired visitor", days_ago=8, seed=4)
    _enrol(registries, "visitors", "Live visitor", days_ago=6, seed=5)
    for days_ago in (3, 2):  # evidence kept a day: two expired faces
        _evidence(evidence, "face", live, days_ago=days_ago, retention_days=1)
    _evidence(evidence, "face", live, days_ago=0, retention_days=1)
    _evidence(evidence, "frame", live, days_ago=2, retention_days=1)
    _evidence(evidence, "reference", live, days_ago=31, retention_days=30)
    _evidence(evidence, "reference", live, days_ago=1, retention_days=30)
    evidence.database.transaction(
        lambda conn: conn.execute(
            alerts.insert(), [{"alert_id": f"a-{i}", "alert_json": "{}", "added_at": 0.0} for i in range(2)]
        ),
        what="test alerts",
    )

    run_retention(registries, evidence)

    [report] = _reports(audit)
    assert report["actor"] == RETENTION_ACTOR
    classes = report["details"]["classes"]
    assert list(classes) == sorted(DATA_CLASSES)  # canonical JSON: every class is there
    counts = {name: (c["erased"], c["retained"]) for name, c in classes.items()}
    assert counts == {
        "template": (2, 3),
        "evidence": (3, 1),
        "reference_photo": (1, 1),
        "alert": (0, 2),
        "case": (0, 0),
        "audit": (None, None),
        "processing_record": (0, 2),
        "topic": (None, None),
    }
    assert classes["template"]["by_registry"] == {
        "watch": {"erased": 1, "retained": 2, "retention_days": 30},
        "visitors": {"erased": 1, "retained": 1, "retention_days": 7},
    }
    assert [name for name, c in classes.items() if "by_registry" in c] == ["template"]
    assert all(c["reason"] for c in classes.values())
    # What the counts say is true of the stores.
    assert sorted(p.display_name for p in registries.list_persons(None, actor="test")) == [
        "Live A",
        "Live B",
        "Live visitor",
    ]
    assert verify(audit.path).ok


def test_every_run_writes_a_report_even_when_nothing_expired(
    parts: tuple[Registries, EvidenceStore], audit: AuditLog
) -> None:
    registries, evidence = parts
    _enrol(registries, "watch", "Live", days_ago=0, seed=6)

    run_retention(registries, evidence)
    run_retention(registries, evidence)

    reports = _reports(audit)
    assert len(reports) == 2
    for report in reports:
        assert report["details"]["classes"]["template"]["erased"] == 0
        assert report["details"]["classes"]["template"]["retained"] == 1
        assert report["details"]["classes"]["evidence"]["erased"] == 0


def test_the_report_holds_counts_only(parts: tuple[Registries, EvidenceStore], audit: AuditLog) -> None:
    registries, evidence = parts
    person = _enrol(registries, "watch", "Named Person", days_ago=31, seed=7)

    run_retention(registries, evidence)

    [report] = _reports(audit)
    text = json.dumps(report)
    assert person not in text
    assert "Named Person" not in text


class _Sightings:
    async def put(self, sighting: object) -> None:
        raise AssertionError("no frame was given: no sighting can come out")


async def test_the_recognition_stage_runs_the_job_and_reports_when_it_starts(
    parts: tuple[Registries, EvidenceStore], audit: AuditLog, analyzer: InsightFaceAnalyzer
) -> None:
    registries, evidence = parts
    _enrol(registries, "watch", "Expired", days_ago=31, seed=8)
    recognizer = Recognizer(analyzer, QualityGate(QualityConfig()), registries, StrangerClusters({}))
    stage = RecognitionStage(recognizer, analyzer, registries, _Sightings(), evidence=evidence)
    await stage.start()
    await stage.stop()

    [report] = _reports(audit)
    assert report["details"]["classes"]["template"]["erased"] == 1
    assert report["details"]["classes"]["template"]["retained"] == 0
