"""`schedules:` section: named weekly time windows in a time zone (night, office hours).

A schedule is read in the local wall-clock time of its zone: "22:00" is 22:00 on the clocks of the
site, in summer and in winter. Per-person conditions refer to a schedule by id (`--hours night`);
the evaluator is ``gridwatch.core.schedules.Schedule``.

Times are written ``HH:MM``. Unquoted, YAML 1.1 would read ``22:00`` as the base-60 number 1320; the
loader keeps such scalars as written (see ``yamlsource``), so quotes are optional.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from gridwatch.core.config.base import Identifier, StrictModel

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order

MINUTES_PER_DAY = 24 * 60
_CLOCK_PATTERN = r"([01][0-9]|2[0-3]):[0-5][0-9]|24:00"
_CLOCK = re.compile(_CLOCK_PATTERN)


def clock_minutes(text: str) -> int:
    """``"HH:MM"`` → minutes after midnight (``"24:00"`` → 1440, the end of the day)."""
    if _CLOCK.fullmatch(text) is None:
        raise ValueError("expected a time of day HH:MM, 00:00 to 24:00")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _clock_time(text: str) -> str:
    clock_minutes(text)
    return text


# A time of day as written; 24:00 is allowed as the end of a window (the end of the day).
ClockTime = Annotated[
    str,
    AfterValidator(_clock_time),
    Field(json_schema_extra={"pattern": f"^({_CLOCK_PATTERN})$", "examples": ["06:00", "22:30", "24:00"]}),
]


class IntervalConfig(StrictModel):
    """A daily window on some weekdays. A window whose end is not after its start crosses midnight."""

    # `from` is a Python keyword: the fields are named start/end, read from and written as `from`/`to`
    # (so that key paths in reload diffs and errors match the YAML).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, serialize_by_alias=True)

    days: list[Weekday] = Field(
        min_length=1,
        max_length=7,
        description="Weekdays on which the window starts (mon..sun); a window crossing midnight ends the day after.",
    )
    start: ClockTime = Field(alias="from", description="Start, local time HH:MM (included).")
    end: ClockTime = Field(
        alias="to",
        description=(
            "End, local time HH:MM (excluded); 24:00 is the end of the day. "
            "Not after `from`: the window crosses midnight (fri 22:00-06:00 covers Saturday 03:00)."
        ),
    )

    @field_validator("days")
    @classmethod
    def _unique_days(cls, days: list[Weekday]) -> list[Weekday]:
        if len(set(days)) != len(days):
            raise ValueError("a weekday is listed twice")
        return days

    @field_validator("start")
    @classmethod
    def _start_within_the_day(cls, start: str) -> str:
        if start == "24:00":
            raise ValueError("a window starts at 23:59 at the latest (24:00 is only an end)")
        return start

    @model_validator(mode="after")
    def _not_empty(self) -> IntervalConfig:
        if clock_minutes(self.start) == clock_minutes(self.end):
            raise ValueError("empty interval: `from` and `to` are the same time")
        return self

    @property
    def crosses_midnight(self) -> bool:
        return clock_minutes(self.end) <= clock_minutes(self.start)


class ScheduleConfig(StrictModel):
    id: Identifier = Field(description="Schedule id, used in per-person conditions (`--hours`) and rules.")
    timezone: str = Field(
        min_length=1,
        max_length=64,
        description="IANA time zone the times are local to, e.g. Asia/Shanghai or Europe/Berlin.",
    )
    intervals: list[IntervalConfig] = Field(
        min_length=1, max_length=100, description="Weekly windows; the schedule is active inside any of them."
    )
    except_dates: list[dt.date] = Field(
        default_factory=list,
        max_length=1000,
        description=(
            "Local dates (YYYY-MM-DD) on which the schedule is not active, e.g. public holidays. "
            "A window crossing midnight belongs to the date it starts on."
        ),
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("unknown IANA time zone (expected a name like Asia/Shanghai or Europe/Berlin)") from None
        return zone
