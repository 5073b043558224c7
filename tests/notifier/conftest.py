"""Fixtures of the notifier tests: Apache Kafka brokers, topic names and alert factories.

``kafka`` (the session's single node) and ``kafka_cluster`` come from ``tests/conftest.py``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator

import pytest

from gridwatch.core.events import Alert, Severity, SourceKind, alert_id_for
from tests.support.kafka import KafkaBroker, unique_topic

AlertFactory = Callable[..., Alert]


@pytest.fixture
def kafka_broker() -> Iterator[KafkaBroker]:
    """A single-node Kafka of this test alone, which it may stop and start (data kept); removed afterwards.

    Costs a broker start (~3 s): tests that leave the broker running use the session ``kafka``.
    """
    with KafkaBroker() as broker:
        yield broker


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> str:
    """A topic name of this test alone (the session broker is shared; its topics outlive the test)."""
    return unique_topic(request.node.name)


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
