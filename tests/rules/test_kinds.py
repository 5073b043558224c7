"""outside_area, outside_hours, frequency and stranger_at_gate, with an injected clock."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import TypeAdapter

from gridwatch.core.config.rules import RuleConfig
from gridwatch.core.config.schedules import ScheduleConfig
from gridwatch.core.db import Database
from gridwatch.core.events import Sighting, SourceKind, StrangerAttempt
from gridwatch.core.schedules import Schedule
from rules.engine import RuleEngine
from rules.state import RuleState
from tests.rules.support import T0, Clock, DailyWindow, Directory, Entry, sighting

RULE = TypeAdapter(RuleConfig)
ZONES = {"estate-north": frozenset({"gate-n", "cam-n"}), "estate-south": frozenset({"gate-s"})}
SCHEDULES = {"day": DailyWindow(8, 20), "night": DailyWindow(22, 6)}


def engine(database: Database, clock: Clock, directory: Directory | None = None, **rule: Any) -> RuleEngine:
    config = RULE.validate_python({"id": "r", "registries": ["watch"], **rule})
    return RuleEngine(
        [config],
        RuleState(database),
        clock,
        directory=directory or Directory(),
        zones=ZONES,
        schedules=SCHEDULES,
        delivered_on_create=True,
    )


# --- outside_area ---------------------------------------------------------------------------------


def test_outside_area_alerts_outside_the_rule_zones_only(database: Database) -> None:
    rules = engine(database, Clock(), kind="outside_area", allowed_zones=["estate-north"])
    assert rules.evaluate(sighting(source="gate-n")) == []
    [alert] = rules.evaluate(sighting(person="p_2", source="gate-s"))
    assert (alert.kind, alert.source) == ("outside_area", "gate-s")
    assert "outside the permitted zone(s) estate-north" in alert.explanation


def test_outside_area_prefers_the_entry_zones(database: Database) -> None:
    directory = Directory(Entry("p_1", allowed_zones=("estate-south",)))
    rules = engine(database, Clock(), directory, kind="outside_area", allowed_zones=["estate-north"])
    assert rules.evaluate(sighting(source="gate-s")) == []  # the entry's own zone
    assert len(rules.evaluate(sighting(source="gate-n"))) == 1  # the rule's zone does not count for p_1


def test_outside_area_without_any_zone_says_nothing(database: Database) -> None:
    rules = engine(database, Clock(), kind="outside_area")
    assert rules.evaluate(sighting(source="anywhere")) == []


# --- outside_hours --------------------------------------------------------------------------------


def test_outside_hours_uses_the_capture_time(database: Database) -> None:
    rules = engine(database, Clock(), kind="outside_hours", allowed_hours="day", cooldown_s=0)
    assert rules.evaluate(sighting(at=T0.replace(hour=8))) == []  # from is inclusive
    assert rules.evaluate(sighting(at=T0.replace(hour=19, minute=59))) == []
    [alert] = rules.evaluate(sighting(at=T0.replace(hour=20)))  # to is exclusive
    assert "outside the permitted hours 'day'" in alert.explanation


def test_outside_hours_entry_schedule_crossing_midnight(database: Database) -> None:
    directory = Directory(Entry("p_1", allowed_hours="night"))
    rules = engine(database, Clock(), directory, kind="outside_hours", allowed_hours="day", cooldown_s=0)
    assert rules.evaluate(sighting(at=T0.replace(hour=23))) == []
    assert rules.evaluate(sighting(at=T0.replace(hour=3))) == []
    assert len(rules.evaluate(sighting(at=T0.replace(hour=12)))) == 1


# --- frequency ------------------------------------------------------------------------------------


def test_frequency_counts_passes_not_frames(database: Database) -> None:
    clock = Clock()
    rules = engine(database, clock, kind="frequency", count=3, within_s=3600, pass_gap_s=60)
    # One walk past the camera: many frames, one pass.
    for second in range(0, 50, 5):
        assert rules.evaluate(sighting(at=T0 + dt.timedelta(seconds=second))) == []
    assert rules.evaluate(sighting(at=T0 + dt.timedelta(minutes=10))) == []  # pass 2
    [alert] = rules.evaluate(sighting(at=T0 + dt.timedelta(minutes=20)))  # pass 3
    assert alert.kind == "frequency"
    assert "passed 3 times within 1 h" in alert.explanation


def test_frequency_window_slides(database: Database) -> None:
    rules = engine(database, Clock(), kind="frequency", count=3, within_s=600, cooldown_s=0)
    gate = SourceKind.GATE
    assert rules.evaluate(sighting(source="gate-n", kind=gate, at=T0)) == []
    assert rules.evaluate(sighting(source="gate-n", kind=gate, at=T0 + dt.timedelta(seconds=300))) == []
    # The first pass left the window: still two.
    assert rules.evaluate(sighting(source="gate-n", kind=gate, at=T0 + dt.timedelta(seconds=601))) == []
    assert len(rules.evaluate(sighting(source="gate-n", kind=gate, at=T0 + dt.timedelta(seconds=650)))) == 1


def test_frequency_window_counts_on_the_servers_clock_not_a_stuck_gate_clock(database: Database) -> None:
    rules = engine(database, Clock(), kind="frequency", count=3, within_s=600, cooldown_s=0)
    stuck = dt.datetime(2019, 1, 1, tzinfo=dt.UTC)

    def at_gate(received: dt.datetime) -> Sighting:
        return sighting(source="gate-n", kind=SourceKind.GATE, at=received).model_copy(update={"captured_at": stuck})

    # Three visits an hour apart with one stuck device time: never three within 10 minutes.
    assert [rules.evaluate(at_gate(T0 + dt.timedelta(hours=h))) for h in range(3)] == [[], [], []]


def test_frequency_every_gate_event_and_every_track_is_a_pass(database: Database) -> None:
    rules = engine(database, Clock(), kind="frequency", count=2, within_s=600)
    assert rules.evaluate(sighting(source="gate-n", kind=SourceKind.GATE)) == []
    assert len(rules.evaluate(sighting(source="gate-n", kind=SourceKind.GATE, at=T0 + dt.timedelta(seconds=1)))) == 1
    tracked = engine(database, Clock(), kind="frequency", count=2, within_s=600, id="t")
    assert tracked.evaluate(sighting(person="p_9", track="a")) == []
    assert tracked.evaluate(sighting(person="p_9", track="a", at=T0 + dt.timedelta(seconds=1))) == []
    assert len(tracked.evaluate(sighting(person="p_9", track="b", at=T0 + dt.timedelta(seconds=2)))) == 1


def test_frequency_zones_count_as_sources(database: Database) -> None:
    rules = engine(
        database, Clock(), kind="frequency", count=2, within_s=600, sources=["cam-x"], zones=["estate-south"]
    )
    assert rules.evaluate(sighting(source="gate-n", kind=SourceKind.GATE)) == []  # not watched
    assert rules.evaluate(sighting(source="gate-s", kind=SourceKind.GATE)) == []
    assert len(rules.evaluate(sighting(source="cam-x", at=T0 + dt.timedelta(seconds=5)))) == 1


# --- stranger_at_gate -----------------------------------------------------------------------------


def attempt(
    at: dt.datetime,
    cluster: str | None = "c1",
    event: str | None = None,
    verdict: str = "unmatched",
    *,
    device_time: dt.datetime | None = None,
) -> StrangerAttempt:
    return StrangerAttempt(
        source="gate-n",
        source_kind=SourceKind.GATE,
        captured_at=at if device_time is None else device_time,
        received_at=at,
        cluster=cluster,
        verdict=verdict,  # type: ignore[arg-type]
        gate_event_id=event,
    )


def stranger_engine(database: Database, clock: Clock) -> RuleEngine:
    config = RULE.validate_python(
        {"id": "s", "kind": "stranger_at_gate", "known_registries": ["residents"], "count": 3, "within_s": 300}
    )
    return RuleEngine([config], RuleState(database), clock, delivered_on_create=True)


def test_stranger_alerts_after_count_attempts_of_one_face(database: Database) -> None:
    rules = stranger_engine(database, Clock())
    assert rules.attempt(attempt(T0, event="e1")) == []
    assert rules.attempt(attempt(T0 + dt.timedelta(seconds=10), cluster="c2")) == []  # another face
    assert rules.attempt(attempt(T0 + dt.timedelta(seconds=20), event="e2")) == []
    [alert] = rules.attempt(attempt(T0 + dt.timedelta(seconds=30), event="e3"))
    assert (alert.person_id, alert.registry, alert.source, alert.kind) == (None, None, "gate-n", "stranger_at_gate")
    assert "3 times" in alert.explanation
    assert "e1, e2, e3" in alert.explanation
    assert alert.key == "source:gate-n"


def test_stranger_attempts_expire_and_gate_refusals_count(database: Database) -> None:
    rules = stranger_engine(database, Clock())
    assert rules.attempt(attempt(T0)) == []
    assert rules.attempt(attempt(T0 + dt.timedelta(seconds=200))) == []
    assert rules.attempt(attempt(T0 + dt.timedelta(seconds=400))) == []  # the first left the window
    for second in (0, 1):
        assert rules.attempt(attempt(T0 + dt.timedelta(seconds=second), cluster=None, verdict="denied")) == []
    assert len(rules.attempt(attempt(T0 + dt.timedelta(seconds=2), cluster=None, verdict="denied"))) == 1


def test_the_stranger_window_counts_on_the_servers_clock_not_a_stuck_gate_clock(database: Database) -> None:
    stuck = dt.datetime(2019, 1, 1, tzinfo=dt.UTC)
    rules = stranger_engine(database, Clock())
    # Three attempts an hour apart, all stamped with the same stuck device time: three separate visits.
    for hour, event in enumerate(("e1", "e2", "e3")):
        at = T0 + dt.timedelta(hours=hour)
        assert rules.attempt(attempt(at, event=event, device_time=stuck)) == []
    # Three attempts within the window whose device times are years apart: one incident.
    rules = stranger_engine(database, Clock(T0 + dt.timedelta(days=1)))
    times = [dt.datetime(2001, 5, 1, tzinfo=dt.UTC), dt.datetime(2031, 5, 1, tzinfo=dt.UTC), stuck]
    alerts = [
        rules.attempt(attempt(T0 + dt.timedelta(days=1, seconds=10 * n), event=f"f{n}", device_time=device))
        for n, device in enumerate(times)
    ]
    assert [len(a) for a in alerts] == [0, 0, 1]


def test_a_gate_event_handed_over_again_counts_once(database: Database) -> None:
    rules = stranger_engine(database, Clock())
    assert rules.attempt(attempt(T0, event="e1")) == []
    assert rules.attempt(attempt(T0, event="e1")) == []  # at least once: the transport delivered it again
    assert rules.attempt(attempt(T0 + dt.timedelta(seconds=10), event="e2")) == []
    [alert] = rules.attempt(attempt(T0 + dt.timedelta(seconds=20), event="e3"))
    assert "3 times" in alert.explanation


def test_a_released_stranger_alert_frees_the_gate(database: Database) -> None:
    """The outbox could not store the alert: the gate must not stay silent, waiting for its delivery."""
    config = RULE.validate_python(
        {"id": "s", "kind": "stranger_at_gate", "known_registries": ["residents"], "count": 2, "within_s": 300}
    )
    rules = RuleEngine([config], RuleState(database), Clock())  # alerts wait for their delivery
    assert rules.attempt(attempt(T0, event="e1")) == []
    [lost] = rules.attempt(attempt(T0 + dt.timedelta(seconds=1), event="e2"))
    rules.release(lost)
    assert rules.attempt(attempt(T0 + dt.timedelta(seconds=2), event="e3")) == []
    assert len(rules.attempt(attempt(T0 + dt.timedelta(seconds=3), event="e4"))) == 1


def test_attempts_that_never_made_an_alert_are_forgotten_after_the_window(database: Database) -> None:
    clock = Clock()
    rules = stranger_engine(database, clock)
    assert rules.attempt(attempt(T0, event="e1")) == []
    rules.arm()
    assert [p.track for p in rules.state.passes("s", "gate-n|c1")] == ["e1"]
    clock.advance(301)
    rules.arm()  # the stage's timer pass
    assert rules.state.passes("s", "gate-n|c1") == []


# --- arming schedule ------------------------------------------------------------------------------


def test_a_disarmed_rule_makes_no_alert_but_counts(database: Database) -> None:
    rules = engine(database, Clock(), kind="frequency", count=2, within_s=36000, active="day")
    night = T0.replace(hour=3)
    assert rules.evaluate(sighting(source="gate-n", kind=SourceKind.GATE, at=night)) == []
    assert rules.evaluate(sighting(source="gate-n", kind=SourceKind.GATE, at=night.replace(hour=4))) == []
    # Armed again: the passes counted at night count.
    assert len(rules.evaluate(sighting(source="gate-n", kind=SourceKind.GATE, at=night.replace(hour=9)))) == 1
    seen = engine(database, Clock(), kind="seen", active="day", id="seen")
    assert seen.evaluate(sighting(at=night)) == []
    assert len(seen.evaluate(sighting(at=night.replace(hour=12)))) == 1


def real_schedule(yaml_like: dict[str, Any]) -> Schedule:
    return Schedule.from_config(ScheduleConfig.model_validate(yaml_like))


def test_outside_hours_in_a_zone_with_daylight_saving_time(database: Database) -> None:
    """Office hours 08:00-18:00 Berlin time: 06:30 UTC is 07:30 in winter (outside) and 08:30 in summer."""
    office = real_schedule(
        {
            "id": "office",
            "timezone": "Europe/Berlin",
            "intervals": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "18:00"}],
        }
    )
    config = RULE.validate_python(
        {"id": "r", "kind": "outside_hours", "registries": ["watch"], "allowed_hours": "office", "cooldown_s": 0}
    )
    rules = RuleEngine([config], RuleState(database), Clock(), schedules={"office": office}, delivered_on_create=True)
    winter = dt.datetime(2026, 3, 27, 6, 30, tzinfo=dt.UTC)  # Friday, CET (UTC+1)
    summer = dt.datetime(2026, 3, 30, 6, 30, tzinfo=dt.UTC)  # Monday, CEST (UTC+2) since Sunday
    assert len(rules.evaluate(sighting(at=winter))) == 1
    assert rules.evaluate(sighting(at=summer)) == []


def test_an_arming_window_crossing_midnight_in_shanghai(database: Database) -> None:
    night = real_schedule(
        {"id": "night", "timezone": "Asia/Shanghai", "intervals": [{"days": ["fri"], "from": "22:00", "to": "06:00"}]}
    )
    config = RULE.validate_python(
        {"id": "r", "kind": "seen", "registries": ["watch"], "active": "night", "cooldown_s": 0}
    )
    rules = RuleEngine([config], RuleState(database), Clock(), schedules={"night": night}, delivered_on_create=True)
    friday_2230 = dt.datetime(2026, 11, 27, 14, 30, tzinfo=dt.UTC)  # 22:30 in Shanghai (UTC+8, no DST)
    saturday_0559 = dt.datetime(2026, 11, 27, 21, 59, tzinfo=dt.UTC)
    saturday_0600 = dt.datetime(2026, 11, 27, 22, 0, tzinfo=dt.UTC)
    assert len(rules.evaluate(sighting(at=friday_2230))) == 1
    assert len(rules.evaluate(sighting(person="p_2", at=saturday_0559))) == 1
    assert rules.evaluate(sighting(person="p_3", at=saturday_0600)) == []  # `to` is excluded
