"""Builders for the rule tests: sightings, a settable clock, a directory of entries, a simple schedule."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

from gridwatch.core.events import Quality, Sighting, SourceKind
from gridwatch.core.persons import PersonConditions

T0 = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)


def sighting(
    person: str = "p_1",
    source: str = "cam-1",
    registry: str = "watch",
    at: dt.datetime = T0,
    *,
    kind: SourceKind = SourceKind.CAMERA,
    track: str | None = None,
) -> Sighting:
    return Sighting(
        source=source,
        source_kind=kind,
        captured_at=at,
        received_at=at,
        person_id=person,
        registry=registry,
        similarity=0.61,
        threshold=0.45,
        model="test@0",
        quality=Quality(det_score=0.8, face_px=90),
        track_id=track,
    )


class Clock:
    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> dt.datetime:
        self.now += dt.timedelta(seconds=seconds)
        return self.now


def Entry(
    person_id: str, registry: str = "watch", enrolled_at: dt.datetime = T0, **conditions: Any
) -> PersonConditions:
    return PersonConditions(person_id, registry, enrolled_at, **conditions)


class Directory:
    def __init__(self, *entries: PersonConditions) -> None:
        self.entries = {e.person_id: e for e in entries}

    def add(self, entry: PersonConditions) -> None:
        self.entries[entry.person_id] = entry

    def conditions(self, person_id: str) -> PersonConditions | None:
        return self.entries.get(person_id)

    def persons(self, registries: Collection[str]) -> list[PersonConditions]:
        return [e for e in self.entries.values() if e.registry in registries]


class DailyWindow:
    """Active every day from ``start_h`` to ``end_h`` UTC (crossing midnight when end < start)."""

    def __init__(self, start_h: int, end_h: int) -> None:
        self.start_h, self.end_h = start_h, end_h

    def contains(self, at: dt.datetime) -> bool:
        hour = at.astimezone(dt.UTC).hour
        if self.start_h < self.end_h:
            return self.start_h <= hour < self.end_h
        return hour >= self.start_h or hour < self.end_h

    def next_change(self, after: dt.datetime) -> dt.datetime | None:
        at = after.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
        state = self.contains(after)
        for _ in range(48):
            if self.contains(at) != state:
                return at
            at += dt.timedelta(hours=1)
        return None
