"""What a rule may look at besides the event: the state, the persons' own conditions, zones, schedules."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gridwatch.core.events import Alert, SourceKind
from gridwatch.core.interfaces import PersonDirectory
from gridwatch.core.persons import PersonConditions
from rules.state import RuleState


class ScheduleView(Protocol):
    def contains(self, at: dt.datetime) -> bool: ...
    def next_change(self, after: dt.datetime) -> dt.datetime | None: ...


class NoDirectory:
    """No registry at hand (unit tests of kinds that need none)."""

    def conditions(self, person_id: str) -> PersonConditions | None:
        return None

    def persons(self, registries: Collection[str]) -> list[PersonConditions]:
        return []


@dataclass(slots=True)
class RuleContext:
    state: RuleState
    directory: PersonDirectory
    zones: Mapping[str, frozenset[str]] = field(default_factory=dict)
    schedules: Mapping[str, ScheduleView] = field(default_factory=dict)
    # The simulator counts every alert as delivered when it is made; the service waits for a sink.
    delivered_on_create: bool = False
    # Source id -> (camera or gate, grid): for alerts that no sighting carries (timers).
    sources: Mapping[str, tuple[SourceKind, str | None]] = field(default_factory=dict)
    # Called with (rule id) for every suppressed sighting: metrics and /status.
    on_suppressed: Callable[[str], None] = lambda rule: None

    def source_kind(self, source: str) -> SourceKind:
        return self.sources.get(source, (SourceKind.CAMERA, None))[0]

    def grid(self, source: str) -> str | None:
        return self.sources.get(source, (SourceKind.CAMERA, None))[1]

    def zone_sources(self, zones: Collection[str]) -> frozenset[str]:
        sources: set[str] = set()
        for zone in zones:
            sources |= self.zones.get(zone, frozenset())
        return frozenset(sources)

    def armed(self, schedule_id: str | None, at: dt.datetime) -> bool:
        """Whether a rule with ``active: schedule_id`` may alert at ``at`` (an unknown schedule never arms)."""
        if schedule_id is None:
            return True
        schedule = self.schedules.get(schedule_id)
        return schedule is not None and schedule.contains(at)


@dataclass(frozen=True, slots=True)
class Firing:
    """An alert a timer makes, and what to record once the alert is safely in the outbox."""

    alert: Alert
    commit: Callable[[], None]
