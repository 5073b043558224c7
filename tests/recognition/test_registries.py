"""Registries against the store: expiry, changes made by another process, enrolment under search."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.registries import RegistryConfig
from gridwatch.core.interfaces import Match
from recognition.analyzer import normalize
from recognition.index import FaissIndex
from recognition.registries import Registries
from recognition.store import Person, RegistryStore
from tests.support.db import Databases

CONFIG = RegistryConfig(
    name="watch", purpose="test registry", legal_basis="test fixture", retention_days=30, threshold=0.5, margin=0.05
)


def unit(rng: np.random.Generator, n: int = 1) -> npt.NDArray[np.float32]:
    return normalize(rng.standard_normal((n, 512)).astype(np.float32))


def open_registries(databases: Databases, audit: AuditLog) -> tuple[Registries, RegistryStore]:
    """One process's view of the shared store (the service, or a CLI command): a database object of its own."""
    store = RegistryStore(databases(), keys=databases.keys())
    registries = Registries([CONFIG], store, model_id="test@0", dim=512, audit=audit)
    registries.load()
    return registries, store


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog(tmp_path / "audit.jsonl") as log:
        yield log


def test_an_expired_entry_is_not_matched_before_the_purge_runs(databases: Databases, audit: AuditLog) -> None:
    registries, store = open_registries(databases, audit)
    try:
        vector = unit(np.random.default_rng(1))
        long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
        registries.enroll("watch", "Old Entry", [("sha-old", vector[0])], actor="t", now=long_ago)
        assert registries.match(vector, "cam-1") == [[]]
        # A restart (index rebuilt from the store) must not bring it back either.
        registries.load()
        assert registries.match(vector, "cam-1") == [[]]
    finally:
        store.close()


def test_a_person_removed_by_another_process_is_no_longer_matched(databases: Databases, audit: AuditLog) -> None:
    service, service_store = open_registries(databases, audit)
    cli, cli_store = open_registries(databases, audit)
    try:
        vector = unit(np.random.default_rng(2))
        person = service.enroll("watch", "A", [("sha-a", vector[0])], actor="t")
        assert [m.person_id for m in service.match(vector, "cam-1")[0]] == [person.person_id]

        cli.remove(person.person_id, actor="cli")

        assert service.match(vector, "cam-1") == [[]]
        assert service.size("watch") == 0
    finally:
        cli_store.close()
        service_store.close()


def test_a_person_enrolled_by_another_process_is_matched(databases: Databases, audit: AuditLog) -> None:
    service, service_store = open_registries(databases, audit)
    cli, cli_store = open_registries(databases, audit)
    try:
        vector = unit(np.random.default_rng(3))
        assert not service.covers("cam-1")
        person = cli.enroll("watch", "A", [("sha-a", vector[0])], actor="cli")
        assert service.covers("cam-1")
        assert [m.person_id for m in service.match(vector, "cam-1")[0]] == [person.person_id]
    finally:
        cli_store.close()
        service_store.close()


def test_purge_goes_on_past_an_entry_erased_meanwhile(
    databases: Databases, audit: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, service_store = open_registries(databases, audit)
    cli, cli_store = open_registries(databases, audit)
    try:
        rng = np.random.default_rng(4)
        long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
        first = service.enroll("watch", "First", [("sha-1", unit(rng)[0])], actor="t", now=long_ago)
        service.enroll("watch", "Second", [("sha-2", unit(rng)[0])], actor="t", now=long_ago)
        expired = service_store.expired

        def expired_then_cli_removes(now: dt.datetime) -> list[Person]:
            persons = expired(now)
            cli.remove(first.person_id, actor="cli")  # the CLI's purge or remove wins the race
            return persons

        monkeypatch.setattr(service_store, "expired", expired_then_cli_removes)
        purged = service.purge_expired()

        assert [p.display_name for p in purged] == ["Second"]
        assert service_store.list_persons() == []
    finally:
        cli_store.close()
        service_store.close()


def test_a_search_during_an_enrolment_never_skips_the_new_person(
    databases: Databases, audit: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    registries, store = open_registries(databases, audit)
    try:
        rng = np.random.default_rng(5)
        a, b = unit(rng), unit(rng)
        first = registries.enroll("watch", "A", [("sha-a", a[0])], actor="t")
        # Nearest to B (≈0.79) but above the threshold for A too (≈0.61).
        probe = normalize((a + 1.3 * b).astype(np.float32))
        seen_during_enrolment: list[list[Match]] = []
        add = FaissIndex.add

        def add_then_search(index: FaissIndex, ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32]) -> None:
            add(index, ids, vectors)
            seen_during_enrolment.extend(registries.match(probe, "cam-1"))  # another thread's search

        monkeypatch.setattr(FaissIndex, "add", add_then_search)
        second = registries.enroll("watch", "B", [("sha-b", b[0])], actor="t")

        assert [m.person_id for m in seen_during_enrolment[0]] == [second.person_id]
        assert first.person_id not in [m.person_id for m in seen_during_enrolment[0]]
    finally:
        store.close()
