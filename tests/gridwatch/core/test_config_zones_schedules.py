"""`zones:` and `schedules:`: what they accept, and each mistake at its file:line and key path."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from gridwatch.core.config.loader import ConfigError, load_config
from gridwatch.core.config.schedules import IntervalConfig, ScheduleConfig, clock_minutes

SOURCES = """\
cameras:
  - {id: gate-north, kind: file, location_class: compound_entrance, signage_verified_at: 2026-01-15, path: a.mp4}
  - {id: lobby-b3, kind: file, location_class: lobby, signage_verified_at: 2026-01-15, path: b.mp4}
gates:
  - {id: gate-north-face, kind: mqtt, topic: t/+/capture}
"""

ZONES = """\
zones:
  - id: estate-north
    sources: [gate-north, gate-north-face]
  - id: lobbies
    sources: [lobby-b3]
"""

SCHEDULES = """\
schedules:
  - id: night
    timezone: Asia/Shanghai
    intervals:
      - days: [mon, tue, wed, thu, fri, sat, sun]
        from: 22:00
        to: 06:00
  - id: office-hours
    timezone: Europe/Berlin
    intervals:
      - {days: [mon, tue, wed, thu, fri], from: "08:00", to: "18:00"}
      - {days: [sat], from: 09:30, to: 24:00}
    except_dates: [2026-12-24, 2026-12-25]
"""


def write_site(tmp_path: Path, zones: str = ZONES, schedules: str = SCHEDULES) -> Path:
    (tmp_path / "sources.yaml").write_text(SOURCES)
    (tmp_path / "zones.yaml").write_text(zones)
    (tmp_path / "schedules.yaml").write_text(schedules)
    return tmp_path


def test_zones_and_schedules_load(tmp_path: Path) -> None:
    config = load_config(write_site(tmp_path), {}).config
    assert config.zone_ids() == {"estate-north", "lobbies"}
    assert config.schedule_ids() == {"night", "office-hours"}
    assert config.zones[0].sources == ["gate-north", "gate-north-face"]
    night, office = config.schedules
    # Unquoted 22:00 is a time of day, not YAML 1.1's base-60 number 1320.
    assert (night.intervals[0].start, night.intervals[0].end) == ("22:00", "06:00")
    assert night.intervals[0].crosses_midnight
    assert [(i.start, i.end) for i in office.intervals] == [("08:00", "18:00"), ("09:30", "24:00")]
    assert not office.intervals[1].crosses_midnight
    assert office.except_dates == [dt.date(2026, 12, 24), dt.date(2026, 12, 25)]
    # Written back with the YAML's keys (reload diffs and audit records name them so).
    assert night.intervals[0].model_dump()["from"] == "22:00"


def test_sections_default_to_empty(tmp_path: Path) -> None:
    (tmp_path / "sources.yaml").write_text(SOURCES)
    config = load_config(tmp_path, {}).config
    assert (config.zones, config.schedules, config.zone_ids(), config.schedule_ids()) == ([], [], set(), set())


ZONE_ERRORS = [
    pytest.param(
        "zones:\n  - id: north\n    sources:\n      - gate-north\n      - gate-west\n",
        (5, "zones[0].sources[1]", "unknown source 'gate-west' (known: gate-north, gate-north-face, lobby-b3)"),
        id="unknown-source",
    ),
    pytest.param(
        'zones:\n  - id: north\n    sources: ["*"]\n',
        (3, "zones[0].sources[0]", '"*" is not allowed in a zone: list its cameras and gates'),
        id="wildcard",
    ),
    pytest.param(
        "zones:\n  - {id: north, sources: [gate-north]}\n  - {id: north, sources: [lobby-b3]}\n",
        (3, "zones[1].id", "duplicate id 'north' (first at zones[0])"),
        id="duplicate-id",
    ),
    pytest.param(
        "zones:\n  - id: north\n    sources: []\n",
        (3, "zones[0].sources", "List should have at least 1 item"),
        id="no-sources",
    ),
    pytest.param(
        "zones:\n  - id: north\n    sources: [gate-north]\n    floor: north\n",
        (4, "zones[0].floor", "Extra inputs are not permitted"),
        id="unknown-key",
    ),
]


@pytest.mark.parametrize(("zones", "expected"), ZONE_ERRORS)
def test_zone_mistakes(tmp_path: Path, zones: str, expected: tuple[int, str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write_site(tmp_path, zones=zones), {})
    assert [(i.file.name, i.line, i.key_path) for i in caught.value.issues] == [("zones.yaml", *expected[:2])]
    assert expected[2] in caught.value.issues[0].reason


def schedule(
    interval: str = "{days: [fri], from: 22:00, to: 06:00}", extra: str = "", timezone: str = "Asia/Shanghai"
) -> str:
    return f"schedules:\n  - id: night\n    timezone: {timezone}\n    intervals:\n      - {interval}\n{extra}"


SCHEDULE_ERRORS = [
    pytest.param(
        schedule(timezone="Mars/Olympus_Mons"),
        (3, "schedules[0].timezone", "unknown IANA time zone"),
        id="unknown-timezone",
    ),
    pytest.param(
        schedule("{days: [fri], from: 22:00, to: 22:00}"),
        (5, "schedules[0].intervals[0]", "empty interval"),
        id="empty-interval",
    ),
    pytest.param(
        schedule("{days: [fri, mon, fri], from: 22:00, to: 06:00}"),
        (5, "schedules[0].intervals[0].days", "a weekday is listed twice"),
        id="repeated-day",
    ),
    pytest.param(
        schedule("{days: [], from: 22:00, to: 06:00}"),
        (5, "schedules[0].intervals[0].days", "at least 1 item"),
        id="no-days",
    ),
    pytest.param(
        schedule("{days: [friday], from: 22:00, to: 06:00}"),
        (5, "schedules[0].intervals[0].days[0]", "Input should be 'mon', 'tue'"),
        id="unknown-day",
    ),
    pytest.param(
        schedule("{days: [fri], from: 7:00, to: 09:00}"),
        (5, "schedules[0].intervals[0].from", "expected a time of day HH:MM"),
        id="one-digit-hour",
    ),
    pytest.param(
        schedule("{days: [fri], from: '22:00', to: '25:00'}"),
        (5, "schedules[0].intervals[0].to", "expected a time of day HH:MM"),
        id="hour-out-of-range",
    ),
    pytest.param(
        schedule("{days: [fri], from: 24:00, to: 06:00}"),
        (5, "schedules[0].intervals[0].from", "24:00 is only an end"),
        id="start-at-24",
    ),
    pytest.param(
        schedule("{days: [fri], start: 22:00, from: 22:00, to: 06:00}"),
        (5, "schedules[0].intervals[0].start", "Extra inputs are not permitted"),
        id="python-name-of-from",
    ),
    pytest.param(
        schedule(extra="    except_dates: [2026-02-30]\n"),
        (6, "schedules[0].except_dates[0]", "date"),
        id="impossible-date",
    ),
    pytest.param(
        "schedules:\n  - {id: night, timezone: UTC, intervals: []}\n",
        (2, "schedules[0].intervals", "at least 1 item"),
        id="no-intervals",
    ),
]


@pytest.mark.parametrize(("schedules", "expected"), SCHEDULE_ERRORS)
def test_schedule_mistakes(tmp_path: Path, schedules: str, expected: tuple[int, str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write_site(tmp_path, schedules=schedules), {})
    assert [(i.file.name, i.line, i.key_path) for i in caught.value.issues] == [("schedules.yaml", *expected[:2])]
    assert expected[2] in caught.value.issues[0].reason, caught.value.issues[0].reason


def test_a_timezone_error_does_not_quote_the_value() -> None:
    with pytest.raises(ValueError, match="unknown IANA time zone") as caught:
        ScheduleConfig.model_validate(
            {"id": "n", "timezone": "Secret/Zone", "intervals": [{"days": ["fri"], "from": "22:00", "to": "06:00"}]}
        )
    assert "Secret/Zone" not in str(caught.value).split("input_value")[0]


def test_duplicate_schedule_ids(tmp_path: Path) -> None:
    twice = "schedules:\n" + "".join(
        f"  - {{id: night, timezone: UTC, intervals: [{{days: [{day}], from: 22:00, to: 06:00}}]}}\n"
        for day in ("fri", "sat")
    )
    with pytest.raises(ConfigError) as caught:
        load_config(write_site(tmp_path, schedules=twice), {})
    assert [(i.line, i.key_path, i.reason) for i in caught.value.issues] == [
        (3, "schedules[1].id", "duplicate id 'night' (first at schedules[0])")
    ]


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("00:00", 0), ("06:00", 360), ("22:30", 1350), ("23:59", 1439), ("24:00", 1440)],
)
def test_clock_minutes(text: str, minutes: int) -> None:
    assert clock_minutes(text) == minutes


@pytest.mark.parametrize("text", ["24:01", "7:00", "07:60", "0700", "07:00:00", ""])
def test_clock_minutes_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        clock_minutes(text)


def test_a_whole_day_is_not_empty() -> None:
    whole = IntervalConfig.model_validate({"days": ["sun"], "from": "00:00", "to": "24:00"})
    assert not whole.crosses_midnight
