"""The match decision: threshold plus a margin between the two best identities, else unknown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.registries import RegistryConfig
from gridwatch.core.db import Database
from gridwatch.core.interfaces import Match
from gridwatch.evaluate.metrics import Searches, fnir, fpir
from recognition.analyzer import normalize
from recognition.registries import Outcome, Registries, UnknownReason, decide
from recognition.store import RegistryStore
from tests.support.db import sqlite_url
from tests.support.keys import site_keys

CONFIG = RegistryConfig(
    name="watch", purpose="test registry", legal_basis="test fixture", retention_days=1, threshold=0.5, margin=0.05
)


@pytest.mark.parametrize(
    ("best", "second", "outcome", "reason"),
    [
        pytest.param(0.70, 0.30, Outcome.MATCH, None, id="clear-match"),
        pytest.param(0.70, 0.68, Outcome.UNKNOWN, UnknownReason.AMBIGUOUS, id="within-margin"),
        pytest.param(0.70, 0.64, Outcome.MATCH, None, id="just-past-the-margin"),
        pytest.param(0.45, 0.10, Outcome.UNKNOWN, UnknownReason.BELOW_THRESHOLD, id="below-threshold"),
        pytest.param(0.52, None, Outcome.MATCH, None, id="single-identity-margin-vacuous"),
    ],
)
def test_decide(best: float, second: float | None, outcome: Outcome, reason: UnknownReason | None) -> None:
    decision = decide(CONFIG, Match("watch", "p_1", best, second))
    assert decision.outcome is outcome
    assert decision.reason is reason
    assert (decision.match is not None) == (outcome is Outcome.MATCH)


def test_empty_registry_is_unknown() -> None:
    assert decide(CONFIG, None).reason is UnknownReason.EMPTY


def unit(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    return normalize(rng.standard_normal((n, 512)).astype(np.float32))


@pytest.fixture
def registries(tmp_path: Path) -> Iterator[Registries]:
    store = RegistryStore(
        Database(sqlite_url(tmp_path / "gridwatch.sqlite3")), keys=site_keys(tmp_path), owns_database=True
    )
    with AuditLog(tmp_path / "audit.jsonl") as audit:
        regs = Registries([CONFIG], store, model_id="test@0", dim=512, audit=audit)
        regs.load()
        yield regs
    store.close()


def test_two_identities_within_the_margin_give_unknown(registries: Registries) -> None:
    rng = np.random.default_rng(11)
    a, b = unit(rng), unit(rng)
    registries.enroll("watch", "A", [("sha-a", a[0])], actor="t")
    registries.enroll("watch", "B", [("sha-b", b[0])], actor="t")
    between = normalize((a + b).astype(np.float32))  # equally similar to both (≈0.7 each)
    near_a = normalize((3 * a + b).astype(np.float32))

    decisions = registries.decide(np.concatenate([between, near_a]), "cam-1")
    assert decisions[0][0].outcome is Outcome.UNKNOWN
    assert decisions[0][0].reason is UnknownReason.AMBIGUOUS
    assert decisions[0][0].candidate is not None
    assert decisions[0][0].candidate.similarity >= CONFIG.threshold  # the nearest face alone would match
    assert decisions[1][0].outcome is Outcome.MATCH
    assert registries.match(np.concatenate([between, near_a]), "cam-1")[0] == []


def test_second_identity_is_found_behind_many_photos_of_the_first(registries: Registries) -> None:
    rng = np.random.default_rng(12)
    a = unit(rng)
    # 40 near-identical photos of A fill the first neighbours; B sits just behind them.
    photos = normalize((a + 0.02 * unit(rng, 40)).astype(np.float32))
    registries.enroll("watch", "A", [(f"sha-{i}", v) for i, v in enumerate(photos)], actor="t")
    b = normalize((a + 0.3 * unit(rng)).astype(np.float32))
    registries.enroll("watch", "B", [("sha-b", b[0])], actor="t")
    probe = normalize((a + 0.5 * (b - a)).astype(np.float32))
    decision = registries.decide(probe, "cam-1")[0][0]
    assert decision.candidate is not None
    assert decision.candidate.second_similarity is not None


def test_eval_metrics_use_the_same_rule_as_the_product() -> None:
    rng = np.random.default_rng(13)
    top = rng.uniform(0.3, 0.9, 200)
    second = np.where(rng.random(200) < 0.2, np.nan, top - rng.uniform(0.0, 0.2, 200))
    searches = Searches(top, second, top, second)
    for threshold in (0.4, 0.5, 0.6):
        config = CONFIG.model_copy(update={"threshold": threshold})
        product = np.array(
            [
                decide(config, Match("watch", "p", float(t), None if np.isnan(s) else float(s))).outcome
                is Outcome.MATCH
                for t, s in zip(top, second, strict=True)
            ]
        )
        assert fpir(searches, threshold, CONFIG.margin) == pytest.approx(product.mean())
        assert fnir(searches, threshold, CONFIG.margin) == pytest.approx(1 - product.mean())
