"""Who is on duty for a grid at an instant, and when is nobody? A pure evaluator: no clock, no I/O.

``DutyRoster.from_config(config)`` reads the ``grids:``, ``staff:`` and ``duty:`` sections (see
``gridwatch.core.config.duty``) and answers for any aware instant, whatever zone it is written in:

- **overrides first**: a dated override that covers the instant replaces the whole roster, with exactly
  its staff (several covering overrides: the union; an empty one: nobody). ``date`` is the whole local
  day in the roster's zone; ``from`` (included) and ``to`` (excluded) without an offset are local times
  of the roster's zone, with an offset they are used as given;
- **otherwise shifts and rotation**: everyone whose weekly shift contains the instant (shifts are
  windows as in ``schedules:``: ``[from, to)`` in wall-clock time, crossing midnight when ``to`` is not
  after ``from``, belonging to the day they start on; the arithmetic, daylight saving included, is
  ``gridwatch.core.schedules``), plus, with a ``rotation``, the person whose turn it is:
  ``staff[floor((at - start) / every_s) % len(staff)]``. Turns are measured in elapsed time, so a
  daily turn hands over an hour earlier or later in wall-clock time after a daylight saving change.
  Before ``start`` the rotation puts nobody on duty;
- staff ids come back in the order of the ``staff:`` section, each once, so that who is notified first
  does not depend on which shift or override put them on duty;
- a grid without a roster has nobody on duty; an id that is not in ``grids:`` raises ``KeyError``.

``on_duty_climbing`` walks up the ``parent`` ladder when nobody is on duty (a roster with a gap
escalates at once to the parent grid). ``gaps`` lists the intervals in which a roster puts nobody on
duty, exact to the second: the answer can only change where a shift starts or ends, where an override
starts or ends, or where the rotation starts, so only those instants are evaluated.
``roster_warnings`` turns gaps and empty overrides into `gridwatch config check` warnings.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from gridwatch.core.config.duty import DutyConfig, OverrideConfig
from gridwatch.core.config.root import GridwatchConfig
from gridwatch.core.config.schedules import WEEKDAYS, clock_minutes
from gridwatch.core.schedules import Schedule, Window

KeyPath = tuple[str | int, ...]

# `config check` warns of the gaps in this much of the future: a week, and a day more for shifts crossing
# midnight. It looks a week further on both sides, so that a gap is described whole (a gap under way at
# `now` from its real start), not cut where the horizon happens to fall.
WARNING_HORIZON = dt.timedelta(days=8)
_WARNING_CONTEXT = dt.timedelta(days=7)
_MAX_GAPS_LISTED = 10


@dataclass(frozen=True, slots=True)
class _Override:
    start: dt.datetime  # UTC, included
    end: dt.datetime  # UTC, excluded
    staff: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Rotation:
    staff: tuple[str, ...]
    every: dt.timedelta
    start: dt.datetime  # UTC


@dataclass(frozen=True, slots=True)
class _Roster:
    grid: str
    zone: ZoneInfo
    shifts: tuple[tuple[Schedule, tuple[str, ...]], ...]  # one single-window schedule per shift
    all_shifts: Schedule | None  # every shift window in one schedule: where "anyone on shift" changes
    rotation: _Rotation | None
    overrides: tuple[_Override, ...]

    @classmethod
    def from_config(cls, config: DutyConfig) -> _Roster:
        zone = ZoneInfo(config.timezone)
        windows = [
            Window(
                weekdays=frozenset(WEEKDAYS.index(day) for day in shift.days),
                start=clock_minutes(shift.start),
                end=clock_minutes(shift.end),
            )
            for shift in config.shifts
        ]
        shifts = tuple(
            (Schedule(f"duty:{config.grid}:shifts[{i}]", zone, (window,)), tuple(shift.staff))
            for i, (window, shift) in enumerate(zip(windows, config.shifts, strict=True))
        )
        all_shifts = Schedule(f"duty:{config.grid}:shifts", zone, tuple(windows)) if windows else None
        rotation = None
        if config.rotation is not None:
            rotation = _Rotation(
                staff=tuple(config.rotation.staff),
                every=dt.timedelta(seconds=config.rotation.every_s),
                start=_in_zone(config.rotation.start, zone),
            )
        overrides = tuple(_override(o, zone) for o in config.overrides)
        return cls(config.grid, zone, shifts, all_shifts, rotation, overrides)

    def staff_at(self, at: dt.datetime) -> list[str]:
        """Staff on duty at ``at`` (UTC), in roster order, possibly repeated."""
        covering = [o for o in self.overrides if o.start <= at < o.end]
        if covering:
            return [person for o in covering for person in o.staff]
        on_duty = [person for schedule, staff in self.shifts if schedule.contains(at) for person in staff]
        if self.rotation is not None and at >= self.rotation.start:
            turn = (at - self.rotation.start) // self.rotation.every
            on_duty.append(self.rotation.staff[turn % len(self.rotation.staff)])
        return on_duty

    def anybody_at(self, at: dt.datetime) -> bool:
        """Whether ``staff_at(at)`` names anybody (cheaper: one look at all shifts together)."""
        covering = [o for o in self.overrides if o.start <= at < o.end]
        if covering:
            return any(o.staff for o in covering)
        if self.rotation is not None and at >= self.rotation.start:
            return True
        return self.all_shifts is not None and self.all_shifts.contains(at)

    def changes(self, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
        """Every instant in (start, end) at which nobody-on-duty may start or stop (a superset), in order."""
        instants: set[dt.datetime] = set()
        if self.all_shifts is not None:
            instants.update(_boundaries(self.all_shifts, start, end))
        for o in self.overrides:
            instants.update((o.start, o.end))
        if self.rotation is not None:
            instants.add(self.rotation.start)
        return sorted(i for i in instants if start < i < end)


def _boundaries(schedule: Schedule, start: dt.datetime, end: dt.datetime) -> Iterator[dt.datetime]:
    """The schedule's candidate changes in (start, end): one pass over them rather than a `next_change` call
    per change (each starts its search afresh), since config check looks at every roster."""
    at = start
    while True:
        progressed = False
        for instant in schedule.boundaries(at):
            if instant >= end:
                return
            yield instant
            at, progressed = instant, True
        if not progressed:
            return


class DutyRoster:
    """The duty rosters of a config: who is on duty for which grid, and the grids' escalation ladder."""

    def __init__(
        self,
        grids: Sequence[tuple[str, str | None]],
        rosters: Iterable[_Roster],
        staff_order: Sequence[str] = (),
    ) -> None:
        self._parents: dict[str, str | None] = dict(grids)
        self._rosters: dict[str, _Roster] = {r.grid: r for r in rosters}
        self._rank: dict[str, int] = {person: i for i, person in enumerate(staff_order)}

    @classmethod
    def from_config(cls, config: GridwatchConfig) -> DutyRoster:
        return cls(
            [(g.id, g.parent) for g in config.grids],
            [_Roster.from_config(d) for d in config.duty],
            [p.id for p in config.staff],
        )

    def grids(self) -> list[str]:
        """Ids of the ``grids:`` section, in config order."""
        return list(self._parents)

    def has_roster(self, grid: str) -> bool:
        self._known(grid)
        return grid in self._rosters

    def parent(self, grid: str) -> str | None:
        self._known(grid)
        return self._parents[grid]

    def ancestors(self, grid: str) -> list[str]:
        """The grids above ``grid``, parent first (a cycle, which config validation refuses, stops the walk)."""
        self._known(grid)
        ladder: list[str] = []
        at = self._parents[grid]
        while at is not None and at in self._parents and at not in ladder and at != grid:
            ladder.append(at)
            at = self._parents[at]
        return ladder

    def on_duty(self, grid: str, at: dt.datetime) -> list[str]:
        """Staff ids on duty for ``grid`` at the aware instant ``at``: staff-section order, each once."""
        self._known(grid)
        instant = _utc(at)
        roster = self._rosters.get(grid)
        return [] if roster is None else self._ordered(roster.staff_at(instant))

    def on_duty_climbing(self, grid: str, at: dt.datetime) -> tuple[str | None, list[str]]:
        """The duty of ``grid`` or, when nobody is on duty there, of the first grid up the ladder that has
        somebody: (the grid that answered, its staff); (None, []) when nobody is on duty all the way up."""
        for candidate in [grid, *self.ancestors(grid)]:
            staff = self.on_duty(candidate, at)
            if staff:
                return candidate, staff
        return None, []

    def gaps(self, grid: str, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
        """The intervals (UTC, merged, clipped to ``[start, end)``) in which ``grid``'s roster puts nobody on
        duty; [] for a grid without a roster (nothing to check: its alerts always climb)."""
        self._known(grid)
        begin, finish = _utc(start), _utc(end)
        roster = self._rosters.get(grid)
        if roster is None or finish <= begin:
            return []
        points = [begin, *roster.changes(begin, finish), finish]
        found: list[tuple[dt.datetime, dt.datetime]] = []
        for low, high in itertools.pairwise(points):
            if roster.anybody_at(low):
                continue
            if found and found[-1][1] == low:
                found[-1] = (found[-1][0], high)
            else:
                found.append((low, high))
        return found

    def zone(self, grid: str) -> ZoneInfo | None:
        """The time zone of ``grid``'s roster (None without one)."""
        self._known(grid)
        roster = self._rosters.get(grid)
        return None if roster is None else roster.zone

    def _known(self, grid: str) -> None:
        if grid not in self._parents:
            raise KeyError(grid)

    def _ordered(self, staff: Iterable[str]) -> list[str]:
        unique = list(dict.fromkeys(staff))
        last = len(self._rank)
        return sorted(unique, key=lambda person: (self._rank.get(person, last), unique.index(person)))


def roster_warnings(config: GridwatchConfig, now: dt.datetime) -> list[tuple[KeyPath, str]]:
    """`config check` warnings: (key path, reason) for every roster that leaves its grid without anybody on
    duty in the week ahead of ``now`` (looking 8 days ahead, for shifts crossing midnight), and for every
    override that names nobody. Such gaps are allowed (the alerts climb to the parent grid at once), but
    rarely meant."""
    roster = DutyRoster.from_config(config)
    now = _utc(now)
    warnings: list[tuple[KeyPath, str]] = []
    for i, duty in enumerate(config.duty):
        zone = ZoneInfo(duty.timezone)
        climb = _climb_text(roster, duty.grid)
        # Weekly repeats read the same, and are described once.
        described = _describe_all(_whole_gaps(roster, duty.grid, now, now + WARNING_HORIZON), zone)
        if described:
            listed = "; ".join(described[:_MAX_GAPS_LISTED])
            if len(described) > _MAX_GAPS_LISTED:
                listed += f" and {len(described) - _MAX_GAPS_LISTED} more"
            week = now.astimezone(zone).date().isoformat()
            warnings.append(
                (
                    ("duty", i),
                    f"nobody is on duty for grid {duty.grid} {listed} ({duty.timezone}) in the week from "
                    f"{week}: {climb}",
                )
            )
        for j, override in enumerate(duty.overrides):
            if not override.staff:
                when = _override_text(override)
                warnings.append(
                    (
                        ("duty", i, "overrides", j),
                        f"this override names nobody: nobody is on duty for grid {duty.grid} {when}: {climb}",
                    )
                )
    return warnings


def _whole_gaps(
    roster: DutyRoster, grid: str, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The gaps that overlap [start, end), not cut at its ends (up to a week further each way)."""
    gaps = roster.gaps(grid, start, end)
    if gaps and gaps[0][0] == start:
        earlier = roster.gaps(grid, start - _WARNING_CONTEXT, start)
        if earlier and earlier[-1][1] == start:
            gaps[0] = (earlier[-1][0], gaps[0][1])
    if gaps and gaps[-1][1] == end:
        later = roster.gaps(grid, end, end + _WARNING_CONTEXT)
        if later and later[0][0] == end:
            gaps[-1] = (gaps[-1][0], later[0][1])
    return gaps


def _climb_text(roster: DutyRoster, grid: str) -> str:
    parent = roster.parent(grid)
    if parent is None:
        return "alerts then reach nobody on duty (the grid has no parent grid)"
    return f"alerts then climb to the parent grid at once ({parent})"


def _describe_all(gaps: Iterable[tuple[dt.datetime, dt.datetime]], zone: ZoneInfo) -> list[str]:
    """Gaps in the roster's wall-clock time, the same hours on several weekdays joined, in the order they
    first come: "on mon, tue 20:00-22:00", "every day 22:00-06:00", "on sat 22:00 - mon 06:00", "at any time"."""
    days_by_hours: dict[str, set[int]] = {}
    for low, high in gaps:
        weekday, hours = _describe(low, high, zone)
        days = days_by_hours.setdefault(hours, set())
        if weekday is not None:
            days.add(weekday)
    texts: list[str] = []
    for hours, days in days_by_hours.items():
        if not days:
            texts.append(hours)
        elif len(days) == len(WEEKDAYS):
            texts.append(f"every day {hours}")
        else:
            texts.append(f"on {', '.join(WEEKDAYS[d] for d in sorted(days))} {hours}")
    return texts


def _describe(low: dt.datetime, high: dt.datetime, zone: ZoneInfo) -> tuple[int | None, str]:
    """(local weekday it starts on, hours) of a gap shorter than a day, written like a shift (ending the next
    day when the end is not after the start): (0, "20:00-22:00"), (4, "20:00-24:00"), (6, "22:00-06:00");
    (None, text) of a longer one: "on fri 18:00 - sun 22:00", "at any time" (a week or more)."""
    start, end = low.astimezone(zone), high.astimezone(zone)
    next_day = start.date() + dt.timedelta(days=1)
    if high - low >= dt.timedelta(days=7):
        return None, "at any time"
    if end.date() == start.date():
        return start.weekday(), f"{start:%H:%M}-{end:%H:%M}"
    if end.date() == next_day and end.time() == dt.time():
        return start.weekday(), f"{start:%H:%M}-24:00"
    if end.date() == next_day and end.time() <= start.time():
        return start.weekday(), f"{start:%H:%M}-{end:%H:%M}"
    return None, f"on {_weekday(start)} {start:%H:%M} - {_weekday(end)} {end:%H:%M}"


def _weekday(local: dt.datetime) -> str:
    return WEEKDAYS[local.weekday()]


def _override_text(override: OverrideConfig) -> str:
    if override.date is not None:
        return f"on {override.date.isoformat()}"
    start, end = _from_to(override)
    return f"from {start.isoformat()} to {end.isoformat()}"


def _override(config: OverrideConfig, zone: ZoneInfo) -> _Override:
    if config.date is not None:
        midnight = dt.datetime.combine(config.date, dt.time())
        start, end = _in_zone(midnight, zone), _in_zone(midnight + dt.timedelta(days=1), zone)
    else:
        naive_or_aware = _from_to(config)
        start, end = _in_zone(naive_or_aware[0], zone), _in_zone(naive_or_aware[1], zone)
    return _Override(start, end, tuple(config.staff))


def _from_to(override: OverrideConfig) -> tuple[dt.datetime, dt.datetime]:
    if override.start is None or override.end is None:  # OverrideConfig accepts only whole forms
        raise ValueError("an override needs `date`, or both `from` and `to`")
    return override.start, override.end


def _in_zone(value: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """``value`` as UTC: a naive value is a wall-clock time of ``zone``, an aware one is used as given."""
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(dt.UTC)


def _utc(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("duty needs an aware datetime (with a time zone or offset)")
    return at.astimezone(dt.UTC)
