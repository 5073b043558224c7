"""The case desk: every alert opens a case, and the case runs its lifecycle to the responsible staff.

    pending_confirmation ─(2 operators)─► open ─(first notification)─► notified ─► escalated(n) ...
                                           └──────── acknowledged ◄──────────┘        │
                                                         └──────────► resolved ◄───────┘

- **Opening** happens in the alert outbox's own transaction (``opener``): an alert never exists without
  its case. The route's plan (``notifier.routing``) is frozen into the case.
- **Notifying** writes one ``Notification`` per recipient and channel into the notification outbox, in
  the same transaction as the case's new state and its ``CaseEvent``: a crash never loses a step nor
  makes one twice; delivery is the dispatcher's (at least once, deduplicable by notification id).
- **Timers** (the first notification after ``group_wait_s``, reminders every ``repeat_s``, escalation
  steps ``after_s`` after the first notification) are one ``due_at`` per case in the database, run by
  ``due()``; each due step is its own transaction, so a restart in the middle neither loses nor repeats
  a step, and a step overdue after downtime fires once, at once.
- **Handling** (``acknowledge``, ``confirm``, ``resolve``, ``comment``): each a transaction that checks
  the state (``CaseConflictError``) and who may do it (``CaseNotFoundError``: a case the caller may not
  see does not exist for them). Acknowledgement stops reminders and the ladder. ``into`` receives what
  the step made (its event, the notifications a confirmation sent).

Synchronous, with an injected clock: the service runs it in worker threads, ``gridwatch rules simulate``
on a virtual clock. Every transition is audited after it committed.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Connection

from gridwatch.core.audit import AuditLog
from gridwatch.core.db import Database
from gridwatch.core.events import (
    CASE_EVENT_TYPES,
    Alert,
    CaseEvent,
    CaseState,
    Notification,
    Outcome,
    notification_id_for,
)
from gridwatch.core.interfaces import CaseConflictError, CaseNotFoundError, CaseView
from gridwatch.core.metrics import ALERTS_UNROUTED, CASE_TRANSITIONS, DUTY_GAPS, LOOP_ERRORS
from notifier import case_store as store
from notifier.case_store import Case, CaseRow
from notifier.notification_outbox import NotificationOutbox
from notifier.routing import NO_ROUTE, Router

log = logging.getLogger(__name__)

SERVICE_ACTOR = "gridwatch"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class LinkIssuer(Protocol):
    """Makes a staff member's one-click acknowledgement link for an alert (``notifier.ack_links``)."""

    def issue(self, alert_id: str, staff_id: str, now: float) -> str: ...


@dataclass
class Steps:
    """What one or more case steps produced (after they committed): for audit, wake-ups and simulation."""

    events: list[CaseEvent] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    unrouted: int = 0

    def clear(self) -> None:
        self.events.clear()
        self.notifications.clear()
        self.gaps.clear()
        self.unrouted = 0

    def extend(self, other: Steps) -> None:
        self.events += other.events
        self.notifications += other.notifications
        self.gaps += other.gaps
        self.unrouted += other.unrouted


class Desk:
    def __init__(
        self,
        database: Database,
        router: Router,
        *,
        confirmations: Mapping[str, int] | None = None,
        links: LinkIssuer | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        audit: AuditLog | None = None,
        partition: int = 0,
    ) -> None:
        """``confirmations``: registry name → confirmations its alerts need (absent: 1)."""
        self._db = database
        self._router = router
        self._confirmations = dict(confirmations or {})
        self._links = links
        self._clock = clock
        self._audit = audit
        self._partition = partition
        self._lock = threading.Lock()

    @property
    def router(self) -> Router:
        return self._router

    def reconfigure(self, router: Router, confirmations: Mapping[str, int]) -> None:
        """New routes, rosters and staff for cases opened from now on (open cases keep their plan)."""
        with self._lock:
            self._router = router
            self._confirmations = dict(confirmations)

    def is_staff(self, staff_id: str) -> bool:
        return self._router.staff(staff_id) is not None

    # -- opening ----------------------------------------------------------------------------------

    def recipients_for(self, alert: Alert) -> list[str]:
        """Who the alert's first notification goes to, were it made now (the alert carries this list)."""
        router = self._router
        if not router.active:
            return []
        plan = router.plan(alert)
        return router.resolve(plan.notify, alert.grid, None, self._clock(), registry=alert.registry).staff

    def opener(self, alert: Alert) -> tuple[Callable[[Connection], None], Steps]:
        """``(open_in, steps)``: ``open_in(connection)`` opens the alert's case inside the outbox's
        transaction; ``steps`` holds what it made once that transaction committed (pass it to ``record``)."""
        steps = Steps()

        def open_in(conn: Connection) -> None:
            steps.clear()  # a retried transaction starts over
            self._open(conn, alert, steps)

        return open_in, steps

    def _open(self, conn: Connection, alert: Alert, steps: Steps) -> None:
        now = self._clock()
        router = self._router
        plan = router.plan(alert) if router.active else NO_ROUTE
        needs_confirmation = alert.registry is not None and self._confirmations.get(alert.registry, 1) >= 2
        case = Case(
            alert_id=alert.alert_id,
            subject=alert.key,
            rule=alert.rule,
            registry=alert.registry,
            severity=str(alert.severity),
            grid=alert.grid,
            state=CaseState.PENDING_CONFIRMATION if needs_confirmation else CaseState.OPEN,
            level=0,
            ladder_grid=alert.grid,
            repeats=0,
            linked_to=store.open_case_of(conn, alert.key, ""),
            plan=plan,
            recipients=(),
            created_at=now,
            updated_at=now,
        )
        store.insert_case(conn, case, self._partition)
        if router.active and plan is NO_ROUTE:
            steps.unrouted += 1
        if not needs_confirmation and plan is not NO_ROUTE:
            self._route(conn, case, alert, now, steps)

    def _route(self, conn: Connection, case: Case, alert: Alert, now: dt.datetime, steps: Steps) -> Case:
        """An open case: notify now, or after the plan's group wait."""
        if case.plan.group_wait_s > 0:
            case = case.evolve(due_at=now + dt.timedelta(seconds=case.plan.group_wait_s), updated_at=now)
            store.save_case(conn, case)
            return case
        return self._notify(conn, case, alert, now, steps, level=0, repeat=0)

    # -- notifying --------------------------------------------------------------------------------

    def _notify(
        self, conn: Connection, case: Case, alert: Alert, now: dt.datetime, steps: Steps, *, level: int, repeat: int
    ) -> Case:
        """Notify the targets of ``level`` (``repeat`` > 0: a reminder at the level reached)."""
        router = self._router
        targets = case.plan.targets_of_level(level)
        resolved = router.resolve(targets, case.grid, case.ladder_grid, now, climb=repeat == 0, registry=alert.registry)
        steps.gaps += resolved.gaps
        stamp = now.timestamp()
        for staff_id in resolved.staff:
            person = router.staff(staff_id)
            if person is None:
                continue
            for channel in person.channels:
                notification = Notification(
                    notification_id=notification_id_for(case.alert_id, staff_id, channel, level, repeat),
                    alert_id=case.alert_id,
                    staff_id=staff_id,
                    staff_name=person.name,
                    channel=channel,
                    level=level,
                    repeat=repeat,
                    created_at=now,
                    rule=alert.rule,
                    kind=alert.kind,
                    severity=alert.severity,
                    person_id=alert.person_id,
                    registry=alert.registry,
                    source=alert.source,
                    grid=alert.grid,
                    explanation=alert.explanation,
                    alert_created_at=alert.created_at,
                    ack_url=None if self._links is None else self._links.issue(case.alert_id, staff_id, stamp),
                    linked_to=case.linked_to,
                )
                if NotificationOutbox.add_in(conn, notification, stamp):
                    steps.notifications.append(notification)
        state = case.state
        if repeat == 0:
            state = CaseState.NOTIFIED if level == 0 else CaseState.ESCALATED
        case = case.evolve(
            state=state,
            level=level,
            repeats=repeat,
            ladder_grid=resolved.ladder_grid,
            recipients=tuple(dict.fromkeys((*case.recipients, *resolved.staff))),
            first_notified_at=case.first_notified_at or now,
            last_notified_at=now,
            updated_at=now,
        )
        case = case.evolve(due_at=self._next_due(case))
        store.save_case(conn, case)
        kind = "escalated" if level > 0 and repeat == 0 else "notified"
        self._event(conn, case, kind, SERVICE_ACTOR, now, steps, recipients=resolved.staff)
        return case

    @staticmethod
    def _next_due(case: Case) -> dt.datetime | None:
        """The next timer of a case waiting for acknowledgement: an escalation step or a reminder."""
        plan = case.plan
        if not plan.require_ack or case.state not in (CaseState.NOTIFIED, CaseState.ESCALATED, CaseState.OPEN):
            return None
        candidates: list[dt.datetime] = []
        if case.first_notified_at is not None and case.level < len(plan.escalate):
            candidates.append(case.first_notified_at + dt.timedelta(seconds=plan.escalate[case.level].after_s))
        if case.last_notified_at is not None and plan.repeat_s is not None:
            candidates.append(case.last_notified_at + dt.timedelta(seconds=plan.repeat_s))
        return min(candidates) if candidates else None

    def next_due(self) -> dt.datetime | None:
        return self._db.transaction(store.next_due, what="case timers", read_only=True)

    def due(self, limit: int = 100) -> Steps:
        """Run every case step due by now (each in its own transaction); what they made."""
        now = self._clock()
        ids = self._db.transaction(lambda c: store.due_case_ids(c, now, limit), what="case timers", read_only=True)
        made = Steps()
        for alert_id in ids:
            steps = Steps()

            def step(conn: Connection, alert_id: str = alert_id, steps: Steps = steps) -> None:
                steps.clear()
                self._run_due(conn, alert_id, now, steps)

            self._db.transaction(step, what="case step")
            self.record(steps)
            made.extend(steps)
        return made

    def _run_due(self, conn: Connection, alert_id: str, now: dt.datetime, steps: Steps) -> None:
        case = store.load_case(conn, alert_id, for_update=True)
        if case is None or case.due_at is None or case.due_at > now:
            return  # handled meanwhile, or another owner ran it
        alert = store.load_alert(conn, alert_id)
        if alert is None:
            log.error("case %s has no alert in the outbox; its timer is dropped", alert_id)
            store.save_case(conn, case.evolve(due_at=None, updated_at=now))
            return
        plan = case.plan
        if case.state is CaseState.OPEN and case.first_notified_at is None:
            self._notify(conn, case, alert, now, steps, level=0, repeat=0)
            return
        if (
            case.state not in (CaseState.OPEN, CaseState.NOTIFIED, CaseState.ESCALATED)
            or case.first_notified_at is None
        ):
            store.save_case(conn, case.evolve(due_at=None, updated_at=now))
            return
        if case.level < len(plan.escalate):
            step_at = case.first_notified_at + dt.timedelta(seconds=plan.escalate[case.level].after_s)
            if step_at <= now:
                self._notify(conn, case, alert, now, steps, level=case.level + 1, repeat=0)
                return
        reminder_at = (
            None
            if plan.repeat_s is None or case.last_notified_at is None
            else case.last_notified_at + dt.timedelta(seconds=plan.repeat_s)
        )
        if reminder_at is not None and reminder_at <= now:
            self._notify(conn, case, alert, now, steps, level=case.level, repeat=case.repeats + 1)
            return
        store.save_case(conn, case.evolve(due_at=self._next_due(case), updated_at=now))

    # -- handling ---------------------------------------------------------------------------------

    def acknowledge(
        self,
        alert_id: str,
        by: str,
        *,
        channel: str,
        comment: str | None = None,
        into: Steps | None = None,
        scope_checked: bool = False,
    ) -> CaseView:
        def ack(conn: Connection, now: dt.datetime, steps: Steps) -> CaseView:
            case = self._case_for(conn, alert_id, by, scope_checked=scope_checked)
            if case.state is CaseState.ACKNOWLEDGED:
                return self._view(conn, case, changed=False)
            if case.state is CaseState.RESOLVED:
                raise CaseConflictError(f"alert {alert_id} is resolved already")
            if case.state is CaseState.PENDING_CONFIRMATION:
                raise CaseConflictError(f"alert {alert_id} awaits two-person confirmation")
            case = case.evolve(state=CaseState.ACKNOWLEDGED, acked_by=by, acked_at=now, due_at=None, updated_at=now)
            store.save_case(conn, case)
            self._event(conn, case, "acknowledged", by, now, steps, channel=channel, comment=comment)
            return self._view(conn, case)

        return self._handle("case acknowledgement", ack, into)

    def confirm(
        self, alert_id: str, by: str, *, channel: str, into: Steps | None = None, scope_checked: bool = False
    ) -> CaseView:
        def confirm(conn: Connection, now: dt.datetime, steps: Steps) -> CaseView:
            case = self._case_for(conn, alert_id, by, any_staff=True, scope_checked=scope_checked)
            if case.state is not CaseState.PENDING_CONFIRMATION:
                raise CaseConflictError(f"alert {alert_id} does not await confirmation (state {case.state})")
            if not store.add_confirmation(conn, alert_id, by, now):
                raise CaseConflictError(f"{by} confirmed alert {alert_id} already: a second operator must confirm")
            confirmed = store.count_confirmations(conn, alert_id)
            if confirmed >= 2:
                case = case.evolve(state=CaseState.OPEN, updated_at=now)
                store.save_case(conn, case)
            self._event(conn, case, "confirmed", by, now, steps, channel=channel)
            if case.state is CaseState.OPEN and case.plan is not NO_ROUTE:
                alert = store.load_alert(conn, alert_id)
                if alert is not None:
                    case = self._route(conn, case, alert, now, steps)
            return self._view(conn, case)

        return self._handle("case confirmation", confirm, into)

    def resolve(
        self,
        alert_id: str,
        by: str,
        outcome: Outcome,
        *,
        channel: str,
        comment: str | None = None,
        into: Steps | None = None,
        scope_checked: bool = False,
    ) -> CaseView:
        def resolve(conn: Connection, now: dt.datetime, steps: Steps) -> CaseView:
            case = self._case_for(conn, alert_id, by, scope_checked=scope_checked)
            if case.state is CaseState.RESOLVED:
                raise CaseConflictError(f"alert {alert_id} is resolved already")
            case = case.evolve(
                state=CaseState.RESOLVED,
                resolved_by=by,
                resolved_at=now,
                outcome=str(outcome),
                due_at=None,
                updated_at=now,
            )
            store.save_case(conn, case)
            self._event(conn, case, "resolved", by, now, steps, channel=channel, comment=comment, outcome=outcome)
            return self._view(conn, case)

        return self._handle("case resolution", resolve, into)

    def escalate(
        self, alert_id: str, by: str, *, channel: str, into: Steps | None = None, scope_checked: bool = False
    ) -> CaseView:
        """Run the next escalation step now (an operator who cannot wait); 409 when the ladder has none left."""

        def escalate(conn: Connection, now: dt.datetime, steps: Steps) -> CaseView:
            case = self._case_for(conn, alert_id, by, scope_checked=scope_checked)
            if case.state not in (CaseState.OPEN, CaseState.NOTIFIED, CaseState.ESCALATED):
                raise CaseConflictError(f"alert {alert_id} cannot be escalated (state {case.state})")
            if case.level >= len(case.plan.escalate):
                raise CaseConflictError(f"alert {alert_id} has no further escalation step")
            alert = store.load_alert(conn, alert_id)
            if alert is None:
                raise CaseNotFoundError(f"no alert {alert_id}")
            if case.first_notified_at is None:
                case = self._notify(conn, case, alert, now, steps, level=0, repeat=0)
            case = self._notify(conn, case, alert, now, steps, level=case.level + 1, repeat=0)
            self._event(conn, case, "commented", by, now, steps, channel=channel, comment="escalated by hand")
            return self._view(conn, case)

        return self._handle("case escalation", escalate, into)

    def comment(
        self,
        alert_id: str,
        by: str,
        text: str,
        *,
        channel: str,
        into: Steps | None = None,
        scope_checked: bool = False,
    ) -> CaseView:
        def comment(conn: Connection, now: dt.datetime, steps: Steps) -> CaseView:
            case = self._case_for(conn, alert_id, by, scope_checked=scope_checked)
            self._event(conn, case, "commented", by, now, steps, channel=channel, comment=text)
            return self._view(conn, case, changed=False)

        return self._handle("case comment", comment, into)

    def _handle(
        self, what: str, step: Callable[[Connection, dt.datetime, Steps], CaseView], into: Steps | None
    ) -> CaseView:
        """One handling step in one transaction; its audit entries and notifications are recorded after the
        commit (and added to ``into`` for a caller that needs them too)."""
        steps = Steps()

        def run(conn: Connection) -> CaseView:
            steps.clear()  # a retried transaction starts over
            return step(conn, self._clock(), steps)

        view = self._db.transaction(run, what=what)
        self.record(steps)
        if into is not None:
            into.extend(steps)
        return view

    def case(self, alert_id: str) -> Case | None:
        return self._db.transaction(lambda c: store.load_case(c, alert_id), what="case read", read_only=True)

    def timeline(self, alert_id: str) -> list[CaseEvent]:
        return self._db.transaction(lambda c: store.events_of(c, alert_id), what="case read", read_only=True)

    def list_cases(
        self,
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
        """Cases with their alerts, newest first (see ``case_store.list_cases``): the console's queue."""
        return self._db.transaction(
            lambda c: store.list_cases(
                c,
                states=states,
                grids=grids,
                registries=registries,
                rules=rules,
                since=since,
                limit=limit,
                recipient=recipient,
                alert_id=alert_id,
            ),
            what="case list",
            read_only=True,
        )

    def open_case(self, subject: str, rule: str) -> str | None:
        """The newest unhandled case of a subject under a rule (the simulation's acknowledgements name these)."""
        return self._db.transaction(lambda c: store.open_case_of(c, subject, rule), what="case read", read_only=True)

    def _case_for(
        self, conn: Connection, alert_id: str, by: str, *, any_staff: bool = False, scope_checked: bool = False
    ) -> Case:
        """The case, if ``by`` may handle it: a recipient so far, or staff responsible for its grid.

        ``scope_checked``: the caller has checked already that ``by`` may handle this case (the console:
        an operator of the case's grid, who need not be a staff member of the config).
        """
        case = store.load_case(conn, alert_id, for_update=True)
        if case is None:
            raise CaseNotFoundError(f"no alert {alert_id}")
        if scope_checked:
            return case
        router = self._router
        allowed = router.staff(by) is not None and (
            any_staff or by in case.recipients or router.may_handle(by, case.grid, registry=case.registry)
        )
        if not allowed:
            raise CaseNotFoundError(f"no alert {alert_id}")  # the same answer: nothing leaks
        return case

    @staticmethod
    def _view(conn: Connection, case: Case, *, changed: bool = True) -> CaseView:
        return CaseView(
            alert_id=case.alert_id,
            state=case.state,
            level=case.level,
            acked_by=case.acked_by,
            confirmations=store.count_confirmations(conn, case.alert_id),
            changed=changed,
        )

    def _event(
        self,
        conn: Connection,
        case: Case,
        kind: str,
        actor: str,
        now: dt.datetime,
        steps: Steps,
        *,
        channel: str | None = None,
        comment: str | None = None,
        outcome: Outcome | None = None,
        recipients: list[str] | None = None,
    ) -> None:
        event = CaseEvent(
            event_id=uuid.uuid4().hex,
            type=CASE_EVENT_TYPES[kind],
            alert_id=case.alert_id,
            key=case.subject,
            state=case.state,
            level=case.level,
            at=now,
            actor=actor,
            channel=channel,
            comment=comment,
            outcome=outcome,
            recipients=list(recipients or []),
        )
        store.add_event(conn, event, now.timestamp())
        steps.events.append(event)

    # -- after commit -----------------------------------------------------------------------------

    def record(self, steps: Steps) -> None:
        """Count and audit what committed steps made (never before they committed)."""
        for grid in steps.gaps:
            DUTY_GAPS.labels(grid=grid).inc()
        if steps.unrouted:
            ALERTS_UNROUTED.inc(steps.unrouted)
        for event in steps.events:
            short = event.type.removeprefix("gridwatch.alert.").removesuffix(".v1")
            CASE_TRANSITIONS.labels(type=short).inc()
            if self._audit is None:
                continue
            details: dict[str, object] = {"state": str(event.state), "level": event.level}
            if event.channel is not None:
                details["channel"] = event.channel
            if event.recipients:
                details["recipients"] = list(event.recipients)
            if event.comment is not None:
                details["comment"] = event.comment
            if event.outcome is not None:
                details["outcome"] = str(event.outcome)
            try:
                self._audit.append(f"case.{short}", actor=event.actor, target=event.alert_id, details=details)
            except Exception:
                # The case step stands (it committed); a failing audit disk is loud instead.
                LOOP_ERRORS.labels(loop="cases.audit").inc()
                log.exception("audit log append failed for case %s %s", short, event.alert_id)
