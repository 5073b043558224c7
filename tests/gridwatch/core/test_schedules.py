"""The schedule evaluator: local wall-clock windows, crossing midnight, excepted dates, DST, next change."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gridwatch.core.config.schedules import ScheduleConfig
from gridwatch.core.schedules import Schedule, Window

SHANGHAI = ZoneInfo("Asia/Shanghai")  # UTC+8 all year
BERLIN = ZoneInfo("Europe/Berlin")  # CET/CEST: 2026-03-29 02:00 → 03:00, 2026-10-25 03:00 → 02:00
UTC = dt.UTC


def schedule(timezone: str, *intervals: tuple[str, str, str], except_dates: list[str] | None = None) -> Schedule:
    """``intervals``: ("mon,tue", "22:00", "06:00") each."""
    config: dict[str, Any] = {
        "id": "test",
        "timezone": timezone,
        "intervals": [{"days": days.split(","), "from": start, "to": end} for days, start, end in intervals],
        "except_dates": except_dates or [],
    }
    return Schedule.from_config(ScheduleConfig.model_validate(config))


def at(zone: ZoneInfo, text: str, fold: int = 0) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=zone, fold=fold)


# 2026-12-04 is a Friday.
FRIDAY_NIGHT = schedule("Asia/Shanghai", ("fri", "22:00", "06:00"))


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2026-12-04 21:59:59", False),
        ("2026-12-04 22:00:00", True),  # from: included
        ("2026-12-04 23:30:00", True),
        ("2026-12-05 00:00:00", True),  # past midnight: the window goes on into Saturday
        ("2026-12-05 03:00:00", True),
        ("2026-12-05 05:59:59.999999", True),
        ("2026-12-05 06:00:00", False),  # to: excluded
        ("2026-12-05 22:00:00", False),  # Saturday night: not a window start day
        ("2026-12-03 23:00:00", False),  # Thursday night
        ("2026-12-04 03:00:00", False),  # Friday early morning: Thursday started no window
        ("2026-12-11 23:00:00", True),  # next week
    ],
)
def test_a_window_crossing_midnight(local: str, expected: bool) -> None:
    assert FRIDAY_NIGHT.contains(at(SHANGHAI, local)) is expected


def test_any_zone_of_the_instant_is_fine() -> None:
    # Friday 22:00 in Shanghai is Friday 14:00 UTC and 15:00 in Berlin (winter).
    assert FRIDAY_NIGHT.contains(dt.datetime(2026, 12, 4, 14, 0, tzinfo=UTC))
    assert FRIDAY_NIGHT.contains(at(BERLIN, "2026-12-04 15:00"))
    assert not FRIDAY_NIGHT.contains(at(BERLIN, "2026-12-04 14:59:59"))


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        FRIDAY_NIGHT.contains(dt.datetime(2026, 12, 4, 22, 0))
    with pytest.raises(ValueError, match="aware datetime"):
        FRIDAY_NIGHT.next_change(dt.datetime(2026, 12, 4, 22, 0))


@pytest.mark.parametrize(
    ("except_dates", "local", "expected"),
    [
        # The Friday is excepted: its night is off, past midnight too (the window started on an excepted date).
        (["2026-12-04"], "2026-12-04 23:00", False),
        (["2026-12-04"], "2026-12-05 03:00", False),
        (["2026-12-04"], "2026-12-11 23:00", True),  # the next Friday is not
        # The Saturday is excepted: Friday's window still runs until Saturday 06:00.
        (["2026-12-05"], "2026-12-05 03:00", True),
        (["2026-12-05"], "2026-12-04 23:00", True),
    ],
)
def test_except_dates_belong_to_the_start_of_a_window(except_dates: list[str], local: str, expected: bool) -> None:
    night = schedule("Asia/Shanghai", ("fri", "22:00", "06:00"), except_dates=except_dates)
    assert night.contains(at(SHANGHAI, local)) is expected


def test_except_dates_are_local_dates() -> None:
    # Christmas Day in Shanghai starts at 2026-12-24 16:00 UTC.
    office = schedule("Asia/Shanghai", ("mon,tue,wed,thu,fri", "00:00", "24:00"), except_dates=["2026-12-25"])
    assert office.contains(dt.datetime(2026, 12, 24, 15, 59, tzinfo=UTC))
    assert not office.contains(dt.datetime(2026, 12, 24, 16, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2026-12-05 09:29", False),
        ("2026-12-05 09:30", True),
        ("2026-12-05 23:59:59", True),  # to 24:00: the end of the day
        ("2026-12-06 00:00", False),
    ],
)
def test_a_window_to_the_end_of_the_day(local: str, expected: bool) -> None:
    saturday = schedule("Asia/Shanghai", ("sat", "09:30", "24:00"))
    assert saturday.contains(at(SHANGHAI, local)) is expected


def test_a_window_to_midnight_written_as_00_00() -> None:
    late = schedule("Asia/Shanghai", ("sat", "22:00", "00:00"))
    assert late.contains(at(SHANGHAI, "2026-12-05 23:59"))
    assert not late.contains(at(SHANGHAI, "2026-12-06 00:00"))


def test_overlapping_windows_are_a_union() -> None:
    both = schedule("Asia/Shanghai", ("mon,tue,wed,thu,fri", "08:00", "18:00"), ("fri", "12:00", "23:00"))
    assert both.contains(at(SHANGHAI, "2026-12-04 20:00"))
    assert not both.contains(at(SHANGHAI, "2026-12-03 20:00"))
    assert both.next_change(at(SHANGHAI, "2026-12-04 09:00")) == at(SHANGHAI, "2026-12-04 23:00").astimezone(UTC)


# --- daylight saving time: wall-clock time decides ------------------------------------------------

OFFICE_BERLIN = schedule("Europe/Berlin", ("mon,tue,wed,thu,fri", "08:00", "18:00"))


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        ("2026-01-07 06:59", False),  # 07:59 CET
        ("2026-01-07 07:00", True),  # 08:00 CET
        ("2026-07-08 05:59", False),  # 07:59 CEST
        ("2026-07-08 06:00", True),  # 08:00 CEST
        ("2026-07-08 15:59", True),  # 17:59 CEST
        ("2026-07-08 16:00", False),  # 18:00 CEST
    ],
)
def test_office_hours_follow_the_local_clock_in_summer_and_winter(utc: str, expected: bool) -> None:
    assert OFFICE_BERLIN.contains(at(UTC, utc)) is expected


def test_the_night_the_clocks_go_forward_is_an_hour_shorter() -> None:
    night = schedule("Europe/Berlin", ("sat", "22:00", "06:00"))
    start = night.next_change(at(BERLIN, "2026-03-28 12:00"))
    end = night.next_change(at(BERLIN, "2026-03-28 23:00"))
    assert start == at(BERLIN, "2026-03-28 22:00").astimezone(UTC)
    assert end == at(BERLIN, "2026-03-29 06:00").astimezone(UTC)
    assert start is not None
    assert end is not None
    assert end - start == dt.timedelta(hours=7)


def test_a_window_inside_the_skipped_hour_never_happens_that_day() -> None:
    skipped = schedule("Europe/Berlin", ("sun", "02:15", "02:45"))
    assert not skipped.contains(dt.datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC))  # 01:59:59 CET
    assert not skipped.contains(dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC))  # 03:00 CEST
    assert skipped.next_change(at(BERLIN, "2026-03-28 12:00")) == at(BERLIN, "2026-04-05 02:15").astimezone(UTC)


def test_a_window_over_the_skipped_hour_starts_when_the_clock_jumps_into_it() -> None:
    early = schedule("Europe/Berlin", ("sun", "02:30", "04:00"))
    # 01:59:59 CET → 03:00 CEST: from outside the window to inside it at the jump.
    assert early.next_change(at(BERLIN, "2026-03-29 01:00")) == dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_the_repeated_hour_is_inside_the_window_both_times() -> None:
    repeated = schedule("Europe/Berlin", ("sun", "02:00", "03:00"))
    first = dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    second = dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET
    assert repeated.contains(first)
    assert repeated.contains(second)
    assert repeated.contains(at(BERLIN, "2026-10-25 02:30", fold=1))
    assert repeated.next_change(at(BERLIN, "2026-10-24 12:00")) == dt.datetime(2026, 10, 25, 0, 0, tzinfo=UTC)
    assert repeated.next_change(first) == dt.datetime(2026, 10, 25, 2, 0, tzinfo=UTC)  # 03:00 CET: two hours on


def test_a_window_straddling_the_repeated_hour_pauses_while_the_clock_goes_back() -> None:
    straddle = schedule("Europe/Berlin", ("sun", "02:30", "04:00"))
    inside = dt.datetime(2026, 10, 25, 0, 45, tzinfo=UTC)  # 02:45 CEST
    assert straddle.contains(inside)
    # 03:00 CEST → 02:00 CET: back before 02:30, outside, until 02:30 CET.
    assert straddle.next_change(inside) == dt.datetime(2026, 10, 25, 1, 0, tzinfo=UTC)
    assert straddle.next_change(dt.datetime(2026, 10, 25, 1, 0, tzinfo=UTC)) == dt.datetime(
        2026, 10, 25, 1, 30, tzinfo=UTC
    )


# --- next_change ----------------------------------------------------------------------------------


def test_next_change_is_the_next_start_or_end_in_utc() -> None:
    wednesday = at(SHANGHAI, "2026-12-02 12:00")
    start = FRIDAY_NIGHT.next_change(wednesday)
    assert start == dt.datetime(2026, 12, 4, 14, 0, tzinfo=UTC)
    assert start is not None
    assert start.tzinfo is UTC
    # At a start the window is already on: the next change is its end.
    assert FRIDAY_NIGHT.next_change(start) == at(SHANGHAI, "2026-12-05 06:00").astimezone(UTC)
    assert FRIDAY_NIGHT.next_change(start - dt.timedelta(microseconds=1)) == start


def test_adjoining_windows_make_one_change() -> None:
    evening_and_night = schedule("Asia/Shanghai", ("fri", "18:00", "22:00"), ("fri", "22:00", "06:00"))
    assert evening_and_night.next_change(at(SHANGHAI, "2026-12-04 19:00")) == at(
        SHANGHAI, "2026-12-05 06:00"
    ).astimezone(UTC)


def test_a_schedule_that_never_changes_has_no_next_change() -> None:
    always = schedule("Europe/Berlin", ("mon,tue,wed,thu,fri,sat,sun", "00:00", "24:00"))
    assert always.next_change(at(BERLIN, "2026-03-28 12:00")) is None
    # Every day from 12:00 to 11:59 the next day: off one minute a day.
    all_but_a_minute = schedule("Europe/Berlin", ("mon,tue,wed,thu,fri,sat,sun", "12:00", "11:59"))
    assert all_but_a_minute.next_change(at(BERLIN, "2026-03-28 12:00")) == at(BERLIN, "2026-03-29 11:59").astimezone(
        UTC
    )


def test_an_excepted_date_far_ahead_is_found() -> None:
    always = schedule("Asia/Shanghai", ("mon,tue,wed,thu,fri,sat,sun", "00:00", "24:00"), except_dates=["2027-10-01"])
    off = always.next_change(at(SHANGHAI, "2026-12-01 12:00"))
    assert off == at(SHANGHAI, "2027-10-01 00:00").astimezone(UTC)
    assert always.next_change(off) == at(SHANGHAI, "2027-10-02 00:00").astimezone(UTC)
    assert always.next_change(at(SHANGHAI, "2027-10-02 00:00")) is None  # past excepted dates do not count


BRUTE_FORCE = [
    pytest.param(
        "Europe/Berlin",
        [("sat", "22:00", "01:00"), ("sun", "02:30", "04:00"), ("sun", "05:00", "24:00"), ("mon", "08:00", "18:00")],
        ["2026-03-30"],
        "2026-03-26 00:00",
        id="berlin-spring-forward",
    ),
    pytest.param(
        "Europe/Berlin",
        [("sat,sun", "22:00", "06:00"), ("sun", "02:00", "03:00"), ("sun", "02:30", "02:45")],
        ["2026-10-24"],
        "2026-10-22 00:00",
        id="berlin-fall-back",
    ),
    pytest.param(
        "Asia/Shanghai",
        [("fri", "22:00", "06:00"), ("mon,tue,wed,thu,fri", "08:00", "18:00"), ("sat", "09:30", "24:00")],
        ["2026-12-25"],
        "2026-12-21 00:00",
        id="shanghai",
    ),
    pytest.param(
        "Australia/Lord_Howe",  # a half-hour DST shift: 2026-10-04 02:00 → 02:30
        [("sun", "02:00", "02:20"), ("sun", "02:10", "02:45"), ("sat", "22:00", "23:00")],
        [],
        "2026-10-01 00:00",
        id="lord-howe-half-hour",
    ),
]


@pytest.mark.parametrize(("timezone", "intervals", "except_dates", "start"), BRUTE_FORCE)
def test_next_change_agrees_with_a_minute_by_minute_walk(
    timezone: str, intervals: list[tuple[str, str, str]], except_dates: list[str], start: str
) -> None:
    """Every boundary is on a whole minute (in UTC too, for these zones): walking minute by minute finds
    every change, and ``next_change`` must find the same ones, no more, no less."""
    tested = schedule(timezone, *intervals, except_dates=except_dates)
    begin = at(ZoneInfo(timezone), start).astimezone(UTC)
    minutes = [begin + dt.timedelta(minutes=m) for m in range(8 * 24 * 60)]
    states = [tested.contains(m) for m in minutes]
    walked = [m for m, before, now in zip(minutes[1:], states, states[1:], strict=False) if before != now]
    assert len(walked) >= 4

    found = []
    instant: dt.datetime | None = begin
    while instant is not None and instant <= minutes[-1]:
        instant = tested.next_change(instant)
        if instant is not None and instant <= minutes[-1]:
            found.append(instant)
    assert found == walked


@pytest.mark.parametrize(("timezone", "intervals", "except_dates", "start"), BRUTE_FORCE)
def test_boundaries_include_every_change_in_order(
    timezone: str, intervals: list[tuple[str, str, str]], except_dates: list[str], start: str
) -> None:
    """``boundaries`` is a superset of the changes (callers check each), strictly ascending, all after ``after``."""
    tested = schedule(timezone, *intervals, except_dates=except_dates)
    begin = at(ZoneInfo(timezone), start).astimezone(UTC)
    end = begin + dt.timedelta(days=7)
    candidates = [b for b in tested.boundaries(begin) if b < end]
    assert candidates == sorted(set(candidates))
    assert all(b > begin for b in candidates)
    changes = []
    instant: dt.datetime | None = begin
    while (instant := tested.next_change(instant)) is not None and instant < end:
        changes.append(instant)
    assert set(changes) <= set(candidates)


def test_from_config_builds_windows() -> None:
    assert FRIDAY_NIGHT.windows == (Window(frozenset({4}), 22 * 60, 6 * 60),)
    assert FRIDAY_NIGHT.zone == SHANGHAI
    assert FRIDAY_NIGHT.windows[0].crosses_midnight


@pytest.mark.parametrize(
    ("weekdays", "start", "end", "reason"),
    [
        (frozenset(), 0, 60, "weekdays"),
        (frozenset({7}), 0, 60, "weekdays"),
        (frozenset({0}), 1440, 60, "start must be"),
        (frozenset({0}), 0, 1441, "start must be"),
        (frozenset({0}), 60, 60, "empty window"),
    ],
)
def test_window_refuses_nonsense(weekdays: frozenset[int], start: int, end: int, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        Window(weekdays, start, end)
