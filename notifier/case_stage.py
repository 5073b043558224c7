"""The case desk as a running component: its timer loop, and the ``CaseDesk`` port for acknowledgements.

The desk is synchronous (it runs on a virtual clock in simulations); here every call goes to a worker
thread, and whatever a step queued (notifications, case events) wakes the components that deliver it.
The timer loop sleeps until the next case timer is due, or until ``wake()`` (a new case, a reload), and
at most ``poll_s`` so that cases another process opened are not left waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable

from gridwatch.core.events import Outcome
from gridwatch.core.interfaces import CaseView
from gridwatch.core.metrics import LOOP_ERRORS
from notifier.desk import Desk, Steps

log = logging.getLogger(__name__)


class CaseStage:
    def __init__(self, desk: Desk, *, on_steps: Callable[[Steps], None] | None = None, poll_s: float = 5.0) -> None:
        """``on_steps``: told (on the event loop) of what committed steps made: wake the dispatcher, the publisher."""
        self._desk = desk
        self._on_steps = on_steps
        self._poll_s = poll_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def desk(self) -> Desk:
        return self._desk

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._timers(), name="notifier.case-timers")

    async def stop(self) -> None:
        """Idempotent. A step in a worker thread finishes its transaction; due steps wait for the next start."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        self._wake.set()

    def made(self, steps: Steps) -> None:
        """Pass on what committed steps made (the alert path's new cases use this too)."""
        if self._on_steps is not None and (steps.notifications or steps.events):
            self._on_steps(steps)
        self._wake.set()  # a new case may have a timer sooner than the one the loop sleeps for

    # -- the CaseDesk port ------------------------------------------------------------------------

    def is_staff(self, staff_id: str) -> bool:
        return self._desk.is_staff(staff_id)

    # ``scope_checked``: the caller (the console) has checked that ``by`` may handle the case (see Desk).

    async def acknowledge(
        self, alert_id: str, by: str, *, channel: str, comment: str | None = None, scope_checked: bool = False
    ) -> CaseView:
        return await self._step(
            lambda steps: self._desk.acknowledge(
                alert_id, by, channel=channel, comment=comment, into=steps, scope_checked=scope_checked
            )
        )

    async def confirm(self, alert_id: str, by: str, *, channel: str, scope_checked: bool = False) -> CaseView:
        return await self._step(
            lambda steps: self._desk.confirm(alert_id, by, channel=channel, into=steps, scope_checked=scope_checked)
        )

    async def resolve(
        self,
        alert_id: str,
        by: str,
        outcome: Outcome,
        *,
        channel: str,
        comment: str | None = None,
        scope_checked: bool = False,
    ) -> CaseView:
        return await self._step(
            lambda steps: self._desk.resolve(
                alert_id, by, outcome, channel=channel, comment=comment, into=steps, scope_checked=scope_checked
            )
        )

    async def escalate(self, alert_id: str, by: str, *, channel: str, scope_checked: bool = False) -> CaseView:
        return await self._step(
            lambda steps: self._desk.escalate(alert_id, by, channel=channel, into=steps, scope_checked=scope_checked)
        )

    async def comment(
        self, alert_id: str, by: str, text: str, *, channel: str, scope_checked: bool = False
    ) -> CaseView:
        return await self._step(
            lambda steps: self._desk.comment(
                alert_id, by, text, channel=channel, into=steps, scope_checked=scope_checked
            )
        )

    async def _step(self, fn: Callable[[Steps], CaseView]) -> CaseView:
        steps = Steps()
        view = await asyncio.to_thread(fn, steps)
        self.made(steps)
        return view

    # -- timers -----------------------------------------------------------------------------------

    async def _timers(self) -> None:
        while True:
            self._wake.clear()
            try:
                steps = await asyncio.to_thread(self._desk.due)
                if steps.notifications or steps.events:
                    self.made(steps)
                    continue  # more may be due
                next_due = await asyncio.to_thread(self._desk.next_due)
            except Exception:
                # A database outage outlasting the retry window: keep the loop, try again shortly.
                LOOP_ERRORS.labels(loop="cases.timers").inc()
                log.exception("case timers failed; trying again")
                next_due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
            wait_s = self._poll_s
            if next_due is not None:
                wait_s = min(wait_s, max((next_due - dt.datetime.now(dt.UTC)).total_seconds(), 0.0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait_s)
