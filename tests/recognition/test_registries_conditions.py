"""Per-person conditions through ``Registries``: enrolment and updates are audited, matching is untouched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gridwatch.core.audit import AuditLog, verify
from gridwatch.core.config.registries import RegistryConfig
from recognition.analyzer import normalize
from recognition.registries import Registries, UnknownPersonError
from recognition.store import RegistryStore
from tests.support.db import Databases

CONFIG = RegistryConfig(name="watch", purpose="test registry", legal_basis="test fixture", retention_days=30)
NAME = "Display-Name-4b1e"


@pytest.fixture
def audit_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.jsonl"


@pytest.fixture
def registries(databases: Databases, audit_path: Path) -> Iterator[Registries]:
    store = RegistryStore(databases(), keys=databases.keys())
    with AuditLog(audit_path) as audit:
        regs = Registries([CONFIG], store, model_id="test@0", dim=512, audit=audit)
        regs.load()
        yield regs
    store.close()


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_enrolment_audits_the_conditions_it_sets(registries: Registries, audit_path: Path) -> None:
    vector = normalize(np.random.default_rng(1).standard_normal((1, 512)).astype(np.float32))
    person = registries.enroll(
        "watch", NAME, [("sha-1", vector[0])], actor="officer-7", allowed_zones=["estate-north"], case_ref="C-1"
    )
    (record,) = records(audit_path)
    assert (record["action"], record["actor"], record["target"]) == ("registry.enroll", "officer-7", person.person_id)
    assert record["details"]["conditions"] == {"allowed_zones": ["estate-north"], "case_ref": "C-1"}
    # Conditions do not change matching.
    assert [m.person_id for m in registries.match(vector, "any-camera")[0]] == [person.person_id]


def test_an_update_is_audited_with_the_fields_it_changed(registries: Registries, audit_path: Path) -> None:
    vector = normalize(np.random.default_rng(2).standard_normal((1, 512)).astype(np.float32))
    person = registries.enroll("watch", NAME, [("sha-2", vector[0])], actor="officer-7", allowed_hours="night")

    change = registries.update_conditions(
        person.person_id, actor="officer-9", home_sources=["gate-north"], clear_allowed_hours=True
    )
    assert change.changed == ("home_sources", "allowed_hours")
    registries.update_conditions(person.person_id, actor="officer-9", home_sources=["gate-north"])  # no change

    enrolled, updated = records(audit_path)
    assert enrolled["details"]["conditions"] == {"allowed_hours": "night"}
    assert (updated["action"], updated["actor"], updated["target"]) == (
        "registry.update",
        "officer-9",
        person.person_id,
    )
    assert updated["details"] == {
        "registry": "watch",
        "changed": {"home_sources": ["gate-north"], "allowed_hours": None},
    }
    assert NAME not in audit_path.read_text()
    assert verify(audit_path).ok
    assert [m.person_id for m in registries.match(vector, "gate-north")[0]] == [person.person_id]


def test_nothing_is_audited_for_an_unknown_person_or_a_refused_value(registries: Registries, audit_path: Path) -> None:
    with pytest.raises(UnknownPersonError):
        registries.update_conditions("p_0000000000000000", actor="officer-9", case_ref="C-1")
    vector = normalize(np.random.default_rng(3).standard_normal((1, 512)).astype(np.float32))
    person = registries.enroll("watch", NAME, [("sha-3", vector[0])], actor="officer-7")
    with pytest.raises(ValueError, match="case reference"):
        registries.update_conditions(person.person_id, actor="officer-9", case_ref="seen with a red bag")
    assert [r["action"] for r in records(audit_path)] == ["registry.enroll"]
