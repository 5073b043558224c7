"""The engine reads persons' conditions from the real registry store while its own transaction is open.

On SQLite every writing transaction holds the database's write lock; a read of the store made inside
the rule stage's transaction must not wait for it (it would, for the whole busy timeout, and stall
the service). Both backends.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
from pydantic import TypeAdapter

from gridwatch.core.config.rules import RuleConfig
from gridwatch.core.db import Database
from recognition.store import RegistryStore
from rules.engine import RuleEngine
from rules.state import RuleState
from tests.rules.support import T0, Clock, sighting
from tests.support.keys import site_keys

RULES = TypeAdapter(list[RuleConfig]).validate_python(
    [
        {"id": "absent", "kind": "not_seen", "registries": ["watch"], "after_s": 3600},
        {"id": "area", "kind": "outside_area", "registries": ["watch"]},
        {"id": "hours", "kind": "outside_hours", "registries": ["watch"]},
    ]
)


def test_conditions_are_read_inside_the_rule_transaction_without_waiting(database: Database, tmp_path: Path) -> None:
    store = RegistryStore(database, keys=site_keys(tmp_path))
    vector = np.ones(512, dtype=np.float32) / np.sqrt(512)
    person, _ = store.add_person(
        registry="watch",
        display_name="Resident",
        model_id="test@0",
        embeddings=[("a" * 64, vector)],
        now=T0,
        expires_at=T0 + dt.timedelta(days=30),
        home_sources=["gate-n"],
        allowed_zones=["estate-north"],
    )
    clock = Clock()
    engine = RuleEngine(
        RULES, RuleState(database), clock, directory=store, zones={"estate-north": frozenset({"gate-n"})}
    )
    started = time.monotonic()
    engine.arm()
    clock.now = T0 + dt.timedelta(minutes=5)
    assert [a.rule for a in engine.evaluate(sighting(person=person.person_id, source="cam-far", at=clock.now))] == [
        "area"
    ]
    engine.evaluate(sighting(person=person.person_id, source="gate-n", at=clock.now))
    clock.now = T0 + dt.timedelta(minutes=5, hours=1)
    [firing] = engine.due()
    engine.commit([firing])
    assert firing.alert.person_id == person.person_id
    assert time.monotonic() - started < 5.0  # a wait for the lock would take the busy timeout (10 s) or more
