"""Is a schedule active at an instant, and when does that change? A pure evaluator: no clock, no I/O.

A ``Schedule`` is a set of weekly windows in the local wall-clock time of one time zone, minus some
local dates. It answers for any aware instant, whatever zone that instant is written in:

- windows are ``[start, end)`` in local time: the start is included, the end excluded;
- a window whose end is not after its start crosses midnight: "fri 22:00-06:00" covers Saturday 03:00;
- an excepted date removes the windows that *start* on it (for one crossing midnight: the date of
  its start), so "fri 22:00-06:00" with Friday excepted is off all that night, and with Saturday
  excepted still on until Saturday 06:00;
- wall-clock time decides, across daylight saving changes too: on the day the clocks go forward a
  window is shorter by the skipped hour (a window inside it never happens), on the day they go back
  the repeated hour is inside the window both times.

Shared by per-person allowed hours and (later) duty rosters; nothing here knows about either.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from gridwatch.core.config.schedules import WEEKDAYS, ScheduleConfig, clock_minutes

MINUTES_PER_DAY = 24 * 60
_SECONDS_PER_DAY = 24 * 3600
# How far a zone's UTC offset ever jumps at once (Samoa skipped a whole day in 2011), with room to spare:
# a wall-clock time of a later day is never earlier than this before that day's midnight.
_MAX_OFFSET_JUMP = dt.timedelta(days=2)
# A week is the period of the windows; a day more covers windows that cross midnight.
_PERIOD_DAYS = 8
_PROBES_PER_DAY = 4  # offset checks per day when looking for a daylight saving change


@dataclass(frozen=True, slots=True)
class Window:
    """A daily window on some weekdays: minutes after local midnight, ``start`` included, ``end`` excluded."""

    weekdays: frozenset[int]  # date.weekday(): Monday is 0
    start: int  # 0..1439
    end: int  # 1..1440; not after ``start``: the window ends the next day

    def __post_init__(self) -> None:
        if not self.weekdays or not self.weekdays <= set(range(7)):
            raise ValueError("weekdays must be a non-empty set of 0 (Monday) .. 6 (Sunday)")
        if not (0 <= self.start < MINUTES_PER_DAY and 0 <= self.end <= MINUTES_PER_DAY):
            raise ValueError("start must be in 0..1439 and end in 0..1440 minutes")
        if self.start == self.end:
            raise ValueError("empty window: start and end are the same time")

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start


@dataclass(frozen=True, slots=True)
class Schedule:
    """Weekly windows in ``zone``'s wall-clock time, inactive on ``except_dates`` (local dates)."""

    schedule_id: str
    zone: ZoneInfo
    windows: tuple[Window, ...]
    except_dates: frozenset[dt.date] = frozenset()

    @classmethod
    def from_config(cls, config: ScheduleConfig) -> Schedule:
        windows = tuple(
            Window(
                weekdays=frozenset(WEEKDAYS.index(day) for day in interval.days),
                start=clock_minutes(interval.start),
                end=clock_minutes(interval.end),
            )
            for interval in config.intervals
        )
        return cls(config.id, ZoneInfo(config.timezone), windows, frozenset(config.except_dates))

    def contains(self, at: dt.datetime) -> bool:
        """Whether ``at`` (an aware datetime, any zone) lies inside a window."""
        local = _aware(at).astimezone(self.zone)
        today = local.date()
        yesterday = today - dt.timedelta(days=1)
        second = local.hour * 3600 + local.minute * 60 + local.second  # sub-second parts never cross a minute
        for window in self.windows:
            start, end = window.start * 60, window.end * 60
            if window.crosses_midnight:
                if second >= start and self._starts_on(window, today):
                    return True
                if second < end and self._starts_on(window, yesterday):
                    return True
            elif start <= second < end and self._starts_on(window, today):
                return True
        return False

    def next_change(self, after: dt.datetime) -> dt.datetime | None:
        """The first instant after ``after`` at which ``contains`` answers differently (UTC), exact to the
        second; ``None`` if that never happens (a schedule active all week, and no excepted date ahead).

        UTC, because subtracting two datetimes of the same ``ZoneInfo`` ignores their offsets: a timer
        computed in local time would be an hour off across a daylight saving change.
        """
        after = _aware(after).astimezone(dt.UTC)
        state = self.contains(after)
        for instant in self._boundaries(after):
            if self.contains(instant) != state:
                return instant
        return None

    def boundaries(self, after: dt.datetime) -> Iterator[dt.datetime]:
        """Instants after ``after`` (UTC, in order) at which ``contains`` may answer differently: a superset
        of the changes, for callers that check many of them (a duty roster's gaps). It covers at least the
        next week; it may end after that, so call again from its last instant to go on."""
        return self._boundaries(_aware(after).astimezone(dt.UTC))

    def _starts_on(self, window: Window, day: dt.date) -> bool:
        return day.weekday() in window.weekdays and day not in self.except_dates

    def _boundaries(self, after: dt.datetime) -> Iterator[dt.datetime]:
        """Every instant after ``after`` where the answer may change, in order (a superset: each is checked).

        The answer can only change where the wall clock passes a window's start or end (each local time
        taken with both offsets, for the repeated and the skipped hour), or where it jumps (a daylight
        saving change). Past the last excepted date a week without a change means none ever comes.
        """
        first_day = after.astimezone(self.zone).date() - dt.timedelta(days=1)
        later_exceptions = [day for day in self.except_dates if day >= first_day]
        last_day = max([first_day, *later_exceptions]) + dt.timedelta(days=_PERIOD_DAYS + 1)
        minutes = sorted({m for window in self.windows for m in (window.start, window.end)})
        pending: list[dt.datetime] = []
        day = first_day
        while day <= last_day:
            for minute in minutes:
                for fold in (0, 1):
                    heapq.heappush(pending, self._instant(day, minute, fold))
            for change in self._offset_changes(day):
                heapq.heappush(pending, change)
            # Later days only add instants after this: what is before it is final and in order.
            settled = self._instant(day + dt.timedelta(days=1), 0, 0) - _MAX_OFFSET_JUMP
            yield from _pop_until(pending, settled, after)
            day += dt.timedelta(days=1)
        yield from _pop_until(pending, None, after)

    def _instant(self, day: dt.date, minute: int, fold: int) -> dt.datetime:
        local = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minute)
        return local.replace(tzinfo=self.zone, fold=fold).astimezone(dt.UTC)

    def _offset_changes(self, day: dt.date) -> Iterable[dt.datetime]:
        """The instants (to the second) at which the zone's UTC offset changes during ``day``."""
        begin = self._instant(day, 0, 0)
        step = dt.timedelta(seconds=_SECONDS_PER_DAY // _PROBES_PER_DAY)
        probes = [begin + step * k for k in range(_PROBES_PER_DAY + 1)]
        for low, high in itertools.pairwise(probes):
            if self._offset(low) != self._offset(high):
                yield self._first_with_offset_of(low, high)

    def _first_with_offset_of(self, low: dt.datetime, high: dt.datetime) -> dt.datetime:
        """Bisection: the first second after ``low`` whose offset is ``high``'s (offsets differ at the ends)."""
        target = self._offset(high)
        while high - low > dt.timedelta(seconds=1):
            middle = low + dt.timedelta(seconds=(high - low).total_seconds() // 2)
            if self._offset(middle) == target:
                high = middle
            else:
                low = middle
        return high

    def _offset(self, instant: dt.datetime) -> dt.timedelta | None:
        return instant.astimezone(self.zone).utcoffset()


def _pop_until(pending: list[dt.datetime], settled: dt.datetime | None, after: dt.datetime) -> Iterator[dt.datetime]:
    """Pop the heap's instants up to ``settled`` (all if None), skipping repeats and those not after ``after``."""
    last: dt.datetime | None = None
    while pending and (settled is None or pending[0] <= settled):
        instant = heapq.heappop(pending)
        if instant > after and instant != last:
            last = instant
            yield instant


def _aware(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("a schedule needs an aware datetime (with a time zone)")
    return at
