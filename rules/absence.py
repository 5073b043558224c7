"""The `not_seen` warning model: a person has not passed their home sources for ``after_s``.

One timer per (rule, person), in the database. It starts at enrolment (or when the rule first applied
on this site, if that was later) and restarts at each sighting at a home source. When it comes due it
fires once; with ``repeat_s`` it is set again ``repeat_s`` after *now*, so after a restart or an outage
an overdue timer fires once, not once per missed period. A due time that already fired is never due
again, so a clock that jumps backwards cannot fire it twice.
"""

from __future__ import annotations

import datetime as dt

from gridwatch.core.config.rules import NotSeenRuleConfig
from gridwatch.core.events import Alert, Sighting, alert_id_for
from gridwatch.core.persons import PersonConditions
from rules.base import SightingRule, sources_text, utc_text
from rules.context import Firing, RuleContext, ScheduleView
from rules.state import AbsenceTimer

# When the rule is disarmed at a due time and its schedule cannot say when it arms again: look again then.
RECHECK_S = 60


class NotSeenRule(SightingRule):
    def __init__(self, config: NotSeenRuleConfig) -> None:
        super().__init__(config)
        self._cfg = config
        self._registries = frozenset(config.registries)
        self._after = dt.timedelta(seconds=config.after_s)

    def home_sources(self, entry: PersonConditions | None) -> tuple[str, ...]:
        if entry is not None and entry.home_sources:
            return tuple(entry.home_sources)
        return tuple(self._cfg.sources)

    def on_sighting(self, sighting: Sighting, now: dt.datetime, ctx: RuleContext) -> list[Alert]:
        if sighting.registry not in self._registries:
            return []
        home = self.home_sources(ctx.directory.conditions(sighting.person_id))
        if "*" in home or sighting.source in home:
            # Server time, not the device's: a terminal whose clock stands still in the past would
            # otherwise restart the absence long ago and make it due at once (a false welfare alert).
            seen_at = sighting.received_at
            ctx.state.restart_timer(self.id, sighting.person_id, seen_at, sighting.source, seen_at + self._after)
        return []

    def arm(self, now: dt.datetime, ctx: RuleContext) -> None:
        # A rule worker arms the persons of the partitions it owns (one process: everyone).
        entries = ctx.directory.persons(self._registries)
        persons = {entry.person_id: entry for entry in entries if ctx.state.owns(entry.person_id)}
        existing = ctx.state.timer_persons(self.id)
        missing = [entry for person_id, entry in persons.items() if person_id not in existing]
        if missing:
            since = ctx.state.rule_started_at(self.id, now)
            timers = []
            for entry in missing:
                started = max(entry.enrolled_at, since)
                timers.append((entry.person_id, started, started + self._after))
            ctx.state.arm_timers(self.id, timers)
        gone = sorted(existing - persons.keys())
        ctx.state.drop_timers(self.id, gone)

    def on_timer(self, timer: AbsenceTimer, now: dt.datetime, ctx: RuleContext) -> Firing | None:
        cfg = self._cfg
        assert timer.due_at is not None
        entry = ctx.directory.conditions(timer.person_id)
        if entry is None or entry.registry not in self._registries:
            ctx.state.drop_timers(self.id, [timer.person_id])  # erased, expired, or moved to another registry
            return None
        if entry.ignored_at(now):
            # A corrections entry outside its approvals is ignored: no alert. An approval recorded ahead
            # (an extension) counts the absence from its start; without one the timer waits for a sighting.
            following = entry.next_approval_start(now)
            ctx.state.move_timer(
                timer, due_at=None if following is None else following + self._after, fired=timer.fired
            )
            return None
        schedule = ctx.schedules.get(cfg.active) if cfg.active is not None else None
        if cfg.active is not None and (schedule is None or not schedule.contains(now)):
            ctx.state.move_timer(timer, due_at=_next_arming(schedule, now), fired=timer.fired)
            return None
        if cfg.pause_timers_when_inactive and schedule is not None:
            counted = active_seconds(schedule, timer.started_at, now)
            if counted < cfg.after_s:  # time outside the schedule does not count: not yet
                ctx.state.move_timer(timer, due_at=now + dt.timedelta(seconds=cfg.after_s - counted), fired=timer.fired)
                return None
        home = self.home_sources(entry)
        since = timer.last_seen_at or timer.started_at
        hours = (now - since).total_seconds() / 3600
        where = sources_text([s for s in home if s != "*"]) if "*" not in home else "any source"
        if timer.last_seen_at is not None:
            explanation = f"not seen at {where} since {utc_text(since)}, {hours:.0f} h"
        else:
            explanation = f"not seen at {where} since {utc_text(since)} (enrolled or rule started), {hours:.0f} h"
        # The place to go and look: where they were last seen, else their first home source.
        source = timer.last_seen_source or (home[0] if home and home[0] != "*" else "*")
        alert = Alert(
            alert_id=alert_id_for(self.id, timer.person_id, "absence", timer.due_at, 1),
            rule=self.id,
            kind=cfg.kind,
            severity=cfg.severity,
            person_id=timer.person_id,
            registry=entry.registry,
            source=source,
            source_kind=ctx.source_kind(source),
            grid=ctx.grid(source),
            created_at=now,
            sightings=[],
            similarity=0.0,
            explanation=f"person {timer.person_id} of registry {entry.registry!r} {explanation}",
        )
        next_due = now + dt.timedelta(seconds=cfg.repeat_s) if cfg.repeat_s is not None else None

        def commit() -> None:
            ctx.state.move_timer(timer, due_at=next_due, fired=timer.fired + 1)

        return Firing(alert, commit)


def _next_arming(schedule: ScheduleView | None, now: dt.datetime) -> dt.datetime:
    change = schedule.next_change(now) if schedule is not None else None
    return change if change is not None and change > now else now + dt.timedelta(seconds=RECHECK_S)


def active_seconds(schedule: ScheduleView, start: dt.datetime, end: dt.datetime) -> float:
    """Seconds of ``[start, end)`` the schedule is active, walking its changes."""
    total = 0.0
    at = start
    for _ in range(100_000):  # a bound, not a limit one meets: two changes a day for 100 years
        if at >= end:
            break
        change = schedule.next_change(at)
        step_end = end if change is None or change > end else change
        if schedule.contains(at):
            total += (step_end - at).total_seconds()
        if step_end <= at:
            break
        at = step_end
    return total
