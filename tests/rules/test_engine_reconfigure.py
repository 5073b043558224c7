"""RuleEngine.reconfigure: a config reload swaps the rule set; cooldowns of kept rules carry on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gridwatch.core.config.rules import SeenRuleConfig
from gridwatch.core.db import Database
from gridwatch.core.events import Quality, Severity, Sighting, SourceKind
from rules.engine import RuleEngine
from rules.state import RuleState
from tests.support.db import sqlite_url

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


def sighting(person: str = "p_1", source: str = "cam-1", registry: str = "watch", at: dt.datetime = T0) -> Sighting:
    return Sighting(
        source=source,
        source_kind=SourceKind.CAMERA,
        captured_at=at,
        received_at=at,
        person_id=person,
        registry=registry,
        similarity=0.61,
        threshold=0.45,
        model="test@0",
        quality=Quality(det_score=0.8, face_px=90),
    )


def rule(rule_id: str, **fields: Any) -> SeenRuleConfig:
    return SeenRuleConfig.model_validate({"id": rule_id, "kind": "seen", "registries": ["watch"], **fields})


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    with Database(sqlite_url(tmp_path / "gridwatch.sqlite3")) as database:
        yield database


def test_a_new_rule_set_applies_from_the_next_sighting(database: Database) -> None:
    clock = Clock()
    engine = RuleEngine([rule("r1")], RuleState(database), clock, delivered_on_create=True)
    assert [a.rule for a in engine.evaluate(sighting())] == ["r1"]

    engine.reconfigure([rule("r1"), rule("r2", severity=Severity.CRITICAL)])
    assert engine.rule_ids == ["r1", "r2"]
    clock.now = T0 + dt.timedelta(seconds=10)
    # r1 is unchanged: its cooldown (in the rule state) still runs; r2 is new: it alerts.
    alerts = engine.evaluate(sighting(at=clock.now))
    assert [(a.rule, a.severity) for a in alerts] == [("r2", Severity.CRITICAL)]
    cooldown = RuleState(database).cooldown("r1", "p_1")
    assert cooldown is not None
    assert (cooldown.last_alert_at, cooldown.suppressed) == (T0, 1)


def test_a_removed_rule_stops_alerting(database: Database) -> None:
    engine = RuleEngine(
        [rule("r1"), rule("r2", registries=["other"])], RuleState(database), Clock(), delivered_on_create=True
    )
    engine.reconfigure([rule("r2", registries=["other"])])
    assert engine.evaluate(sighting()) == []
    assert [a.rule for a in engine.evaluate(sighting(registry="other"))] == ["r2"]


def test_a_changed_rule_keeps_its_cooldown_and_uses_its_new_settings(database: Database) -> None:
    clock = Clock()
    engine = RuleEngine([rule("r1", cooldown_s=600)], RuleState(database), clock, delivered_on_create=True)
    assert engine.evaluate(sighting())
    clock.now = T0 + dt.timedelta(seconds=120)
    assert engine.evaluate(sighting(at=clock.now)) == []  # within 600 s

    engine.reconfigure([rule("r1", cooldown_s=60)])
    assert [a.rule for a in engine.evaluate(sighting(at=clock.now))] == ["r1"]  # 120 s > the new 60 s

    engine.reconfigure([rule("r1", cooldown_s=60, sources=["cam-2"])])
    clock.now = T0 + dt.timedelta(seconds=600)
    assert engine.evaluate(sighting(at=clock.now)) == []  # cam-1 is no longer watched by r1


def test_an_empty_rule_set_makes_no_alerts(database: Database) -> None:
    engine = RuleEngine([rule("r1")], RuleState(database), Clock(), delivered_on_create=True)
    engine.reconfigure([])
    assert engine.rule_ids == []
    assert engine.evaluate(sighting()) == []
    assert engine.sightings == 1
