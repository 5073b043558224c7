"""Runs the service's rule engine and case desk over checked input on a virtual clock, on a throwaway
in-memory database.

The engine, its state, the rule surroundings, the routing and the case desk are the service's own
(``RuleEngine``, ``RuleState``, ``rule_surroundings``, ``Desk``, ``build_router``); only the clock, the
person directory and the database differ. Output records carry a ``type``: ``alert``, ``notification``,
``escalation``, ``acknowledged``. Between two events
the clock stops at each timer's due time and fires it there, as the service's timer loop would wake for
it, so a ``not_seen`` alert is made at its due time exactly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Generator, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from gridwatch.core.config.root import GridwatchConfig
from gridwatch.core.db import Database
from gridwatch.core.events import CASE_EVENT_TYPES, Alert, Sighting
from gridwatch.core.interfaces import CaseError
from gridwatch.core.persons import PersonConditions
from gridwatch.simulate.inputs import (
    AckInput,
    Event,
    InputProblem,
    SimulationInput,
    SimulationInputError,
    iso_utc,
)
from gridwatch.wiring import build_router, registry_confirmations, rule_surroundings
from notifier.desk import Desk, Steps
from notifier.outbox import Outbox
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
    config: GridwatchConfig,
    inputs: SimulationInput,
    until: dt.datetime | None = None,
    acks: Sequence[AckInput] = (),
) -> Generator[Record, None, None]:
    """What the rules and routing of ``config`` make over ``inputs`` (and the staff's ``acks``), as output
    records in the order of virtual time, with the clock run on to ``until`` (default: the last event or
    acknowledgement) so that timers due meanwhile fire."""
    events = inputs.events
    ends = [e.captured_at for e in events[-1:]] + [a.at for a in acks[-1:]]
    end = until if until is not None else (max(ends) if ends else None)
    if end is None:
        return  # no event and no end: no time passes
    if ends and end < max(ends):
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
        outbox = Outbox(database)  # no sinks: the alerts are the output; the cases need their alert rows
        outbox.open()
        desk = Desk(database, build_router(config), confirmations=registry_confirmations(config), clock=clock)
        engine.arm()  # the entries are all known from the start; arming again would change nothing
        run = _Run(engine, desk, outbox, clock)
        pending_acks = list(acks)
        for event in events:
            # A timer due at the very instant of an event waits for it (a sighting then may restart it).
            yield from run.until(event.captured_at, pending_acks, inclusive=False)
            clock.advance_to(event.captured_at)
            yield from run.handle(event)
        yield from run.until(end, pending_acks, inclusive=True)
    finally:
        database.close()


Record = dict[str, Any]


class _Run:
    """The service's rule engine and case desk on one virtual clock; each step yields its output records."""

    def __init__(self, engine: RuleEngine, desk: Desk, outbox: Outbox, clock: VirtualClock) -> None:
        self._engine = engine
        self._desk = desk
        self._outbox = outbox
        self._clock = clock

    def handle(self, event: Event) -> Iterator[Record]:
        alerts = self._engine.evaluate(event) if isinstance(event, Sighting) else self._engine.attempt(event)
        for alert in alerts:
            yield from self._raise(alert)

    def _raise(self, alert: Alert) -> Iterator[Record]:
        """As the service's alert port: recipients named, the alert and its case stored together."""
        alert = alert.model_copy(update={"recipients": self._desk.recipients_for(alert)})
        open_in, steps = self._desk.opener(alert)
        self._outbox.add(alert, now=self._clock.now.timestamp(), also=open_in)
        yield alert_record(alert)
        yield from step_records(steps, alert.rule, alert.person_id)

    def until(self, limit: dt.datetime, acks: list[AckInput], *, inclusive: bool) -> Iterator[Record]:
        """Fire every rule timer, acknowledgement and case timer due before ``limit`` (or at it, if
        ``inclusive``), each at its own time; at one instant: rule timers, then acknowledgements, then
        case timers (an acknowledgement at the very second of an escalation step stops it)."""
        while True:
            rule_due = self._engine.next_due()
            ack_due = acks[0].at if acks else None
            case_due = self._desk.next_due()
            due = min((t for t in (rule_due, ack_due, case_due) if t is not None), default=None)
            if due is None or due > limit or (due == limit and not inclusive):
                return
            self._clock.advance_to(due)
            if rule_due == due:
                yield from self._fire_rule_timers(due)
            elif ack_due == due:
                yield from self._acknowledge(acks.pop(0))
            else:
                made = self._desk.due()
                if not made.events:
                    raise RuntimeError(f"a case timer due at {due.isoformat()} did nothing")
                yield from step_records(made, None, None)

    def _fire_rule_timers(self, due: dt.datetime) -> Iterator[Record]:
        firings = self._engine.due()
        for firing in firings:
            yield from self._raise(firing.alert)
        self._engine.commit(firings)  # as the stage does once the alerts are in the outbox
        if not firings and self._engine.next_due() == due:
            # Every due timer either fires or is moved: one that does neither would loop forever.
            raise RuntimeError(f"a timer due at {due.isoformat()} neither fired nor moved")

    def _acknowledge(self, ack: AckInput) -> Iterator[Record]:
        alert_id = self._desk.open_case(ack.person_id, ack.rule)
        if alert_id is None:
            reason = f"no open alert of rule {ack.rule!r} for {ack.person_id!r} at {iso_utc(ack.at)}"
            raise SimulationInputError([InputProblem(ack.where, ack.line, "", reason)])
        try:
            view = self._desk.acknowledge(alert_id, ack.by, channel="simulation")
        except CaseError as exc:
            raise SimulationInputError([InputProblem(ack.where, ack.line, "by", str(exc))]) from None
        if view.changed:
            yield {
                "at": iso_utc(self._clock.now),
                "type": "acknowledged",
                "rule": ack.rule,
                "person_id": ack.person_id,
                "by": ack.by,
                "level": view.level,
                "alert_id": alert_id,
            }


def step_records(steps: Steps, rule: str | None, person_id: str | None) -> Iterator[Record]:
    """The output records of committed case steps, step by step: an escalation, then its notifications."""
    for event in steps.events:
        sent = [n for n in steps.notifications if n.alert_id == event.alert_id and n.created_at == event.at]
        if event.type == CASE_EVENT_TYPES["escalated"]:
            yield {
                "at": iso_utc(event.at),
                "type": "escalation",
                "rule": rule if rule is not None else _rule_of(steps, event.alert_id),
                "person_id": person_id if person_id is not None else _person_of(steps, event.alert_id),
                "level": event.level,
                "to": list(event.recipients),
                "alert_id": event.alert_id,
            }
        elif event.type != CASE_EVENT_TYPES["notified"]:
            continue
        for n in sent:
            yield {
                "at": iso_utc(n.created_at),
                "type": "notification",
                "rule": n.rule,
                "person_id": n.person_id,
                "to": n.staff_id,
                "channel": n.channel,
                "level": n.level,
                "repeat": n.repeat,
                "alert_id": n.alert_id,
            }


def _rule_of(steps: Steps, alert_id: str) -> str | None:
    return next((n.rule for n in steps.notifications if n.alert_id == alert_id), None)


def _person_of(steps: Steps, alert_id: str) -> str | None:
    return next((n.person_id for n in steps.notifications if n.alert_id == alert_id), None)


def alert_record(alert: Alert) -> dict[str, Any]:
    """The output line of one alert: when it was made (virtual time) and what it says."""
    return {
        "at": iso_utc(alert.created_at),
        "type": "alert",
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
        "recipients": alert.recipients,
    }


if TYPE_CHECKING:

    def _is_a_person_directory(directory: EntryDirectory) -> PersonDirectory:
        return directory  # mypy checks that the simulation's directory implements the port rules are given
