"""Registries.reconfigure: a config reload changes thresholds, sources and the set of registries in place."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.registries import RegistryConfig
from gridwatch.core.db import Database
from recognition.analyzer import normalize
from recognition.registries import Outcome, Registries, UnknownReason
from recognition.store import RegistryStore
from tests.support.db import sqlite_url
from tests.support.keys import site_keys

WATCH = RegistryConfig(
    name="watch", purpose="test registry", legal_basis="test fixture", retention_days=30, threshold=0.5, margin=0.05
)
OTHER = RegistryConfig(
    name="other", purpose="test registry", legal_basis="test fixture", retention_days=30, threshold=0.5, margin=0.05
)


def unit(rng: np.random.Generator) -> npt.NDArray[np.float32]:
    return normalize(rng.standard_normal((1, 512)).astype(np.float32))


def probe_at(vector: npt.NDArray[np.float32], similarity: float, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """A unit probe whose cosine similarity with ``vector`` is ``similarity``."""
    noise = rng.standard_normal((1, 512)).astype(np.float32)
    noise -= (noise @ vector.T) * vector
    noise = normalize(noise)
    return normalize(similarity * vector + np.sqrt(1.0 - similarity**2) * noise)


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog(tmp_path / "audit.jsonl") as log:
        yield log


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RegistryStore]:
    store = RegistryStore(
        Database(sqlite_url(tmp_path / "gridwatch.sqlite3")), keys=site_keys(tmp_path), owns_database=True
    )
    try:
        yield store
    finally:
        store.close()


def registries_with(store: RegistryStore, audit: AuditLog, *configs: RegistryConfig) -> Registries:
    registries = Registries(list(configs), store, model_id="test@0", dim=512, audit=audit)
    registries.load()
    return registries


def test_a_threshold_change_changes_the_next_decision(store: RegistryStore, audit: AuditLog) -> None:
    rng = np.random.default_rng(1)
    registries = registries_with(store, audit, WATCH)
    enrolled = unit(rng)
    person = registries.enroll("watch", "A", [("sha-a", enrolled[0])], actor="t")
    probe = probe_at(enrolled, 0.62, rng)

    [[before]] = registries.decide(probe, "cam-1")
    assert before.outcome is Outcome.MATCH
    assert before.candidate is not None
    assert before.candidate.person_id == person.person_id

    registries.reconfigure([WATCH.model_copy(update={"threshold": 0.7})])

    [[after]] = registries.decide(probe, "cam-1")
    assert after.outcome is Outcome.UNKNOWN
    assert after.reason is UnknownReason.BELOW_THRESHOLD
    assert registries.configs["watch"].threshold == 0.7
    assert registries.size("watch") == 1  # the index was kept, not rebuilt empty

    registries.reconfigure([WATCH.model_copy(update={"threshold": 0.6})])
    [[again]] = registries.decide(probe, "cam-1")
    assert again.outcome is Outcome.MATCH


def test_covered_sources_and_margin_change_in_place(store: RegistryStore, audit: AuditLog) -> None:
    rng = np.random.default_rng(2)
    registries = registries_with(store, audit, WATCH)
    a, b = unit(rng), unit(rng)
    registries.enroll("watch", "A", [("sha-a", a[0])], actor="t")
    registries.enroll("watch", "B", [("sha-b", b[0])], actor="t")
    probe = probe_at(a, 0.9, rng)
    assert registries.covers("cam-1")

    registries.reconfigure([WATCH.model_copy(update={"sources": ["cam-2"]})])
    assert not registries.covers("cam-1")
    assert registries.decide(probe, "cam-1") == [[]]
    assert [d.outcome for d in registries.decide(probe, "cam-2")[0]] == [Outcome.MATCH]

    registries.reconfigure([WATCH.model_copy(update={"margin": 1.0})])  # nobody can beat the runner-up by 1.0
    [[decision]] = registries.decide(probe, "cam-1")
    assert decision.reason is UnknownReason.AMBIGUOUS


def test_registries_are_added_from_the_store_and_removed_from_memory_only(
    store: RegistryStore, audit: AuditLog
) -> None:
    rng = np.random.default_rng(3)
    other_vector = unit(rng)
    # Entries of "other" enrolled earlier (e.g. with the CLI, whose config already had it).
    cli = registries_with(store, audit, WATCH, OTHER)
    person = cli.enroll("other", "O", [("sha-o", other_vector[0])], actor="cli")

    registries = registries_with(store, audit, WATCH)
    assert registries.decide(other_vector, "cam-1") == [[]]

    registries.reconfigure([WATCH, OTHER])
    [[decision]] = registries.decide(other_vector, "cam-1")
    assert decision.registry == "other"
    assert decision.match is not None
    assert decision.match.person_id == person.person_id

    registries.reconfigure([WATCH])
    assert registries.decide(other_vector, "cam-1") == [[]]
    assert set(registries.configs) == {"watch"}
    assert [p.person_id for p in store.list_persons("other")] == [person.person_id]  # still in the store

    # An enrolment in a removed registry is refused; a sync (another process changed the store) keeps
    # to the configured registries.
    cli.enroll("other", "O2", [("sha-o2", unit(rng)[0])], actor="cli")
    registries.sync()
    assert set(registries.configs) == {"watch"}
    assert registries.decide(other_vector, "cam-1") == [[]]


def test_reconfigure_before_load_is_what_load_uses(store: RegistryStore, audit: AuditLog) -> None:
    registries = Registries([WATCH], store, model_id="test@0", dim=512, audit=audit)
    registries.reconfigure([WATCH, OTHER])
    registries.load()
    assert set(registries.configs) == {"watch", "other"}
    assert registries.size("other") == 0


def test_reconfigure_under_concurrent_search(store: RegistryStore, audit: AuditLog) -> None:
    """Searches run in a worker thread while reloads swap configs and registries: no error, no mixed state."""
    rng = np.random.default_rng(4)
    registries = registries_with(store, audit, WATCH, OTHER)
    enrolled = unit(rng)
    registries.enroll("watch", "A", [("sha-a", enrolled[0])], actor="t")
    registries.enroll("other", "B", [("sha-b", unit(rng)[0])], actor="t")
    probe = probe_at(enrolled, 0.62, rng)
    errors: list[BaseException] = []
    outcomes: set[Outcome] = set()
    stop = threading.Event()

    def search() -> None:
        try:
            while not stop.is_set():
                row = registries.decide(probe, "cam-1")[0]
                outcomes.update(d.outcome for d in row if d.registry == "watch")
        except BaseException as exc:
            errors.append(exc)

    searcher = threading.Thread(target=search, name="searcher")
    searcher.start()
    try:
        deadline = time.monotonic() + 1.0
        flip = 0
        while time.monotonic() < deadline:
            flip += 1
            threshold = 0.7 if flip % 2 else 0.5
            configs = [WATCH.model_copy(update={"threshold": threshold})]
            if flip % 3:
                configs.append(OTHER)
            registries.reconfigure(configs)
    finally:
        stop.set()
        searcher.join(10.0)
    assert not searcher.is_alive()
    assert errors == []
    assert outcomes == {Outcome.MATCH, Outcome.UNKNOWN}  # both thresholds were used by searches meanwhile
    registries.reconfigure([WATCH.model_copy(update={"threshold": 0.7})])
    [[decision]] = registries.decide(probe, "cam-1")
    assert decision.outcome is Outcome.UNKNOWN
