"""The rows of cases, their events and confirmations (tables ``cases``, ``case_events``,
``case_confirmations``, ``notifications``): plain reads and writes inside a caller's transaction.

The case desk (``notifier.desk``) decides; this module only maps rows. Every function takes the
caller's connection, so a case step (state, timer, its notifications, its event) commits as one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, exists, func, select

from gridwatch.core.db.schema import alerts, case_confirmations, case_events, cases, notifications
from gridwatch.core.db.sql import insert
from gridwatch.core.events import Alert, CaseEvent, CaseState
from notifier.routing import Plan

# Not acknowledged and not resolved: the ladder may still climb, a new alert of the subject links to it.
UNHANDLED = (CaseState.PENDING_CONFIRMATION, CaseState.OPEN, CaseState.NOTIFIED, CaseState.ESCALATED)


@dataclass(frozen=True, slots=True)
class Case:
    alert_id: str
    subject: str
    rule: str
    registry: str | None
    severity: str
    grid: str | None
    state: CaseState
    level: int
    ladder_grid: str | None
    repeats: int
    linked_to: str | None
    plan: Plan
    recipients: tuple[str, ...]
    created_at: dt.datetime
    updated_at: dt.datetime
    first_notified_at: dt.datetime | None = None
    last_notified_at: dt.datetime | None = None
    due_at: dt.datetime | None = None
    acked_by: str | None = None
    acked_at: dt.datetime | None = None
    resolved_by: str | None = None
    resolved_at: dt.datetime | None = None
    outcome: str | None = None

    def evolve(self, **changes: Any) -> Case:
        return replace(self, **changes)

    def row(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "subject": self.subject,
            "rule": self.rule,
            "registry": self.registry,
            "severity": self.severity,
            "grid": self.grid,
            "state": str(self.state),
            "level": self.level,
            "ladder_grid": self.ladder_grid,
            "repeats": self.repeats,
            "linked_to": self.linked_to,
            "plan_json": self.plan.to_json(),
            "recipients": list(self.recipients),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "first_notified_at": self.first_notified_at,
            "last_notified_at": self.last_notified_at,
            "due_at": self.due_at,
            "acked_by": self.acked_by,
            "acked_at": self.acked_at,
            "resolved_by": self.resolved_by,
            "resolved_at": self.resolved_at,
            "outcome": self.outcome,
        }

    @classmethod
    def from_row(cls, row: Any) -> Case:
        m = row._mapping
        return cls(
            alert_id=m["alert_id"],
            subject=m["subject"],
            rule=m["rule"],
            registry=m["registry"],
            severity=m["severity"],
            grid=m["grid"],
            state=CaseState(m["state"]),
            level=int(m["level"]),
            ladder_grid=m["ladder_grid"],
            repeats=int(m["repeats"]),
            linked_to=m["linked_to"],
            plan=Plan.from_json(m["plan_json"]),
            recipients=tuple(m["recipients"]),
            created_at=m["created_at"],
            updated_at=m["updated_at"],
            first_notified_at=m["first_notified_at"],
            last_notified_at=m["last_notified_at"],
            due_at=m["due_at"],
            acked_by=m["acked_by"],
            acked_at=m["acked_at"],
            resolved_by=m["resolved_by"],
            resolved_at=m["resolved_at"],
            outcome=m["outcome"],
        )


def insert_case(conn: Connection, case: Case, partition: int) -> None:
    conn.execute(cases.insert().values(**case.row(), partition=partition))


def save_case(conn: Connection, case: Case) -> None:
    row = case.row()
    del row["alert_id"]
    conn.execute(cases.update().where(cases.c.alert_id == case.alert_id).values(**row))


def load_case(conn: Connection, alert_id: str, *, for_update: bool = False) -> Case | None:
    query = select(cases).where(cases.c.alert_id == alert_id)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else Case.from_row(row)


def load_alert(conn: Connection, alert_id: str) -> Alert | None:
    text = conn.execute(select(alerts.c.alert_json).where(alerts.c.alert_id == alert_id)).scalar()
    return None if text is None else Alert.model_validate_json(text)


def open_case_of(conn: Connection, subject: str, rule: str) -> str | None:
    """The newest unhandled case of a subject (and rule, when given), if any."""
    query = (
        select(cases.c.alert_id)
        .where(cases.c.subject == subject, cases.c.state.in_([str(s) for s in UNHANDLED]))
        .order_by(cases.c.created_at.desc())
        .limit(1)
    )
    if rule:
        query = query.where(cases.c.rule == rule)
    value = conn.execute(query).scalar()
    return None if value is None else str(value)


def due_case_ids(conn: Connection, now: dt.datetime, limit: int) -> list[str]:
    query = (
        select(cases.c.alert_id)
        .where(cases.c.due_at.is_not(None), cases.c.due_at <= now)
        .order_by(cases.c.due_at, cases.c.alert_id)
        .limit(limit)
    )
    return [str(v) for v in conn.execute(query).scalars()]


def next_due(conn: Connection) -> dt.datetime | None:
    value: dt.datetime | None = conn.execute(select(func.min(cases.c.due_at))).scalar()  # min keeps the type
    return value


def add_event(conn: Connection, event: CaseEvent, now: float) -> None:
    conn.execute(
        insert(conn, case_events)
        .values(event_id=event.event_id, alert_id=event.alert_id, event_json=event.to_json(), next_attempt_at=now)
        .on_conflict_do_nothing(index_elements=[case_events.c.event_id])
    )


def events_of(conn: Connection, alert_id: str) -> list[CaseEvent]:
    query = select(case_events.c.event_json).where(case_events.c.alert_id == alert_id).order_by(case_events.c.seq)
    return [CaseEvent.model_validate_json(text) for text in conn.execute(query).scalars()]


def add_confirmation(conn: Connection, alert_id: str, actor: str, at: dt.datetime) -> bool:
    """Record one operator's confirmation; False if that operator had confirmed already."""
    inserted = conn.execute(
        insert(conn, case_confirmations)
        .values(alert_id=alert_id, actor=actor, at=at)
        .on_conflict_do_nothing(index_elements=[case_confirmations.c.alert_id, case_confirmations.c.actor])
        .returning(case_confirmations.c.actor)
    ).first()
    return inserted is not None


def count_confirmations(conn: Connection, alert_id: str) -> int:
    query = select(func.count()).select_from(case_confirmations).where(case_confirmations.c.alert_id == alert_id)
    return int(conn.execute(query).scalar_one())


@dataclass(frozen=True, slots=True)
class CaseRow:
    """A case with its alert and how many operators confirmed it (a line of the console's queue)."""

    case: Case
    alert: Alert
    confirmations: int


def list_cases(
    conn: Connection,
    *,
    states: Collection[str] | None = None,
    grids: Collection[str] | None = None,
    registries: Collection[str] | None = None,
    rules: Collection[str] | None = None,
    since: dt.datetime | None = None,
    limit: int = 100,
    recipient: str | None = None,
    alert_id: str | None = None,
) -> list[CaseRow]:
    """Cases joined with their alerts, newest first. Every filter given narrows (``None``: no filter; an
    empty collection: nothing matches). ``recipient``: only cases that staff member was notified of."""
    confirmed = (
        select(func.count())
        .select_from(case_confirmations)
        .where(case_confirmations.c.alert_id == cases.c.alert_id)
        .scalar_subquery()
    )
    query = select(cases, alerts.c.alert_json, confirmed.label("confirmed")).join(
        alerts, alerts.c.alert_id == cases.c.alert_id
    )
    for column, values in ((cases.c.state, states), (cases.c.grid, grids), (cases.c.registry, registries)):
        if values is not None:
            query = query.where(column.in_(list(values)))
    if rules is not None:
        query = query.where(cases.c.rule.in_(list(rules)))
    if since is not None:
        query = query.where(cases.c.created_at >= since)
    if alert_id is not None:
        query = query.where(cases.c.alert_id == alert_id)
    if recipient is not None:
        query = query.where(
            exists().where(notifications.c.alert_id == cases.c.alert_id, notifications.c.staff_id == recipient)
        )
    query = query.order_by(cases.c.created_at.desc(), cases.c.alert_id.desc()).limit(limit)
    return [
        CaseRow(
            Case.from_row(row),
            Alert.model_validate_json(row._mapping["alert_json"]),
            int(row._mapping["confirmed"]),
        )
        for row in conn.execute(query)
    ]
