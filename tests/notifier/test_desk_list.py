"""The desk's queue read (``Desk.list_cases``) on SQLite and PostgreSQL: filters, order, recipients, scope."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from gridwatch.core.events import CaseState
from gridwatch.core.interfaces import CaseNotFoundError
from tests.notifier.test_desk import LADDER, T0, Rig, alert
from tests.support.db import Databases


@pytest.fixture
def rig(databases: Databases) -> Callable[..., Rig]:
    return lambda routes=LADDER, **kw: Rig(databases(), routes, **kw)


def test_cases_are_listed_newest_first_with_their_alerts_and_filters(rig: Callable[..., Rig]) -> None:
    r = rig()
    first, second, third = alert(1, grid="g1"), alert(2, person="p-2", grid="g2"), alert(3, person="p-3", grid="g1")
    for n, a in enumerate((first, second, third)):
        r.clock.at(n * 10)
        r.raise_alert(a.model_copy(update={"created_at": T0 + dt.timedelta(seconds=n * 10)}))
    r.desk.acknowledge(third.alert_id, "wang", channel="api")

    rows = r.desk.list_cases()
    assert [row.alert.alert_id for row in rows] == [third.alert_id, second.alert_id, first.alert_id]
    assert rows[0].case.state is CaseState.ACKNOWLEDGED
    assert rows[0].alert.person_id == "p-3"
    assert rows[0].confirmations == 0

    assert [row.alert.alert_id for row in r.desk.list_cases(grids=["g1"])] == [third.alert_id, first.alert_id]
    assert r.desk.list_cases(grids=[]) == []
    assert [row.alert.alert_id for row in r.desk.list_cases(states=["notified"])] == [
        second.alert_id,
        first.alert_id,
    ]
    assert r.desk.list_cases(registries=["other"]) == []
    assert len(r.desk.list_cases(rules=["seen"], limit=2)) == 2
    assert [row.alert.alert_id for row in r.desk.list_cases(since=T0 + dt.timedelta(seconds=5))] == [
        third.alert_id,
        second.alert_id,
    ]
    # Staff see the cases they were notified of.
    assert [row.alert.alert_id for row in r.desk.list_cases(recipient="li")] == [second.alert_id]
    assert r.desk.list_cases(recipient="chen") == []
    assert [row.alert.alert_id for row in r.desk.list_cases(alert_id=first.alert_id)] == [first.alert_id]


def test_a_caller_that_checked_the_scope_may_handle_a_case_as_a_non_staff_operator(rig: Callable[..., Rig]) -> None:
    r = rig()
    a = alert()
    r.raise_alert(a)
    with pytest.raises(CaseNotFoundError):
        r.desk.comment(a.alert_id, "console-op", "looking", channel="console")
    r.desk.comment(a.alert_id, "console-op", "looking", channel="console", scope_checked=True)
    view = r.desk.acknowledge(a.alert_id, "console-op", channel="console", scope_checked=True)
    assert view.acked_by == "console-op"
    assert [e.actor for e in r.desk.timeline(a.alert_id)][-2:] == ["console-op", "console-op"]
