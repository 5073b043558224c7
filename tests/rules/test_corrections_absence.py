"""not_seen on a corrections entry: outside its approvals the entry is ignored, so no absence alert either."""

from __future__ import annotations

import datetime as dt

from gridwatch.core.db import Database
from tests.rules.support import T0, Clock, Directory, Entry
from tests.rules.test_absence import H, engine, fire

DAY = dt.timedelta(days=1)


def test_no_absence_alert_after_the_approval_ends(database: Database) -> None:
    clock = Clock()
    approved = Entry("p_1", home_sources=("gate-n",), approvals=((T0, T0 + dt.timedelta(hours=24)),))
    rules = engine(database, clock, Directory(approved))
    fire(rules)
    clock.now = T0 + dt.timedelta(hours=48)  # due, but the approval ended at 24 h
    assert fire(rules) == []
    clock.now += 30 * DAY
    assert fire(rules) == []  # it waits for a sighting, which a match outside an approval cannot make


def test_an_extension_recorded_ahead_counts_the_absence_from_its_start(database: Database) -> None:
    clock = Clock()
    first = (T0, T0 + dt.timedelta(hours=24))
    extension = (T0 + dt.timedelta(hours=72), T0 + dt.timedelta(hours=72) + 60 * DAY)
    rules = engine(database, clock, Directory(Entry("p_1", home_sources=("gate-n",), approvals=(first, extension))))
    fire(rules)
    clock.now = T0 + dt.timedelta(hours=48)  # between the approvals: ignored
    assert fire(rules) == []
    clock.now = T0 + dt.timedelta(hours=72 + 48) - dt.timedelta(seconds=1)
    assert fire(rules) == []
    clock.now = T0 + dt.timedelta(hours=72 + 48)
    [alert] = fire(rules)
    assert alert.person_id == "p_1"


def test_within_the_approval_the_absence_fires_as_usual(database: Database) -> None:
    clock = Clock()
    rules = engine(database, clock, Directory(Entry("p_1", approvals=((T0, T0 + 92 * DAY),))), sources=["gate-n"])
    fire(rules)
    clock.now = T0 + dt.timedelta(seconds=48 * H)
    assert len(fire(rules)) == 1
