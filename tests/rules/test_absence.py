"""not_seen: timers from enrolment, restarted by home sightings, fired once, surviving a restart."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import TypeAdapter

from gridwatch.core.config.rules import RuleConfig
from gridwatch.core.db import Database
from gridwatch.core.events import Alert
from rules.engine import RuleEngine
from rules.state import RuleState
from tests.rules.support import T0, Clock, DailyWindow, Directory, Entry, sighting
from tests.support.db import Databases

RULE = TypeAdapter(RuleConfig)
H = 3600


def engine(database: Database, clock: Clock, directory: Directory, **rule: Any) -> RuleEngine:
    fields = {"id": "welfare", "kind": "not_seen", "registries": ["watch"], "after_s": 48 * H, **rule}
    return RuleEngine(
        [RULE.validate_python(fields)],
        RuleState(database),
        clock,
        directory=directory,
        schedules={"day": DailyWindow(8, 20)},
        delivered_on_create=True,
    )


def fire(rules: RuleEngine) -> list[Alert]:
    """One timer pass as the stage runs it: arm, then fire and commit what is due."""
    rules.arm()
    firings = rules.due()
    for firing in firings:
        firing.commit()
    return [f.alert for f in firings]


def test_fires_exactly_after_the_absence_once(database: Database) -> None:
    clock = Clock()
    rules = engine(database, clock, Directory(Entry("p_1", home_sources=("gate-n", "gate-s"))))
    assert fire(rules) == []
    clock.now = T0 + dt.timedelta(seconds=48 * H - 1)
    assert fire(rules) == []
    clock.now = T0 + dt.timedelta(seconds=48 * H)
    [alert] = fire(rules)
    assert (alert.kind, alert.person_id, alert.source) == ("not_seen", "p_1", "gate-n")
    assert "not seen at gate-n, gate-s since 2026-11-22 08:00 UTC" in alert.explanation
    assert "48 h" in alert.explanation
    clock.now += dt.timedelta(days=30)
    assert fire(rules) == []  # once per absence without repeat_s


def test_a_home_sighting_restarts_the_absence_and_others_do_not(database: Database) -> None:
    clock = Clock()
    rules = engine(database, clock, Directory(Entry("p_1", home_sources=("gate-n",))))
    fire(rules)
    clock.now = T0 + dt.timedelta(hours=40)
    rules.evaluate(sighting(source="gate-n", at=clock.now))
    rules.evaluate(sighting(source="cam-elsewhere", at=clock.now + dt.timedelta(hours=1)))
    clock.now = T0 + dt.timedelta(hours=87, minutes=59)
    assert fire(rules) == []
    clock.now = T0 + dt.timedelta(hours=88)
    [alert] = fire(rules)
    assert "not seen at gate-n since 2026-11-24 00:00 UTC, 48 h" in alert.explanation
    # An older sighting arriving late changes nothing.
    rules.evaluate(sighting(source="gate-n", at=T0 + dt.timedelta(hours=1)))
    assert RuleState(database).next_due() is None


def test_rule_sources_are_the_home_without_an_entry_list(database: Database) -> None:
    clock = Clock()
    rules = engine(database, clock, Directory(Entry("p_1")), sources=["gate-s"])
    fire(rules)
    clock.now = T0 + dt.timedelta(hours=47)
    rules.evaluate(sighting(source="gate-s", at=clock.now))
    clock.now = T0 + dt.timedelta(hours=48)
    assert fire(rules) == []


def test_repeat_and_overdue_fires_once_not_per_missed_period(database: Database) -> None:
    clock = Clock()
    rules = engine(database, clock, Directory(Entry("p_1")), repeat_s=12 * H)
    fire(rules)
    clock.now = T0 + dt.timedelta(hours=48)
    assert len(fire(rules)) == 1
    clock.now = T0 + dt.timedelta(hours=60)
    assert len(fire(rules)) == 1
    # The service was down for four days: one alert, then every 12 h from now.
    clock.now = T0 + dt.timedelta(hours=160)
    assert len(fire(rules)) == 1
    assert fire(rules) == []
    clock.now += dt.timedelta(hours=12)
    assert len(fire(rules)) == 1


def test_a_clock_that_jumps_back_never_fires_twice(database: Database) -> None:
    clock = Clock()
    rules = engine(database, clock, Directory(Entry("p_1")))
    fire(rules)
    clock.now = T0 + dt.timedelta(hours=49)
    assert len(fire(rules)) == 1
    clock.now = T0 + dt.timedelta(hours=47)  # NTP steps back
    assert fire(rules) == []
    clock.now = T0 + dt.timedelta(hours=50)
    assert fire(rules) == []


def test_timer_starts_at_enrolment_or_when_the_rule_first_applies(database: Database) -> None:
    clock = Clock()
    directory = Directory(Entry("p_old", enrolled_at=T0 - dt.timedelta(days=100)))
    rules = engine(database, clock, directory)
    fire(rules)  # the rule applies from T0 on, not from the old enrolment
    directory.add(Entry("p_new", enrolled_at=T0 + dt.timedelta(hours=10)))
    clock.now = T0 + dt.timedelta(hours=10, minutes=1)
    fire(rules)
    clock.now = T0 + dt.timedelta(hours=48)
    assert [a.person_id for a in fire(rules)] == ["p_old"]
    clock.now = T0 + dt.timedelta(hours=58)
    assert [a.person_id for a in fire(rules)] == ["p_new"]


def test_a_removed_entry_drops_its_timer(database: Database) -> None:
    clock = Clock()
    directory = Directory(Entry("p_1"))
    rules = engine(database, clock, directory)
    fire(rules)
    directory.entries.clear()
    clock.now = T0 + dt.timedelta(hours=48)
    assert fire(rules) == []
    assert RuleState(database).timer_persons("welfare") == set()


def test_an_uncommitted_firing_fires_again_with_the_same_id(database: Database) -> None:
    """The stage moves a timer only after its alert is in the outbox: a crash in between repeats the alert."""
    clock = Clock(T0 + dt.timedelta(hours=48))
    rules = engine(database, clock, Directory(Entry("p_1", enrolled_at=T0)))
    rules.arm()
    clock.now = T0 + dt.timedelta(hours=96)
    [lost] = rules.due()  # never committed
    [again] = rules.due()
    assert again.alert.alert_id == lost.alert.alert_id


def test_disarmed_at_the_due_time_fires_when_armed_again(database: Database) -> None:
    clock = Clock(T0.replace(hour=20))
    rules = engine(database, clock, Directory(Entry("p_1", enrolled_at=T0)), active="day", after_s=H)
    fire(rules)
    clock.now = T0.replace(hour=22)
    assert fire(rules) == []
    clock.now = (T0 + dt.timedelta(days=1)).replace(hour=8)
    [alert] = fire(rules)
    assert alert.person_id == "p_1"


def test_paused_timers_count_only_armed_time(database: Database) -> None:
    clock = Clock(T0.replace(hour=19))  # armed 08-20: one hour counts today
    rules = engine(
        database,
        clock,
        Directory(Entry("p_1", enrolled_at=T0)),
        active="day",
        after_s=2 * H,
        pause_timers_when_inactive=True,
    )
    fire(rules)
    clock.now = (T0 + dt.timedelta(days=1)).replace(hour=8, minute=59)
    assert fire(rules) == []
    clock.now = clock.now.replace(minute=0, hour=9)
    assert len(fire(rules)) == 1


def test_timers_survive_a_restart(databases: Databases) -> None:
    clock = Clock()
    directory = Directory(Entry("p_1"))
    first = databases()
    fire(engine(first, clock, directory))
    first.close()  # killed
    clock.now = T0 + dt.timedelta(hours=100)
    restarted = engine(databases(), clock, directory)
    assert len(fire(restarted)) == 1
    assert fire(restarted) == []


def test_a_device_clock_stuck_in_the_past_does_not_make_the_absence_due(database: Database) -> None:
    """The absence restarts at the server's time of the sighting, not at the device's."""
    clock = Clock(T0 + dt.timedelta(days=10))
    rules = engine(database, clock, Directory(Entry("p_1")))
    fire(rules)
    stuck = sighting(at=T0).model_copy(update={"received_at": clock.now})  # the device still says T0
    rules.evaluate(stuck)
    clock.now += dt.timedelta(hours=47)
    assert fire(rules) == []
    clock.now += dt.timedelta(hours=1)
    assert len(fire(rules)) == 1
