"""Duty rosters: who is on duty when, across shifts, midnight, overrides, rotations, time zones and the ladder."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from gridwatch.core.config.root import GridwatchConfig
from notifier.duty import DutyRoster, roster_warnings

# 2026-11-30 is a Monday. Asia/Shanghai is UTC+8 all year; Europe/Berlin changes on 2026-03-29 and 2026-10-25.
ALL_WEEK = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

DUTY: list[dict[str, Any]] = [
    {
        "grid": "g1",
        "timezone": "Asia/Shanghai",
        "shifts": [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "18:00", "staff": ["li"]},
            {"days": ["mon", "tue", "wed", "thu"], "from": "22:00", "to": "08:00", "staff": ["wang"]},
            {"days": ["sun"], "from": "22:00", "to": "08:00", "staff": ["zhao"]},  # Sunday night into Monday
            {"days": ["wed"], "from": "12:00", "to": "14:00", "staff": ["zhao", "li"]},  # overlaps the day shift
        ],
    },
    {
        "grid": "g2",
        "timezone": "Asia/Shanghai",
        "shifts": [
            {"days": ALL_WEEK, "from": "08:00", "to": "20:00", "staff": ["li"]},
            {"days": ALL_WEEK, "from": "20:00", "to": "08:00", "staff": ["wang"]},
        ],
        "overrides": [
            {"date": "2026-12-25", "staff": ["zhao"], "note": "holiday"},
            {"from": "2026-12-10T18:00", "to": "2026-12-11T09:00", "staff": ["zhao", "wang"]},  # across midnight
            {"date": "2027-01-01", "staff": []},  # nobody: alerts climb
            {"from": "2026-12-15T00:00Z", "to": "2026-12-15T01:00Z", "staff": ["zhao"]},  # aware: used as given
            {"date": "2026-12-20", "staff": ["zhao"]},
            {"from": "2026-12-20T10:00", "to": "2026-12-20T12:00", "staff": ["li"]},  # overlaps: union
        ],
    },
    {
        "grid": "g3",
        "timezone": "Asia/Shanghai",
        "rotation": {"staff": ["wang", "li", "zhao"], "every_s": 86400, "start": "2026-12-01T08:00"},
        "shifts": [{"days": ["sat"], "from": "10:00", "to": "12:00", "staff": ["wang"]}],
    },
    {
        "grid": "b1",
        "timezone": "Europe/Berlin",
        "shifts": [{"days": ["sat"], "from": "22:00", "to": "06:00", "staff": ["wang"]}],
    },
    {
        "grid": "b2",
        "timezone": "Europe/Berlin",
        "shifts": [{"days": ALL_WEEK, "from": "08:00", "to": "20:00", "staff": ["zhao"]}],
        "overrides": [{"date": "2026-03-29", "staff": ["li"]}],  # a day of 23 hours
    },
    {
        "grid": "b3",
        "timezone": "Europe/Berlin",
        # Turns are elapsed time: after the change to summer time they hand over at 09:00 local, not 08:00.
        "rotation": {"staff": ["wang", "li"], "every_s": 86400, "start": "2026-03-27T08:00"},
    },
    {
        "grid": "community",
        "timezone": "Asia/Shanghai",
        "shifts": [{"days": ALL_WEEK, "from": "18:00", "to": "22:00", "staff": ["zhao"]}],
    },
    {
        "grid": "street",
        "timezone": "Europe/Berlin",
        "rotation": {"staff": ["boss"], "every_s": 86400, "start": "2026-01-01T00:00Z"},
    },
]


def config(duty: list[dict[str, Any]] | None = None) -> GridwatchConfig:
    return GridwatchConfig.model_validate(
        {
            "grids": [
                {"id": "street", "name": "Street office"},
                {"id": "community", "name": "Riverside", "parent": "street"},
                {"id": "g1", "name": "Grid 1", "parent": "community"},
                {"id": "g2", "name": "Grid 2", "parent": "community"},
                {"id": "g3", "name": "Grid 3", "parent": "community"},
                {"id": "b1", "name": "Berlin 1"},
                {"id": "b2", "name": "Berlin 2"},
                {"id": "b3", "name": "Berlin 3"},
                {"id": "lonely", "name": "No roster"},
            ],
            "channels": [{"id": "push", "type": "console"}],
            "staff": [
                {"id": person, "name": person.title(), "channels": ["push"]}
                for person in ("wang", "li", "zhao", "boss")
            ],
            "duty": DUTY if duty is None else duty,
        }
    )


@pytest.fixture(scope="module")
def roster() -> DutyRoster:
    return DutyRoster.from_config(config())


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("grid", "instant", "expected"),
    [
        # Weekly shifts (g1): day 08-18, nights mon-thu 22-08, Sunday night 22-08, Wednesday 12-14 overlap.
        pytest.param("g1", "2026-12-02T10:00+08:00", ["li"], id="day-shift"),
        pytest.param("g1", "2026-12-02T08:00+08:00", ["li"], id="day-shift-from-included"),
        pytest.param("g1", "2026-12-02T17:59:59+08:00", ["li"], id="day-shift-last-second"),
        pytest.param("g1", "2026-12-02T18:00+08:00", [], id="day-shift-to-excluded"),
        pytest.param("g1", "2026-12-02T07:59:59+08:00", ["wang"], id="night-before-end"),
        pytest.param("g1", "2026-12-02T22:00+08:00", ["wang"], id="night-from-included"),
        pytest.param("g1", "2026-12-02T21:59+08:00", [], id="night-minute-before"),
        pytest.param("g1", "2026-12-02T23:30+08:00", ["wang"], id="night-before-midnight"),
        pytest.param("g1", "2026-12-03T03:00+08:00", ["wang"], id="night-after-midnight"),
        pytest.param("g1", "2026-12-05T03:00+08:00", [], id="friday-night-has-no-shift"),
        pytest.param("g1", "2026-12-04T03:00+08:00", ["wang"], id="thursday-night-into-friday"),
        pytest.param("g1", "2026-12-06T22:00+08:00", ["zhao"], id="sunday-night-starts"),
        pytest.param("g1", "2026-12-07T03:00+08:00", ["zhao"], id="sunday-night-into-monday"),
        pytest.param("g1", "2026-12-07T08:00+08:00", ["li"], id="monday-handover"),
        pytest.param("g1", "2026-12-02T12:30+08:00", ["li", "zhao"], id="overlapping-shifts-union-once"),
        pytest.param("g1", "2026-12-02T02:00Z", ["li"], id="instant-in-utc"),
        pytest.param("g1", "2026-12-02T03:00+01:00", ["li"], id="instant-in-berlin"),
        # Overrides (g2: li 08-20, wang 20-08 every day).
        pytest.param("g2", "2026-12-24T23:59:59+08:00", ["wang"], id="before-holiday"),
        pytest.param("g2", "2026-12-25T00:00+08:00", ["zhao"], id="holiday-starts-at-local-midnight"),
        pytest.param("g2", "2026-12-25T12:00+08:00", ["zhao"], id="holiday-replaces-day-shift"),
        pytest.param("g2", "2026-12-25T23:59:59+08:00", ["zhao"], id="holiday-last-second"),
        pytest.param("g2", "2026-12-26T00:00+08:00", ["wang"], id="after-holiday"),
        pytest.param("g2", "2026-12-24T16:00Z", ["zhao"], id="holiday-given-in-utc"),
        pytest.param("g2", "2026-12-10T17:59+08:00", ["li"], id="swap-not-yet"),
        pytest.param("g2", "2026-12-10T18:00+08:00", ["wang", "zhao"], id="swap-from-included"),
        pytest.param("g2", "2026-12-11T02:00+08:00", ["wang", "zhao"], id="swap-across-midnight"),
        pytest.param("g2", "2026-12-11T09:00+08:00", ["li"], id="swap-to-excluded"),
        pytest.param("g2", "2026-12-31T23:00+08:00", ["wang"], id="before-empty-override"),
        pytest.param("g2", "2027-01-01T12:00+08:00", [], id="empty-override-is-nobody"),
        pytest.param("g2", "2026-12-15T08:30+08:00", ["zhao"], id="aware-override"),
        pytest.param("g2", "2026-12-15T09:00+08:00", ["li"], id="aware-override-ended"),
        pytest.param("g2", "2026-12-20T11:00+08:00", ["li", "zhao"], id="overlapping-overrides-union"),
        pytest.param("g2", "2026-12-20T13:00+08:00", ["zhao"], id="one-override-left"),
        # Rotation (g3: wang, li, zhao daily from 2026-12-01 08:00 Shanghai) plus a Saturday shift.
        pytest.param("g3", "2026-12-01T07:59:59+08:00", [], id="rotation-before-start"),
        pytest.param("g3", "2026-12-01T08:00+08:00", ["wang"], id="rotation-first-turn"),
        pytest.param("g3", "2026-12-02T07:59:59+08:00", ["wang"], id="rotation-first-turn-last-second"),
        pytest.param("g3", "2026-12-02T08:00+08:00", ["li"], id="rotation-second-turn"),
        pytest.param("g3", "2026-12-03T08:00+08:00", ["zhao"], id="rotation-third-turn"),
        pytest.param("g3", "2026-12-04T00:00Z", ["wang"], id="rotation-wraps-around"),
        pytest.param("g3", "2027-12-01T08:00+08:00", ["zhao"], id="rotation-a-year-on"),  # 365 turns: 365 % 3 == 2
        pytest.param("g3", "2026-12-05T11:00+08:00", ["wang", "li"], id="rotation-and-shift"),
        # Europe/Berlin across daylight saving changes: a Saturday night shift 22:00-06:00 local.
        pytest.param("b1", "2026-03-28T20:59Z", [], id="berlin-before-night"),
        pytest.param("b1", "2026-03-28T21:00Z", ["wang"], id="berlin-night-starts-cet"),
        pytest.param("b1", "2026-03-29T03:59Z", ["wang"], id="berlin-spring-forward-05:59-cest"),
        pytest.param("b1", "2026-03-29T04:00Z", [], id="berlin-spring-forward-ends-06:00-cest"),
        pytest.param("b1", "2026-10-24T19:59Z", [], id="berlin-before-night-cest"),
        pytest.param("b1", "2026-10-24T20:00Z", ["wang"], id="berlin-night-starts-cest"),
        pytest.param("b1", "2026-10-25T04:59Z", ["wang"], id="berlin-fall-back-05:59-cet"),
        pytest.param("b1", "2026-10-25T05:00Z", [], id="berlin-fall-back-ends-06:00-cet"),
        pytest.param("b2", "2026-03-28T22:59:59Z", [], id="berlin-before-dst-day-override"),
        pytest.param("b2", "2026-03-28T23:00Z", ["li"], id="berlin-dst-day-override-from-local-midnight"),
        pytest.param("b2", "2026-03-29T12:00+02:00", ["li"], id="berlin-dst-day-override-replaces-shift"),
        pytest.param("b2", "2026-03-29T21:59:59Z", ["li"], id="berlin-dst-day-override-last-second"),
        pytest.param("b2", "2026-03-29T22:00Z", [], id="berlin-dst-day-override-ended-at-local-midnight"),
        pytest.param("b2", "2026-03-30T08:00+02:00", ["zhao"], id="berlin-shift-in-summer-time"),
        pytest.param("b3", "2026-03-27T07:59+01:00", [], id="berlin-rotation-before-start"),
        pytest.param("b3", "2026-03-28T08:00+01:00", ["li"], id="berlin-rotation-second-turn"),
        pytest.param("b3", "2026-03-29T08:30+02:00", ["li"], id="berlin-rotation-turn-still-running-at-08:30-cest"),
        pytest.param("b3", "2026-03-29T09:00+02:00", ["wang"], id="berlin-rotation-hands-over-09:00-cest"),
        pytest.param("lonely", "2026-12-02T10:00Z", [], id="grid-without-roster"),
    ],
)
def test_on_duty(roster: DutyRoster, grid: str, instant: str, expected: list[str]) -> None:
    assert roster.on_duty(grid, at(instant)) == expected


@pytest.mark.parametrize(
    ("grid", "instant", "expected"),
    [
        pytest.param("g1", "2026-12-02T10:00+08:00", ("g1", ["li"]), id="own-duty"),
        pytest.param("g1", "2026-12-02T19:00+08:00", ("community", ["zhao"]), id="gap-climbs-to-parent"),
        pytest.param("g1", "2026-12-04T23:00+08:00", ("street", ["boss"]), id="gap-climbs-to-grandparent"),
        pytest.param("g2", "2027-01-01T12:00+08:00", ("street", ["boss"]), id="empty-override-climbs"),
        pytest.param("g2", "2027-01-01T19:00+08:00", ("community", ["zhao"]), id="empty-override-to-parent"),
        pytest.param("lonely", "2026-12-02T10:00Z", (None, []), id="nobody-up-the-ladder"),
        pytest.param("street", "2026-12-02T10:00Z", ("street", ["boss"]), id="top-of-ladder"),
    ],
)
def test_on_duty_climbing(roster: DutyRoster, grid: str, instant: str, expected: tuple[str | None, list[str]]) -> None:
    assert roster.on_duty_climbing(grid, at(instant)) == expected


def test_nobody_anywhere_before_the_top_rotation_starts() -> None:
    duty = [d for d in DUTY if d["grid"] != "street"]
    duty.append(
        {
            "grid": "street",
            "timezone": "UTC",
            "rotation": {"staff": ["boss"], "every_s": 3600, "start": "2030-01-01T00:00"},
        }
    )
    assert DutyRoster.from_config(config(duty)).on_duty_climbing("g1", at("2026-12-04T23:00+08:00")) == (None, [])


def test_ladder(roster: DutyRoster) -> None:
    assert roster.grids() == ["street", "community", "g1", "g2", "g3", "b1", "b2", "b3", "lonely"]
    assert roster.parent("g1") == "community"
    assert roster.parent("street") is None
    assert roster.ancestors("g1") == ["community", "street"]
    assert roster.ancestors("street") == []
    assert roster.has_roster("g1")
    assert not roster.has_roster("lonely")


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda r: r.on_duty("nope", at("2026-12-02T10:00Z")), id="on_duty"),
        pytest.param(lambda r: r.on_duty_climbing("nope", at("2026-12-02T10:00Z")), id="on_duty_climbing"),
        pytest.param(lambda r: r.gaps("nope", at("2026-12-02T10:00Z"), at("2026-12-03T10:00Z")), id="gaps"),
        pytest.param(lambda r: r.has_roster("nope"), id="has_roster"),
        pytest.param(lambda r: r.parent("nope"), id="parent"),
        pytest.param(lambda r: r.ancestors("nope"), id="ancestors"),
    ],
)
def test_unknown_grid_is_a_key_error(roster: DutyRoster, call: Any) -> None:
    with pytest.raises(KeyError):
        call(roster)


def test_a_naive_instant_is_refused(roster: DutyRoster) -> None:
    with pytest.raises(ValueError, match="aware"):
        roster.on_duty("g1", dt.datetime(2026, 12, 2, 10))


def utc(text: str) -> dt.datetime:
    return at(text).astimezone(dt.UTC)


@pytest.mark.parametrize(
    ("grid", "start", "end", "expected"),
    [
        pytest.param(
            "g1",
            "2026-12-02T00:00+08:00",
            "2026-12-03T00:00+08:00",
            [("2026-12-02T18:00+08:00", "2026-12-02T22:00+08:00")],
            id="weekday-evening",
        ),
        pytest.param(
            "g1",
            "2026-12-04T00:00+08:00",
            "2026-12-07T00:00+08:00",
            [("2026-12-04T18:00+08:00", "2026-12-06T22:00+08:00")],
            id="weekend-merged",
        ),
        pytest.param(
            "g1",
            "2026-12-02T19:00+08:00",
            "2026-12-02T20:00+08:00",
            [("2026-12-02T19:00+08:00", "2026-12-02T20:00+08:00")],
            id="clipped-to-the-range",
        ),
        pytest.param("g1", "2026-12-02T08:00+08:00", "2026-12-02T18:00+08:00", [], id="no-gap"),
        pytest.param(
            "g2",
            "2026-12-31T00:00+08:00",
            "2027-01-02T00:00+08:00",
            [("2027-01-01T00:00+08:00", "2027-01-02T00:00+08:00")],
            id="empty-override",
        ),
        pytest.param(
            "g3",
            "2026-11-30T00:00+08:00",
            "2026-12-02T00:00+08:00",
            [("2026-11-30T00:00+08:00", "2026-12-01T08:00+08:00")],
            id="before-rotation-start",
        ),
        pytest.param(
            "b1",
            "2026-03-28T00:00Z",
            "2026-03-30T00:00Z",
            [("2026-03-28T00:00Z", "2026-03-28T21:00Z"), ("2026-03-29T04:00Z", "2026-03-30T00:00Z")],
            id="berlin-spring-forward",
        ),
        pytest.param(
            "b1",
            "2026-10-24T00:00Z",
            "2026-10-26T00:00Z",
            [("2026-10-24T00:00Z", "2026-10-24T20:00Z"), ("2026-10-25T05:00Z", "2026-10-26T00:00Z")],
            id="berlin-fall-back",
        ),
        pytest.param(
            "b2",
            "2026-03-28T00:00+01:00",
            "2026-03-31T00:00+02:00",
            [
                ("2026-03-28T00:00+01:00", "2026-03-28T08:00+01:00"),
                ("2026-03-28T20:00+01:00", "2026-03-29T00:00+01:00"),
                ("2026-03-30T00:00+02:00", "2026-03-30T08:00+02:00"),
                ("2026-03-30T20:00+02:00", "2026-03-31T00:00+02:00"),
            ],
            id="berlin-dst-day-override",
        ),
        pytest.param("lonely", "2026-12-02T00:00Z", "2026-12-09T00:00Z", [], id="no-roster-no-gaps"),
        pytest.param("g1", "2026-12-03T00:00Z", "2026-12-02T00:00Z", [], id="empty-range"),
    ],
)
def test_gaps(roster: DutyRoster, grid: str, start: str, end: str, expected: list[tuple[str, str]]) -> None:
    gaps = roster.gaps(grid, at(start), at(end))
    assert gaps == [(utc(low), utc(high)) for low, high in expected]
    assert all(low.tzinfo == dt.UTC and high.tzinfo == dt.UTC for low, high in gaps)


@pytest.mark.parametrize("grid", ["g1", "g2", "g3", "b1", "b2", "b3"])
@pytest.mark.parametrize("start", ["2026-03-23T00:00Z", "2026-12-21T00:00Z"], ids=["march", "december"])
def test_gaps_agree_with_on_duty_minute_by_minute(roster: DutyRoster, grid: str, start: str) -> None:
    begin = at(start)
    end = begin + dt.timedelta(days=8)
    gaps = roster.gaps(grid, begin, end)
    instant = begin
    while instant < end:
        in_gap = any(low <= instant < high for low, high in gaps)
        assert in_gap == (roster.on_duty(grid, instant) == []), instant
        instant += dt.timedelta(minutes=1)


NOW = at("2026-12-02T03:00Z")  # Wednesday 11:00 in Shanghai


def test_roster_warnings_name_the_weekly_gaps_and_empty_overrides() -> None:
    warnings = dict(roster_warnings(config(), NOW))
    g1 = warnings[("duty", 0)]
    assert g1.startswith("nobody is on duty for grid g1 on mon, tue, wed, thu 18:00-22:00; on fri 18:00 - sun 22:00")
    assert "(Asia/Shanghai) in the week from 2026-12-02" in g1
    assert g1.endswith("alerts then climb to the parent grid at once (community)")
    assert warnings[("duty", 1, "overrides", 2)] == (
        "this override names nobody: nobody is on duty for grid g2 on 2027-01-01: "
        "alerts then climb to the parent grid at once (community)"
    )
    # A gap reaching beyond the 8 days looked at is described whole, not cut where they end.
    assert warnings[("duty", 3)] == (
        "nobody is on duty for grid b1 on sun 06:00 - sat 22:00 (Europe/Berlin) in the week from 2026-12-02: "
        "alerts then reach nobody on duty (the grid has no parent grid)"
    )
    # A gap crossing midnight every day reads like a shift.
    assert "grid community every day 22:00-18:00 (Asia/Shanghai)" in warnings[("duty", 6)]
    # Covered all week: g2 (its empty override is a month ahead: warned on its own), g3 and street (rotations).
    assert ("duty", 1) not in warnings
    assert ("duty", 2) not in warnings
    assert ("duty", 7) not in warnings


def test_a_roster_covering_the_week_has_no_warning() -> None:
    duty = [
        {
            "grid": "g1",
            "timezone": "Asia/Shanghai",
            "shifts": [{"days": ALL_WEEK, "from": "00:00", "to": "24:00", "staff": ["li"]}],
        }
    ]
    assert roster_warnings(config(duty), NOW) == []


def test_a_gap_under_way_at_now_is_described_from_its_start() -> None:
    duty = [
        {
            "grid": "g1",
            "timezone": "Asia/Shanghai",
            "shifts": [{"days": ALL_WEEK, "from": "12:00", "to": "10:00", "staff": ["li"]}],
        }
    ]
    [(key, reason)] = roster_warnings(config(duty), NOW)  # 11:00 local: inside today's gap 10:00-12:00
    assert key == ("duty", 0)
    assert "grid g1 every day 10:00-12:00 (Asia/Shanghai)" in reason


def test_a_rotation_starting_later_leaves_the_whole_week_empty() -> None:
    rotation = {"staff": ["li"], "every_s": 86400, "start": "2027-06-01T08:00"}
    duty = [{"grid": "g1", "timezone": "Asia/Shanghai", "rotation": rotation}]
    [(key, reason)] = roster_warnings(config(duty), NOW)
    assert key == ("duty", 0)
    assert reason.startswith("nobody is on duty for grid g1 at any time (Asia/Shanghai) in the week from 2026-12-02: ")
