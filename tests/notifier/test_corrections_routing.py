"""Alerts of a corrections registry reach only staff with the `corrections` role, whatever the routes say."""

from __future__ import annotations

import datetime as dt

import pytest

from gridwatch.core.config.root import GridwatchConfig
from gridwatch.core.events import Alert, Severity, SourceKind, event_id_for
from gridwatch.core.interfaces import CaseNotFoundError
from notifier.desk import Desk
from notifier.outbox import Outbox
from notifier.routing import Router
from tests.notifier.test_desk import DUTY, PARENTS, T0, Clock, FixedRoster, Links
from tests.support.db import Databases

STAFF = [
    {"id": "wang", "name": "Wang", "roles": ["grid_worker"], "grids": ["g1"], "channels": ["push"]},
    {"id": "zhao", "name": "Zhao", "roles": ["officer"], "grids": ["community"], "channels": ["push"]},
    {"id": "sun", "name": "Sun", "roles": ["corrections"], "grids": ["community"], "channels": ["push"]},
    {"id": "he", "name": "He", "roles": ["corrections", "officer"], "grids": ["street"], "channels": ["push"]},
]
# A route written for every registry: it would notify the grid's duty, its staff and the chief.
ROUTES = [
    {
        "notify": ["on_duty", "grid_staff", "role:corrections"],
        "escalate": [{"after_s": 300, "notify": ["on_duty_parent", "staff:he"]}],
    }
]


def config() -> GridwatchConfig:
    registry = {"purpose": "supervision", "legal_basis": "law", "retention_days": 30}
    return GridwatchConfig.model_validate(
        {
            "grids": [
                {"id": "street", "name": "Street office"},
                {"id": "community", "name": "Community", "parent": "street"},
                {"id": "g1", "name": "Grid 1", "parent": "community"},
                {"id": "g2", "name": "Grid 2", "parent": "community"},
            ],
            "staff": STAFF,
            "channels": [{"id": "push", "type": "kafka"}],
            "registries": [{"name": "corr", "kind": "corrections", **registry}, {"name": "welfare", **registry}],
            "rules": [{"id": "seen", "kind": "seen", "registries": ["corr", "welfare"]}],
            "routes": ROUTES,
            "notifier": {"acks": {"signing_secret": "0123456789abcdef0123"}},
        }
    )


def alert(registry: str) -> Alert:
    return Alert(
        alert_id=event_id_for("alert", registry, "p-1"),
        rule="seen",
        severity=Severity.WARNING,
        person_id="p-1",
        registry=registry,
        source="gate-1",
        source_kind=SourceKind.GATE,
        grid="g1",
        created_at=T0,
        sightings=["s1"],
        similarity=0.6,
        explanation="seen",
    )


@pytest.fixture
def desk(databases: Databases) -> tuple[Desk, Outbox, Clock]:
    database = databases()
    outbox = Outbox(database)
    outbox.open()
    clock = Clock()
    router = Router(config(), FixedRoster(dict(DUTY) | {"community": ["zhao"]}, PARENTS))
    return Desk(database, router, links=Links(), clock=clock), outbox, clock


def raise_alert(desk: Desk, outbox: Outbox, a: Alert) -> tuple[list[str], list[str]]:
    """(the recipients the alert carries, the staff notified at once)."""
    a = a.model_copy(update={"recipients": desk.recipients_for(a)})
    open_in, steps = desk.opener(a)
    assert outbox.add(a, also=open_in)
    return list(a.recipients), [n.staff_id for n in steps.notifications]


def run_to(desk: Desk, clock: Clock, seconds: float) -> list[str]:
    notified: list[str] = []
    while (due := desk.next_due()) is not None and due <= T0 + dt.timedelta(seconds=seconds):
        clock.now = max(clock.now, due)
        notified += [n.staff_id for n in desk.due().notifications]
    return notified


def test_a_corrections_alert_is_narrowed_to_the_corrections_role(desk: tuple[Desk, Outbox, Clock]) -> None:
    d, outbox, clock = desk
    carried, notified = raise_alert(d, outbox, alert("corr"))
    assert carried == ["sun", "he"]  # wang (on duty, grid staff) is dropped; role:corrections stays
    assert notified == ["sun", "he"]
    assert run_to(d, clock, 300) == ["he"]  # zhao (the parent grid's duty) is dropped from the escalation


def test_the_same_route_notifies_everybody_for_another_registry(desk: tuple[Desk, Outbox, Clock]) -> None:
    d, outbox, _ = desk
    carried, notified = raise_alert(d, outbox, alert("welfare"))
    assert carried == ["wang", "sun", "he"]
    assert notified == carried


def test_staff_without_the_role_cannot_handle_a_corrections_case(desk: tuple[Desk, Outbox, Clock]) -> None:
    d, outbox, _ = desk
    a = alert("corr")
    raise_alert(d, outbox, a)
    for outsider in ("wang", "zhao"):  # responsible for the grid, but not in the corrections role
        with pytest.raises(CaseNotFoundError):
            d.acknowledge(a.alert_id, outsider, channel="api")
    assert d.acknowledge(a.alert_id, "sun", channel="api").acked_by == "sun"


def test_resolve_narrows_only_corrections_registries() -> None:
    router = Router(config(), FixedRoster(dict(DUTY), PARENTS))
    targets = ["on_duty", "grid_staff", "role:corrections"]
    assert router.resolve(targets, "g1", None, T0, registry="corr").staff == ["sun", "he"]
    assert router.resolve(targets, "g1", None, T0, registry="welfare").staff == ["wang", "sun", "he"]
    assert router.resolve(targets, "g1", None, T0).staff == ["wang", "sun", "he"]
