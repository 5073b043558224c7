"""Fixtures of the notifier tests: a real Tansu broker and alert factories."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator

import pytest

from gridwatch.core.events import Alert, Severity, SourceKind, alert_id_for
from tests.support.kafka import TansuBroker

AlertFactory = Callable[..., Alert]


@pytest.fixture
def kafka_broker() -> Iterator[TansuBroker]:
    """A fresh Tansu broker on a free port; killed by its PID afterwards."""
    broker = TansuBroker()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def make_alert() -> AlertFactory:
    """Alerts with distinct deterministic ids unless ``person_id``/``at`` are given again."""
    counter = itertools.count(1)

    def factory(
        person_id: str | None = None,
        *,
        rule: str = "seen-at-gate",
        source: str = "gate-north",
        at: dt.datetime | None = None,
        severity: Severity = Severity.WARNING,
        explanation: str = "Person of registry watch seen at gate-north (similarity 0.61 >= 0.45).",
    ) -> Alert:
        n = next(counter)
        person = person_id or f"p-{n:04d}"
        created = at or dt.datetime(2024, 5, 1, 10, 0, n % 60, tzinfo=dt.UTC)
        return Alert(
            alert_id=alert_id_for(rule, person, source, created, 300),
            rule=rule,
            severity=severity,
            person_id=person,
            registry="watch",
            source=source,
            source_kind=SourceKind.GATE,
            grid="grid-7",
            created_at=created,
            sightings=[f"s-{n}"],
            similarity=0.6123,
            explanation=explanation,
        )

    return factory
