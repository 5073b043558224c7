"""`duty:` section: who is on duty for a grid, and when.

Per grid, in the wall-clock time of a time zone: weekly ``shifts`` (a shift whose end is not after its
start crosses midnight, as in `schedules:`), a ``rotation`` (staff take turns every ``every_s`` from
``start``), or both (on duty = everyone whose shift or turn it is), and dated ``overrides`` (a holiday,
a swap) that replace the roster while they last. The evaluator is ``notifier.duty.DutyRoster``.
"""

from __future__ import annotations

import datetime as dt

from pydantic import ConfigDict, Field, field_validator, model_validator

from gridwatch.core.config.base import Identifier, StrictModel
from gridwatch.core.config.schedules import IntervalConfig

DAY_S = 86400


class ShiftConfig(IntervalConfig):
    """A weekly shift: ``days``, ``from``, ``to`` as in a schedule's interval, and who works it."""

    staff: list[Identifier] = Field(min_length=1, max_length=100, description="Staff ids on duty in this shift.")


class RotationConfig(StrictModel):
    staff: list[Identifier] = Field(
        min_length=1, max_length=100, description="Staff ids in turn order; one of them is on duty at a time."
    )
    every_s: int = Field(ge=3600, le=365 * DAY_S, description="Length of one turn in seconds (86400: daily).")
    start: dt.datetime = Field(
        description="When the first listed person's turn starts (ISO 8601; without an offset: the roster's zone)."
    )


class OverrideConfig(StrictModel):
    """A dated change: on ``date`` (a whole local day) or from ``from`` to ``to`` (local times), exactly these
    staff are on duty; an empty list means nobody (the alerts then climb to the parent grid at once)."""

    date: dt.date | None = Field(default=None, description="A whole local day (YYYY-MM-DD), e.g. a holiday.")
    start: dt.datetime | None = Field(
        default=None, alias="from", description="Start (ISO 8601; without an offset: the roster's zone), included."
    )
    end: dt.datetime | None = Field(
        default=None, alias="to", description="End (ISO 8601; without an offset: the roster's zone), excluded."
    )
    staff: list[Identifier] = Field(max_length=100, description="Staff ids on duty instead of the roster.")
    note: str | None = Field(default=None, max_length=200, description="Why (shown nowhere but the config).")

    model_config = ConfigDict(extra="forbid", validate_assignment=True, serialize_by_alias=True)

    @model_validator(mode="after")
    def _one_form(self) -> OverrideConfig:
        if self.date is not None and (self.start is not None or self.end is not None):
            raise ValueError("give either `date` or `from` and `to`, not both")
        if self.date is None and (self.start is None or self.end is None):
            raise ValueError("give `date`, or both `from` and `to`")
        if self.start is not None and self.end is not None:
            if (self.start.tzinfo is None) != (self.end.tzinfo is None):
                raise ValueError("`from` and `to` both carry an offset, or neither does")
            if self.end <= self.start:
                raise ValueError("`to` is not after `from`")
        return self


class DutyConfig(StrictModel):
    grid: Identifier = Field(description="The grid this roster covers (one roster per grid).")
    timezone: str = Field(min_length=1, max_length=64, description="IANA time zone of the shift times.")
    shifts: list[ShiftConfig] = Field(default_factory=list, max_length=200, description="Weekly shifts.")
    rotation: RotationConfig | None = Field(default=None, description="Staff taking turns (alone or with shifts).")
    overrides: list[OverrideConfig] = Field(
        default_factory=list, max_length=1000, description="Dated changes that replace the roster while they last."
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

    @model_validator(mode="after")
    def _something(self) -> DutyConfig:
        if not self.shifts and self.rotation is None:
            raise ValueError("a roster needs `shifts`, a `rotation`, or both")
        return self

    def staff_refs(self) -> list[tuple[tuple[str | int, ...], str]]:
        """(key path within this roster, staff id) of every staff id it names."""
        refs: list[tuple[tuple[str | int, ...], str]] = []
        for i, shift in enumerate(self.shifts):
            refs += [(("shifts", i, "staff", j), s) for j, s in enumerate(shift.staff)]
        if self.rotation is not None:
            refs += [(("rotation", "staff", j), s) for j, s in enumerate(self.rotation.staff)]
        for i, override in enumerate(self.overrides):
            refs += [(("overrides", i, "staff", j), s) for j, s in enumerate(override.staff)]
        return refs
