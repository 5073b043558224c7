"""Alert identity comes from the event's own id, not the device clock: a gate whose clock stands still
still gets one alert per visit, and the counters count the alerts that exist (the outbox's)."""

from __future__ import annotations

import datetime as dt

from gridwatch.core.config.rules import SeenRuleConfig
from gridwatch.core.db import Database
from gridwatch.core.events import SourceKind
from notifier.outbox import Outbox
from recognition.recognizer import gate_event_key
from rules.engine import RuleEngine
from rules.state import RuleState
from tests.rules.support import T0, Clock, sighting

STUCK = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # the terminal's clock, the same on every event
COOLDOWN_S = 600


def test_a_gate_with_a_stuck_clock_ten_visits_a_cooldown_apart_make_ten_alerts(database: Database) -> None:
    clock = Clock()
    config = SeenRuleConfig(id="seen-1", kind="seen", registries=["watch"], cooldown_s=COOLDOWN_S)
    rules = RuleEngine([config], RuleState(database), clock)
    outbox = Outbox(database, sinks=["console"])
    outbox.open()
    added = []
    for visit in range(10):
        clock.now = T0 + dt.timedelta(seconds=visit * (COOLDOWN_S + 1))
        event = sighting(source="gate-1", kind=SourceKind.GATE, at=STUCK).model_copy(update={"received_at": clock.now})
        [alert] = rules.evaluate(event)
        added.append(outbox.add(alert))
        rules.delivered(alert.alert_id, clock.now)
    assert added == [True] * 10  # ten distinct alerts, none merged as a "replay"
    assert rules.alerts == 10
    assert outbox.add(alert) is False  # the same alert again is a replay


def test_a_replayed_sighting_after_the_cooldown_makes_the_same_alert_and_is_not_counted_twice(
    database: Database,
) -> None:
    clock = Clock()
    config = SeenRuleConfig(id="seen-1", kind="seen", registries=["watch"], cooldown_s=COOLDOWN_S)
    rules = RuleEngine([config], RuleState(database), clock)
    outbox = Outbox(database, sinks=["console"])
    outbox.open()
    event = sighting(source="gate-1", kind=SourceKind.GATE, at=STUCK)
    [first] = rules.evaluate(event)
    assert outbox.add(first)
    rules.delivered(first.alert_id, clock.now)
    clock.advance(COOLDOWN_S + 1)
    [again] = rules.evaluate(event)  # the transport hands the same sighting over again
    assert again.alert_id == first.alert_id
    assert outbox.add(again) is False
    rules.release(again)  # what the service's notifier port does with a duplicate
    assert rules.alerts == 1
    assert rules.alerts_by_rule["seen-1"] == 1
    # The replay left no cooldown behind: the next real visit alerts at once.
    [visit] = rules.evaluate(sighting(source="gate-1", kind=SourceKind.GATE, at=STUCK))
    assert visit.alert_id != first.alert_id


def test_a_gate_event_resent_by_the_device_has_the_same_key_a_new_event_another() -> None:
    key = gate_event_key("gate-1", 4711, STUCK)
    assert key == gate_event_key("gate-1", 4711, STUCK)  # a resend: same serial, same device time
    assert key != gate_event_key("gate-1", 4712, STUCK)  # the next visit, clock stuck
    assert key != gate_event_key("gate-2", 4711, STUCK)
    assert key != gate_event_key("gate-1", 4711, STUCK + dt.timedelta(days=3))  # serial counter reset
    assert gate_event_key("gate-1", None, STUCK) is None  # no serial: random sighting ids
