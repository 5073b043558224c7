"""Runs the service's rule engine over checked input on a virtual clock, on a throwaway in-memory database.

The engine, its state and the rule surroundings are the service's own (``RuleEngine``, ``RuleState``,
``rule_surroundings``); only the clock, the person directory and the database differ. Between two events
the clock stops at each timer's due time and fires it there, as the service's timer loop would wake for
it, so a ``not_seen`` alert is made at its due time exactly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from gridwatch.core.config.root import GridwatchConfig
from gridwatch.core.db import Database
from gridwatch.core.events import Alert, Sighting
from gridwatch.core.persons import PersonConditions
from gridwatch.simulate.inputs import Event, InputProblem, SimulationInput, SimulationInputError, iso_utc
from gridwatch.wiring import rule_surroundings
from rules.engine import RuleEngine
from rules.state import RuleState

if TYPE_CHECKING:
    from gridwatch.core.interfaces import PersonDirectory

# In memory: nothing of the site is read or written. SQLAlchemy gives ``sqlite://`` one connection per
# thread, so the whole simulation runs in the calling thread (the engine is never handed to a worker).
DATABASE_URL = "sqlite://"


class EntryDirectory:
    """The persons of the entries file, as the registry store would answer for them."""

    def __init__(self, entries: Iterable[PersonConditions]) -> None:
        self._entries = {entry.person_id: entry for entry in entries}

    def conditions(self, person_id: str) -> PersonConditions | None:
        return self._entries.get(person_id)

    def persons(self, registries: Collection[str]) -> list[PersonConditions]:
        chosen = [entry for entry in self._entries.values() if entry.registry in registries]
        return sorted(chosen, key=lambda e: (e.registry, e.enrolled_at, e.person_id))


class VirtualClock:
    """The engine's clock; only the simulation moves it, and never backwards."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance_to(self, at: dt.datetime) -> None:
        self.now = max(self.now, at)


def simulate(
    config: GridwatchConfig, inputs: SimulationInput, until: dt.datetime | None = None
) -> Generator[Alert, None, None]:
    """The alerts the rules of ``config`` make over ``inputs``, in the order of virtual time, with the clock
    run on to ``until`` (default: the last event) so that timers due meanwhile fire."""
    events = inputs.events
    end = until if until is not None else (events[-1].captured_at if events else None)
    if end is None:
        return  # no event and no end: no time passes
    if events and end < events[-1].captured_at:
        raise SimulationInputError([InputProblem("--until", None, "", "before the last event")])
    # The rules are in force from the first enrolment or event on, so every absence counts from enrolment.
    starts = [entry.enrolled_at for entry in inputs.entries] + [event.captured_at for event in events[:1]]
    clock = VirtualClock(min([*starts, end]))
    database = Database(DATABASE_URL)
    try:
        engine = RuleEngine(
            config.rules,
            RuleState(database),
            clock,
            directory=EntryDirectory(inputs.entries),
            delivered_on_create=True,  # no sink to wait for: an alert counts as delivered when it is made
            **rule_surroundings(config),
        )
        engine.arm()  # the entries are all known from the start; arming again would change nothing
        for event in events:
            # A timer due at the very instant of an event waits for it (a sighting then may restart it).
            yield from _fire_timers(engine, clock, event.captured_at, inclusive=False)
            clock.advance_to(event.captured_at)
            yield from _handle(engine, event)
        yield from _fire_timers(engine, clock, end, inclusive=True)
    finally:
        database.close()


def _handle(engine: RuleEngine, event: Event) -> list[Alert]:
    return engine.evaluate(event) if isinstance(event, Sighting) else engine.attempt(event)


def _fire_timers(engine: RuleEngine, clock: VirtualClock, limit: dt.datetime, *, inclusive: bool) -> Iterator[Alert]:
    """Fire every timer due before ``limit`` (or at it, if ``inclusive``), each at its own due time."""
    while True:
        due = engine.next_due()
        if due is None or due > limit or (due == limit and not inclusive):
            return
        clock.advance_to(due)
        firings = engine.due()
        for firing in firings:
            yield firing.alert
        engine.commit(firings)  # as the stage does once the alerts are in the outbox
        if not firings and engine.next_due() == due:
            # Every due timer either fires or is moved: one that does neither would loop forever.
            raise RuntimeError(f"a timer due at {due.isoformat()} neither fired nor moved")


def alert_record(alert: Alert) -> dict[str, Any]:
    """The output line of one alert: when it was made (virtual time) and what it says."""
    return {
        "at": iso_utc(alert.created_at),
        "rule": alert.rule,
        "kind": alert.kind,
        "severity": str(alert.severity),
        "person_id": alert.person_id,
        "registry": alert.registry,
        "source": alert.source,
        "source_kind": str(alert.source_kind),
        "explanation": alert.explanation,
        "suppressed": alert.suppressed,
        "sightings": alert.sightings,
        "alert_id": alert.alert_id,
    }


if TYPE_CHECKING:

    def _is_a_person_directory(directory: EntryDirectory) -> PersonDirectory:
        return directory  # mypy checks that the simulation's directory implements the port rules are given
