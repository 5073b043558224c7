"""Registries over both index kinds: changes by another process apply as a delta (no rebuild), expiry
erases from a compressed index, and each registry's index is reported (what ``/status`` shows)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.registries import RegistryConfig
from recognition.index import FLAT, PQ4_SQ8
from recognition.index_build import IndexPolicy, mated_probes
from recognition.index_galleries import gallery
from recognition.registries import Registries
from recognition.store import RegistryStore
from tests.support.db import Databases

WATCH = RegistryConfig(
    name="watch", purpose="test registry", legal_basis="test fixture", retention_days=30, threshold=0.4, margin=0.05
)
RESIDENTS = RegistryConfig(
    name="residents", purpose="test allowlist", legal_basis="test fixture", retention_days=30, threshold=0.4
)
# Every registry with at least one vector gets the compressed kind at start.
COMPRESSED_ALWAYS = IndexPolicy(compressed_min_size=1)


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog(tmp_path / "audit.jsonl") as log:
        yield log


def open_registries(databases: Databases, audit: AuditLog, policy: IndexPolicy) -> tuple[Registries, RegistryStore]:
    store = RegistryStore(databases(), keys=databases.keys())
    registries = Registries([WATCH, RESIDENTS], store, model_id="test@0", dim=512, audit=audit, index_policy=policy)
    registries.load()
    return registries, store


def enrol_many(
    registries: Registries, registry: str, vectors: npt.NDArray[np.float32], now: dt.datetime | None = None
) -> list[str]:
    return [
        registries.enroll(registry, f"P{i}", [(f"sha-{registry}-{i}", v)], actor="t", now=now).person_id
        for i, v in enumerate(vectors)
    ]


@pytest.mark.parametrize("policy", [IndexPolicy(), COMPRESSED_ALWAYS], ids=[FLAT, PQ4_SQ8])
def test_a_change_by_another_process_applies_its_delta_without_rebuilding_any_index(
    databases: Databases, audit: AuditLog, policy: IndexPolicy
) -> None:
    vectors = gallery("clustered", np.random.default_rng(6), 121)
    cli, cli_store = open_registries(databases, audit, policy)
    try:
        enrol_many(cli, "watch", vectors[:60])
        enrol_many(cli, "residents", vectors[60:120])
        service, service_store = open_registries(databases, audit, policy)
        try:
            expected_kind = PQ4_SQ8 if policy is COMPRESSED_ALWAYS else FLAT
            assert {name: info.kind for name, info in service.index_status().items()} == {
                "watch": expected_kind,
                "residents": expected_kind,
            }
            builds = service.index_builds
            probe = mated_probes(np.random.default_rng(7), vectors[120:121], 0.6, 0.6)
            assert service.match(probe, "cam-1") == [[]]

            # A CLI enrolment: the service finds the new person, its other registry untouched.
            newcomer = cli.enroll("watch", "New", [("sha-new", vectors[120])], actor="cli").person_id
            assert [m.person_id for m in service.match(probe, "cam-1")[0]] == [newcomer]
            assert service.index_builds == builds
            assert service.index_deltas == 1
            assert service.index_status()["watch"].size == 61
            assert service.index_status()["residents"].size == 60
            assert service.index_status()["watch"].kind == expected_kind

            # A CLI erasure: gone from the service's index, still no rebuild.
            cli.remove(newcomer, actor="cli")
            assert service.match(probe, "cam-1") == [[]]
            assert service.index_builds == builds
            assert service.index_deltas == 2
            assert service.index_status()["watch"].size == 60
        finally:
            service_store.close()
    finally:
        cli_store.close()


def test_expiry_erases_from_a_compressed_index(databases: Databases, audit: AuditLog) -> None:
    vectors = gallery("clustered", np.random.default_rng(8), 80)
    registries, store = open_registries(databases, audit, COMPRESSED_ALWAYS)
    try:
        long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
        expired = enrol_many(registries, "watch", vectors[:10], now=long_ago)
        enrol_many(registries, "watch", vectors[10:])
        registries.load()  # start: the codebooks are trained on all 80, the 10 expired ones not yet purged
        assert registries.index_status()["watch"].kind == PQ4_SQ8
        assert registries.size("watch") == 80
        probes = mated_probes(np.random.default_rng(9), vectors[:10], 0.7, 0.7)
        assert registries.match(probes, "cam-1") == [[] for _ in range(10)]  # expired: never matched

        owner_of = dict(registries._loaded["watch"].person_of)
        expired_ids = {i for i, person in owner_of.items() if person in expired}

        purged = registries.purge_expired()

        assert sorted(p.person_id for p in purged) == sorted(expired)
        assert registries.size("watch") == 70
        _, found = registries._loaded["watch"].index.search(probes, 16)
        assert len(expired_ids) == 10
        assert not set(found.ravel().tolist()) & expired_ids
    finally:
        store.close()


def test_a_registry_whose_index_misses_the_recall_target_searches_exactly_and_says_why(
    databases: Databases, audit: AuditLog
) -> None:
    vectors = gallery("clustered", np.random.default_rng(10), 40)
    # One candidate re-scored and an unreachable target: the start-up check refuses the compressed index.
    policy = IndexPolicy(compressed_min_size=1, rerank_depths=(1,), recall_target=1.01)
    registries, store = open_registries(databases, audit, policy)
    try:
        persons = enrol_many(registries, "watch", vectors)
        registries.load()
        info = registries.index_status()["watch"]
        assert info.kind == FLAT
        assert info.size == 40
        assert info.fallback_reason is not None
        assert info.as_dict()["fallback_reason"] == info.fallback_reason
        probe = mated_probes(np.random.default_rng(11), vectors[3:4], 0.7, 0.7)
        assert [m.person_id for m in registries.match(probe, "cam-1")[0]] == [persons[3]]
    finally:
        store.close()
