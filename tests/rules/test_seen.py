"""The "seen" warning model: cooldown per (person, rule), severity passes, state survives restart."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from gridwatch.core.config.rules import SeenRuleConfig
from gridwatch.core.db import Database
from gridwatch.core.db.schema import cooldowns
from gridwatch.core.events import Quality, Severity, Sighting, SourceKind
from rules.engine import RuleEngine
from rules.state import RuleState
from tests.support.db import Databases, sqlite_url

T0 = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)


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


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


def engine(database: Database, clock: Clock, **rule: object) -> RuleEngine:
    config = SeenRuleConfig.model_validate({"id": "seen-1", "kind": "seen", "registries": ["watch"], **rule})
    return RuleEngine([config], RuleState(database), clock, delivered_on_create=True)


@pytest.fixture
def database(databases: Databases) -> Database:
    """The rule state's database, on SQLite and on PostgreSQL."""
    return databases()


def test_cooldown_suppresses_repeats_then_lets_one_through(database: Database) -> None:
    clock = Clock()
    rules = engine(database, clock, cooldown_s=600)
    first = rules.evaluate(sighting())
    assert len(first) == 1
    assert first[0].rule == "seen-1"
    assert first[0].person_id == "p_1"
    assert first[0].model == "test@0"  # the pack and recogniser hash of the match behind the alert
    clock.now = T0 + dt.timedelta(seconds=599)
    assert rules.evaluate(sighting(at=clock.now)) == []
    assert rules.evaluate(sighting(person="p_2", at=clock.now)) != []  # per person
    clock.now = T0 + dt.timedelta(seconds=601)
    assert len(rules.evaluate(sighting(at=clock.now))) == 1


def test_state_survives_a_restart(databases: Databases) -> None:
    clock = Clock()
    before = databases()
    assert engine(before, clock).evaluate(sighting())
    before.close()  # the process ends
    clock.now = T0 + dt.timedelta(seconds=10)
    after = databases()
    restarted = engine(after, clock)
    assert restarted.evaluate(sighting(at=clock.now)) == []
    cooldown = RuleState(after).cooldown("seen-1", "p_1")
    assert cooldown is not None
    assert (cooldown.suppressed, cooldown.last_alert_at) == (1, T0)
    with after.engine.connect() as conn:
        assert conn.execute(select(cooldowns.c.partition)).scalars().all() == [0]  # one process: partition 0


def test_alert_id_is_deterministic(tmp_path: Path) -> None:
    """The id comes from the sighting's own id: the same sighting judged again (a replay) makes the same
    alert id, another sighting at the same device time another one."""
    seen = sighting()
    with Database(sqlite_url(tmp_path / "a.sqlite3")) as a_db, Database(sqlite_url(tmp_path / "b.sqlite3")) as b_db:
        a = engine(a_db, Clock()).evaluate(seen)[0]
        b = engine(b_db, Clock()).evaluate(seen)[0]
        other = engine(a_db, Clock()).evaluate(sighting(person="p_2"))[0]
    assert a.alert_id == b.alert_id
    assert other.alert_id != a.alert_id


@pytest.mark.parametrize(
    ("rule", "s", "alerts"),
    [
        ({}, sighting(), 1),
        ({"sources": ["cam-2"]}, sighting(), 0),
        ({"sources": ["cam-1"]}, sighting(), 1),
        ({}, sighting(registry="other"), 0),
    ],
)
def test_rule_scope(database: Database, rule: dict[str, object], s: Sighting, alerts: int) -> None:
    assert len(engine(database, Clock(), **rule).evaluate(s)) == alerts


def test_higher_severity_passes_the_cooldown(database: Database) -> None:
    clock = Clock()
    state = RuleState(database)
    low = SeenRuleConfig(id="seen-1", kind="seen", registries=["watch"], severity=Severity.INFO)
    assert RuleEngine([low], state, clock, delivered_on_create=True).evaluate(sighting())
    high = SeenRuleConfig(id="seen-1", kind="seen", registries=["watch"], severity=Severity.CRITICAL)
    assert RuleEngine([high], state, clock, delivered_on_create=True).evaluate(sighting())
    assert RuleEngine([high], state, clock, delivered_on_create=True).evaluate(sighting()) == []


def test_alerts_carry_references_only(database: Database) -> None:
    alert = engine(database, Clock()).evaluate(sighting())[0]
    payload = alert.to_json()
    assert "embedding" not in payload
    assert "image" not in payload
    assert '"schema":"gridwatch.alert/v1"' in payload


def test_alerts_a_cooldown_apart_have_distinct_ids(database: Database) -> None:
    clock = Clock()
    rules = engine(database, clock, cooldown_s=30)
    first = rules.evaluate(sighting())[0]
    clock.now = T0 + dt.timedelta(seconds=30)
    second = rules.evaluate(sighting(at=clock.now))[0]
    assert first.alert_id != second.alert_id


def test_a_released_alert_frees_the_cooldown(database: Database) -> None:
    """The service releases an alert the outbox could not store: the next sighting alerts again."""
    clock = Clock()
    rules = engine(database, clock, cooldown_s=600)
    lost = rules.evaluate(sighting())[0]
    rules.release(lost)
    clock.now = T0 + dt.timedelta(seconds=5)
    assert len(rules.evaluate(sighting(at=clock.now))) == 1
