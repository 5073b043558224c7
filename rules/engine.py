"""Runs the configured warning models over sightings and over the clock.

Rule kinds are looked up in ``RULE_KINDS``; each rule gets a ``RuleContext`` with the shared state,
the persons' own conditions, zones and schedules. The clock is injected: the service passes the
wall clock, ``gridwatch rules simulate`` a virtual one, and both run this very code.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from gridwatch.core.config.rules import RuleConfig
from gridwatch.core.events import Alert, Sighting, SourceKind, StrangerAttempt
from gridwatch.core.interfaces import PersonDirectory
from gridwatch.core.metrics import RULE_SUPPRESSED, TIMER_FIRINGS
from rules.absence import NotSeenRule
from rules.base import Rule
from rules.context import Firing, NoDirectory, RuleContext, ScheduleView
from rules.kinds import FrequencyRule, OutsideAreaRule, OutsideHoursRule, SeenRule
from rules.state import RuleState
from rules.stranger import StrangerAtGateRule

Clock = Callable[[], dt.datetime]

RULE_KINDS: Mapping[str, Callable[[Any], Rule]] = {
    "seen": SeenRule,
    "not_seen": NotSeenRule,
    "outside_area": OutsideAreaRule,
    "outside_hours": OutsideHoursRule,
    "frequency": FrequencyRule,
    "stranger_at_gate": StrangerAtGateRule,
}


def build_rule(config: RuleConfig) -> Rule:
    return RULE_KINDS[config.kind](config)


def wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RuleEngine:
    """Thread-safe for one caller at a time per entry point; the stage calls it from worker threads."""

    def __init__(
        self,
        configs: Sequence[RuleConfig],
        state: RuleState,
        clock: Clock = wall_clock,
        *,
        directory: PersonDirectory | None = None,
        zones: Mapping[str, frozenset[str]] | None = None,
        schedules: Mapping[str, ScheduleView] | None = None,
        sources: Mapping[str, tuple[SourceKind, str | None]] | None = None,
        delivered_on_create: bool = False,
    ) -> None:
        self._state = state
        self._clock = clock
        self._rules: list[Rule] = [build_rule(c) for c in configs]
        self._ctx = RuleContext(
            state=state,
            directory=directory or NoDirectory(),
            zones=dict(zones or {}),
            schedules=dict(schedules or {}),
            sources=dict(sources or {}),
            delivered_on_create=delivered_on_create,
            on_suppressed=self._count_suppressed,
        )
        self._lock = threading.Lock()  # guards the counters, not the state (the database serialises that)
        self.sightings = 0
        self.alerts = 0
        self.suppressed: Counter[str] = Counter()
        self.alerts_by_rule: Counter[str] = Counter()

    @property
    def rule_ids(self) -> list[str]:
        return [rule.id for rule in self._rules]

    @property
    def rules(self) -> list[Rule]:
        return list(self._rules)

    @property
    def state(self) -> RuleState:
        return self._state

    def reconfigure(
        self,
        configs: Sequence[RuleConfig],
        *,
        zones: Mapping[str, frozenset[str]] | None = None,
        schedules: Mapping[str, ScheduleView] | None = None,
        sources: Mapping[str, tuple[SourceKind, str | None]] | None = None,
    ) -> None:
        """Use a new rule set from the next event on (config hot reload); ``None`` keeps a part as it is.

        Cooldowns, timers and passes live in ``RuleState`` by rule id, so a rule kept under the same
        id (changed or not) keeps them; a new rule starts without; a removed rule's rows stay and apply
        again if a rule with that id comes back. Each part is swapped in one assignment, so an event
        handled meanwhile sees the old rules or the new ones, never a mix of one rule.
        """
        if zones is not None:
            self._ctx.zones = dict(zones)
        if schedules is not None:
            self._ctx.schedules = dict(schedules)
        if sources is not None:
            self._ctx.sources = dict(sources)
        self._rules = [build_rule(c) for c in configs]

    def evaluate(self, sighting: Sighting) -> list[Alert]:
        now = self._clock()
        rules = self._rules
        alerts = self._state.batch(
            lambda: [alert for rule in rules for alert in rule.on_sighting(sighting, now, self._ctx)],
            "rule evaluation",
        )
        with self._lock:
            self.sightings += 1
            self._count_alerts(alerts)
        return alerts

    def attempt(self, attempt: StrangerAttempt) -> list[Alert]:
        """An unknown face or a gate's own refusal at a source (``stranger_at_gate``)."""
        now = self._clock()
        strangers = [rule for rule in self._rules if isinstance(rule, StrangerAtGateRule)]
        alerts = self._state.batch(
            lambda: [alert for rule in strangers for alert in rule.on_attempt(attempt, now, self._ctx)],
            "rule evaluation",
        )
        with self._lock:
            self._count_alerts(alerts)
        return alerts

    def arm(self) -> None:
        """Start the timers of persons the rules newly apply to (enrolments, reloads); drop stale ones."""
        now = self._clock()
        for rule in self._rules:
            self._state.batch(partial(rule.arm, now, self._ctx), "timer arming")

    def due(self, limit: int = 1000) -> list[Firing]:
        """Alerts of the timers due now; each is recorded by its ``commit`` once it is in the outbox."""
        now = self._clock()
        by_id = {rule.id: rule for rule in self._rules}

        def fire() -> list[Firing]:
            firings: list[Firing] = []
            for timer in self._state.due_timers(now, limit):
                rule = by_id.get(timer.rule)
                if rule is None:
                    # The rule was removed: its timers wait, in case it comes back (they fire once then).
                    self._state.move_timer(timer, due_at=None, fired=timer.fired)
                    continue
                firing = rule.on_timer(timer, now, self._ctx)
                if firing is not None:
                    firings.append(firing)
            return firings

        firings = self._state.batch(fire, "timer pass")
        for firing in firings:
            TIMER_FIRINGS.labels(rule=firing.alert.rule).inc()
        with self._lock:
            self._count_alerts([f.alert for f in firings])
        return firings

    def commit(self, firings: Sequence[Firing]) -> None:
        """Record fired timers whose alerts are in the outbox, in one transaction."""

        def record() -> None:
            for firing in firings:
                firing.commit()

        self._state.batch(record, "timer commit")

    def next_due(self) -> dt.datetime | None:
        return self._state.next_due()

    def release(self, alert: Alert) -> None:
        """Forget the cooldown an alert took, and un-count the alert: it could not be stored for delivery,
        or the outbox had it already (a replayed event judged again after the earlier cooldown ran out).

        Cooldowns are kept under the alert's key: the person, or for an unknown face its gate. Without
        this, a stranger alert the outbox refused would keep its gate waiting for a delivery that never comes.
        """
        self._state.clear(alert.rule, alert.key)
        with self._lock:
            self.alerts -= 1
            self.alerts_by_rule[alert.rule] -= 1

    def delivered(self, alert_id: str, at: dt.datetime | None = None) -> None:
        """A sink took the alert: the cooldown it started runs from now."""
        self._state.mark_delivered(alert_id, at or self._clock())

    def _count_alerts(self, alerts: list[Alert]) -> None:
        self.alerts += len(alerts)
        for alert in alerts:
            self.alerts_by_rule[alert.rule] += 1

    def _count_suppressed(self, rule: str) -> None:
        RULE_SUPPRESSED.labels(rule=rule).inc()
        with self._lock:
            self.suppressed[rule] += 1
