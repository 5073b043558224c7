"""The cooldown runs from delivery; an alert waiting undelivered suppresses (and counts) what follows."""

from __future__ import annotations

import datetime as dt

from gridwatch.core.config.rules import SeenRuleConfig
from gridwatch.core.db import Database
from gridwatch.core.events import Severity
from rules.engine import RuleEngine
from rules.state import RuleState
from tests.rules.support import T0, Clock, sighting


def engine(database: Database, clock: Clock, severity: Severity = Severity.WARNING) -> RuleEngine:
    config = SeenRuleConfig(id="seen-1", kind="seen", registries=["watch"], cooldown_s=600, severity=severity)
    return RuleEngine([config], RuleState(database), clock)


def test_an_undelivered_alert_suppresses_until_delivered_then_the_cooldown_runs(database: Database) -> None:
    clock = Clock()
    rules = engine(database, clock)
    [first] = rules.evaluate(sighting())
    # Kafka is down for an hour: every sighting meanwhile is suppressed, however long the wait.
    for minutes in (1, 20, 59):
        assert rules.evaluate(sighting(at=clock.advance(0) + dt.timedelta(minutes=minutes))) == []
        clock.now = T0 + dt.timedelta(minutes=minutes)
    delivered_at = T0 + dt.timedelta(hours=1)
    rules.delivered(first.alert_id, delivered_at)
    clock.now = delivered_at + dt.timedelta(seconds=599)
    assert rules.evaluate(sighting(at=clock.now)) == []  # the cooldown runs from the delivery
    clock.now = delivered_at + dt.timedelta(seconds=600)
    [second] = rules.evaluate(sighting(at=clock.now))
    assert second.suppressed == 4
    assert rules.suppressed["seen-1"] == 4


def test_only_the_first_delivery_starts_the_cooldown(database: Database) -> None:
    clock = Clock()
    rules = engine(database, clock)
    [first] = rules.evaluate(sighting())
    rules.delivered(first.alert_id, T0 + dt.timedelta(seconds=1))
    rules.delivered(first.alert_id, T0 + dt.timedelta(seconds=500))  # a second, slower sink
    clock.now = T0 + dt.timedelta(seconds=601)
    assert len(rules.evaluate(sighting(at=clock.now))) == 1


def test_a_higher_severity_passes_an_undelivered_alert(database: Database) -> None:
    clock = Clock()
    state_db = database
    assert engine(state_db, clock, Severity.INFO).evaluate(sighting())
    assert len(engine(state_db, clock, Severity.CRITICAL).evaluate(sighting())) == 1
