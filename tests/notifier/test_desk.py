"""The case desk on a virtual clock, on SQLite and PostgreSQL: routing, notifications, ladder, handling."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from gridwatch.core.config.root import GridwatchConfig
from gridwatch.core.db import Database
from gridwatch.core.events import Alert, CaseState, Outcome, Severity, SourceKind, event_id_for
from gridwatch.core.interfaces import CaseConflictError, CaseNotFoundError
from notifier.desk import Desk, Steps
from notifier.outbox import Outbox
from notifier.routing import Router
from tests.support.db import Databases

T0 = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def at(self, seconds: float) -> None:
        self.now = T0 + dt.timedelta(seconds=seconds)


class FixedRoster:
    """Duty per grid, climbing over empty grids (the real one is notifier.duty.DutyRoster)."""

    def __init__(self, duty: dict[str, list[str]], parents: dict[str, str | None]) -> None:
        self.duty = duty
        self.parents = parents

    def parent(self, grid: str) -> str | None:
        return self.parents.get(grid)

    def ancestors(self, grid: str) -> list[str]:
        out, at = [], self.parents.get(grid)
        while at is not None:
            out.append(at)
            at = self.parents.get(at)
        return out

    def on_duty_climbing(self, grid: str, at: dt.datetime) -> tuple[str | None, list[str]]:
        for candidate in [grid, *self.ancestors(grid)]:
            if self.duty.get(candidate):
                return candidate, list(self.duty[candidate])
        return None, []


class Links:
    def issue(self, alert_id: str, staff_id: str, now: float) -> str:
        return f"http://gw.test/a/{alert_id[:6]}-{staff_id}"


def config(routes: list[dict[str, Any]], *, confirmations: int = 1) -> GridwatchConfig:
    return GridwatchConfig.model_validate(
        {
            "cameras": [
                {
                    "id": "gate-1",
                    "kind": "rtsp",
                    "location_class": "lobby",
                    "signage_verified_at": "2026-01-15",
                    "url": "rtsp://127.0.0.1:8554/x",
                    "grid": "g1",
                }
            ],
            "grids": [
                {"id": "street", "name": "Street office"},
                {"id": "community", "name": "Community", "parent": "street"},
                {"id": "g1", "name": "Grid 1", "parent": "community"},
                {"id": "g2", "name": "Grid 2", "parent": "community"},
            ],
            "staff": [
                {"id": "wang", "name": "Wang", "roles": ["grid_worker"], "grids": ["g1"], "channels": ["push"]},
                {"id": "li", "name": "Li", "roles": ["grid_worker"], "grids": ["g2"], "channels": ["push"]},
                {
                    "id": "zhao",
                    "name": "Zhao",
                    "roles": ["officer"],
                    "grids": ["community"],
                    "channels": ["push", "hook"],
                },
                {"id": "chen", "name": "Chen", "roles": ["chief"], "grids": ["street"], "channels": ["push"]},
            ],
            "channels": [
                {"id": "push", "type": "kafka"},
                {"id": "hook", "type": "webhook", "url": "http://127.0.0.1:9/hook"},
            ],
            "registries": [
                {
                    "name": "welfare",
                    "purpose": "welfare checks",
                    "legal_basis": "consent",
                    "retention_days": 30,
                    "confirmations": confirmations,
                }
            ],
            "rules": [{"id": "seen", "kind": "seen", "registries": ["welfare"]}],
            "routes": routes,
            "notifier": {"acks": {"signing_secret": "0123456789abcdef0123"}},
        }
    )


LADDER = [
    {
        "match": {"registry": "welfare"},
        "notify": ["on_duty"],
        "escalate": [{"after_s": 300, "notify": ["on_duty_parent"]}, {"after_s": 900, "notify": ["on_duty_parent"]}],
    }
]
DUTY = {"g1": ["wang"], "g2": ["li"], "community": ["zhao"], "street": ["chen"]}
PARENTS: dict[str, str | None] = {"street": None, "community": "street", "g1": "community", "g2": "community"}


def alert(n: int = 1, *, person: str = "p-1", grid: str = "g1", severity: Severity = Severity.WARNING) -> Alert:
    return Alert(
        alert_id=event_id_for("alert", str(n), person),
        rule="seen",
        severity=severity,
        person_id=person,
        registry="welfare",
        source="gate-1",
        source_kind=SourceKind.GATE,
        grid=grid,
        created_at=T0,
        sightings=[f"s{n}"],
        similarity=0.6,
        explanation="seen",
    )


class Rig:
    def __init__(self, database: Database, routes: list[dict[str, Any]], **kwargs: Any) -> None:
        self.clock = Clock()
        self.config = config(routes, **kwargs)
        self.outbox = Outbox(database)
        self.outbox.open()
        self.desk = Desk(
            database,
            Router(self.config, FixedRoster(dict(DUTY), PARENTS)),
            confirmations={r.name: r.confirmations for r in self.config.registries},
            links=Links(),
            clock=self.clock,
        )

    def raise_alert(self, a: Alert) -> Steps:
        a = a.model_copy(update={"recipients": self.desk.recipients_for(a)})
        open_in, steps = self.desk.opener(a)
        assert self.outbox.add(a, also=open_in)
        return steps

    def run_to(self, seconds: float) -> Steps:
        made = Steps()
        while (due := self.desk.next_due()) is not None and due <= T0 + dt.timedelta(seconds=seconds):
            self.clock.now = max(self.clock.now, due)
            made.extend(self.desk.due())
        self.clock.at(seconds)
        return made


@pytest.fixture
def rig(databases: Databases) -> Callable[..., Rig]:
    return lambda routes=LADDER, **kw: Rig(databases(), routes, **kw)


def recipients(steps: Steps) -> list[tuple[str, str, int]]:
    return [(n.staff_id, n.channel, n.level) for n in steps.notifications]


def test_an_alert_notifies_the_grid_on_duty_and_climbs_until_acknowledged(rig: Callable[..., Rig]) -> None:
    r = rig()
    a = alert()
    opened = r.raise_alert(a)
    assert recipients(opened) == [("wang", "push", 0)]
    assert [e.type for e in opened.events] == ["gridwatch.alert.notified.v1"]
    assert opened.notifications[0].ack_url == f"http://gw.test/a/{a.alert_id[:6]}-wang"

    assert recipients(r.run_to(299)) == []
    step1 = r.run_to(300)
    assert recipients(step1) == [("zhao", "push", 1), ("zhao", "hook", 1)]
    assert [e.type for e in step1.events] == ["gridwatch.alert.escalated.v1"]
    case = r.desk.case(a.alert_id)
    assert case is not None
    assert case.state is CaseState.ESCALATED
    assert case.level == 1

    view = r.desk.acknowledge(a.alert_id, "zhao", channel="api")
    assert view.state is CaseState.ACKNOWLEDGED
    assert view.acked_by == "zhao"
    assert recipients(r.run_to(5000)) == []  # the ladder stopped
    assert r.desk.next_due() is None
    types = [e.type.split(".")[2] for e in r.desk.timeline(a.alert_id)]
    assert types == ["notified", "escalated", "acknowledged"]


def test_the_second_step_climbs_one_more_grid(rig: Callable[..., Rig]) -> None:
    r = rig()
    r.raise_alert(alert())
    made = r.run_to(900)
    assert recipients(made) == [("zhao", "push", 1), ("zhao", "hook", 1), ("chen", "push", 2)]


def test_an_overdue_ladder_after_downtime_fires_each_step_once(rig: Callable[..., Rig]) -> None:
    r = rig()
    r.raise_alert(alert())
    r.clock.at(10_000)  # the service was down for hours
    first = r.desk.due()
    second = r.desk.due()
    third = r.desk.due()
    assert [n.level for n in (*first.notifications, *second.notifications)] == [1, 1, 2]
    assert third.notifications == []
    assert r.desk.next_due() is None


def test_a_gap_in_the_duty_goes_to_the_parent_grid_at_once(rig: Callable[..., Rig]) -> None:
    r = rig()
    r.desk.router._roster.duty["g1"] = []  # type: ignore[attr-defined]  # nobody on duty in g1
    opened = r.raise_alert(alert())
    assert recipients(opened) == [("zhao", "push", 0), ("zhao", "hook", 0)]
    assert opened.gaps == ["g1"]


def test_acknowledging_twice_changes_nothing_and_a_resolved_case_refuses(rig: Callable[..., Rig]) -> None:
    r = rig()
    a = alert()
    r.raise_alert(a)
    assert r.desk.acknowledge(a.alert_id, "wang", channel="link").changed
    assert not r.desk.acknowledge(a.alert_id, "wang", channel="link").changed
    r.desk.resolve(a.alert_id, "wang", Outcome.PERSON_OK, channel="api", comment="visited, all well")
    with pytest.raises(CaseConflictError):
        r.desk.acknowledge(a.alert_id, "wang", channel="api")
    with pytest.raises(CaseConflictError):
        r.desk.resolve(a.alert_id, "wang", Outcome.OTHER, channel="api")
    assert [e.outcome for e in r.desk.timeline(a.alert_id)][-1] is Outcome.PERSON_OK


def test_staff_of_another_grid_cannot_see_the_case(rig: Callable[..., Rig]) -> None:
    r = rig()
    a = alert()
    r.raise_alert(a)
    with pytest.raises(CaseNotFoundError):
        r.desk.acknowledge(a.alert_id, "li", channel="api")  # grid g2
    with pytest.raises(CaseNotFoundError):
        r.desk.acknowledge(a.alert_id, "nobody", channel="api")
    with pytest.raises(CaseNotFoundError):
        r.desk.acknowledge("no-such-alert", "wang", channel="api")
    assert r.desk.acknowledge(a.alert_id, "chen", channel="api").changed  # the street office is above g1


def test_reminders_repeat_while_unacknowledged(rig: Callable[..., Rig]) -> None:
    r = rig([{"notify": ["on_duty"], "repeat_s": 60}])
    a = alert()
    r.raise_alert(a)
    made = r.run_to(185)
    assert [(n.staff_id, n.repeat) for n in made.notifications] == [("wang", 1), ("wang", 2), ("wang", 3)]
    r.desk.acknowledge(a.alert_id, "wang", channel="api")
    assert r.run_to(1000).notifications == []


def test_group_wait_delays_the_first_notification_and_a_handled_case_rings_nobody(rig: Callable[..., Rig]) -> None:
    r = rig([{"notify": ["on_duty"], "group_wait_s": 30}])
    a, b = alert(1), alert(2, person="p-2")
    assert r.raise_alert(a).notifications == []
    r.raise_alert(b)
    r.desk.resolve(b.alert_id, "wang", Outcome.FALSE_MATCH, channel="api")
    made = r.run_to(30)
    assert [(n.alert_id, n.staff_id) for n in made.notifications] == [(a.alert_id, "wang")]


def test_routes_match_in_order_and_continue_joins_plans(rig: Callable[..., Rig]) -> None:
    routes = [
        {"match": {"severity": "critical"}, "notify": ["role:chief"], "continue": True},
        {"match": {"grid": "community"}, "notify": ["grid_staff"]},
        {"notify": ["staff:zhao"]},
    ]
    r = rig(routes)
    critical = r.raise_alert(alert(1, severity=Severity.CRITICAL))
    assert recipients(critical) == [("chen", "push", 0), ("wang", "push", 0)]
    warning_g2 = r.raise_alert(alert(2, person="p-2", grid="g2"))
    assert recipients(warning_g2) == [("li", "push", 0)]


def test_child_routes_inherit_and_an_unmatched_alert_is_counted(rig: Callable[..., Rig]) -> None:
    routes = [{"match": {"grid": "g2"}, "notify": ["grid_staff"], "routes": [{"match": {"severity": "critical"}}]}]
    r = rig(routes)
    assert r.desk.router.plan(alert(1, grid="g2", severity=Severity.CRITICAL)).routes == ("0.0",)
    assert r.desk.router.plan(alert(2, grid="g2")).routes == ("0",)
    steps = r.raise_alert(alert(3, grid="g1"))
    assert steps.unrouted == 1
    assert steps.notifications == []


def test_a_new_alert_of_a_person_with_an_open_case_is_notified_on_its_own_and_linked(rig: Callable[..., Rig]) -> None:
    r = rig()
    first, second = alert(1), alert(2)
    r.raise_alert(first)
    again = r.raise_alert(second)
    assert recipients(again) == [("wang", "push", 0)]
    assert again.notifications[0].linked_to == first.alert_id


def test_two_person_confirmation(rig: Callable[..., Rig]) -> None:
    r = rig(confirmations=2)
    a = alert()
    opened = r.raise_alert(a)
    assert opened.notifications == []
    case = r.desk.case(a.alert_id)
    assert case is not None
    assert case.state is CaseState.PENDING_CONFIRMATION
    with pytest.raises(CaseConflictError):
        r.desk.acknowledge(a.alert_id, "wang", channel="api")
    assert r.desk.confirm(a.alert_id, "zhao", channel="api").confirmations == 1
    with pytest.raises(CaseConflictError, match="second operator"):
        r.desk.confirm(a.alert_id, "zhao", channel="api")
    view = r.desk.confirm(a.alert_id, "chen", channel="api")
    assert view.state is CaseState.NOTIFIED
    assert view.confirmations == 2
    assert recipients(r.run_to(0)) == []  # notified in the confirming transaction, not again
    types = [e.type.split(".")[2] for e in r.desk.timeline(a.alert_id)]
    assert types == ["confirmed", "confirmed", "notified"]


def test_an_operator_escalates_by_hand_until_the_ladder_ends(rig: Callable[..., Rig]) -> None:
    r = rig()
    a = alert()
    r.raise_alert(a)
    view = r.desk.escalate(a.alert_id, "zhao", channel="console")
    assert view.level == 1
    assert r.desk.escalate(a.alert_id, "zhao", channel="console").level == 2
    with pytest.raises(CaseConflictError, match="no further"):
        r.desk.escalate(a.alert_id, "zhao", channel="console")
    assert r.desk.next_due() is None  # the ladder's timers ran out with it
