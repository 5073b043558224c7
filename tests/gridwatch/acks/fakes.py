"""An in-memory ``CaseDesk`` for the acknowledgement tests (the real one, on the database, is the lead's)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from gridwatch.core.events import CaseState, Outcome
from gridwatch.core.interfaces import CaseConflictError, CaseNotFoundError, CaseView


@dataclass
class FakeCase:
    state: CaseState = CaseState.NOTIFIED
    level: int = 0
    acked_by: str | None = None
    confirmed_by: list[str] = field(default_factory=list)
    outcome: Outcome | None = None
    comments: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    action: str
    alert_id: str
    by: str
    channel: str
    comment: str | None = None


class FakeDesk:
    """Cases by alert id; ``steps`` records every change made. ``fail_next`` makes that many calls raise
    ``RuntimeError`` (a database that is down) before touching anything; ``ack_delay_s`` holds an
    acknowledgement half-way (to let concurrent callers meet)."""

    def __init__(self, staff: set[str], alerts: dict[str, FakeCase] | None = None) -> None:
        self.staff = staff
        self.cases: dict[str, FakeCase] = alerts or {}
        self.steps: list[Step] = []
        self.calls = 0
        self.fail_next = 0
        self.ack_delay_s = 0.0

    def is_staff(self, staff_id: str) -> bool:
        return staff_id in self.staff

    def _case(self, alert_id: str) -> FakeCase:
        self.calls += 1
        if self.fail_next > 0:
            self.fail_next -= 1
            raise RuntimeError("database unavailable")
        case = self.cases.get(alert_id)
        if case is None:
            raise CaseNotFoundError(f"no alert {alert_id}")
        return case

    def _view(self, alert_id: str, case: FakeCase, *, changed: bool) -> CaseView:
        return CaseView(alert_id, case.state, case.level, case.acked_by, len(case.confirmed_by), changed)

    async def acknowledge(self, alert_id: str, by: str, *, channel: str, comment: str | None = None) -> CaseView:
        case = self._case(alert_id)
        if case.state is CaseState.RESOLVED:
            raise CaseConflictError("the case is resolved")
        if case.state is CaseState.ACKNOWLEDGED:
            return self._view(alert_id, case, changed=False)
        if self.ack_delay_s:
            await asyncio.sleep(self.ack_delay_s)
        case.state, case.acked_by = CaseState.ACKNOWLEDGED, by
        self.steps.append(Step("acknowledge", alert_id, by, channel, comment))
        return self._view(alert_id, case, changed=True)

    async def confirm(self, alert_id: str, by: str, *, channel: str) -> CaseView:
        case = self._case(alert_id)
        if case.state is not CaseState.PENDING_CONFIRMATION or by in case.confirmed_by:
            raise CaseConflictError("not waiting for this confirmation")
        case.confirmed_by.append(by)
        if len(case.confirmed_by) >= 2:
            case.state = CaseState.OPEN
        self.steps.append(Step("confirm", alert_id, by, channel))
        return self._view(alert_id, case, changed=True)

    async def resolve(
        self, alert_id: str, by: str, outcome: Outcome, *, channel: str, comment: str | None = None
    ) -> CaseView:
        case = self._case(alert_id)
        if case.state is CaseState.RESOLVED:
            if case.outcome is outcome:
                return self._view(alert_id, case, changed=False)
            raise CaseConflictError("resolved already, with another outcome")
        case.state, case.outcome = CaseState.RESOLVED, outcome
        self.steps.append(Step("resolve", alert_id, by, channel, comment))
        return self._view(alert_id, case, changed=True)
