"""Runs every configured rule over each sighting."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from gridwatch.core.config.rules import RuleConfig
from gridwatch.core.events import Alert, Sighting
from rules.seen import SeenRule
from rules.state import RuleState


class RuleEngine:
    def __init__(
        self,
        configs: Sequence[RuleConfig],
        state: RuleState,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._state = state
        self._rules = [SeenRule(config, state) for config in configs]
        self._clock = clock
        self.sightings = 0
        self.alerts = 0

    @property
    def rule_ids(self) -> list[str]:
        return [rule.id for rule in self._rules]

    def reconfigure(self, configs: Sequence[RuleConfig]) -> None:
        """Use a new rule set from the next sighting on (config hot reload).

        Cooldowns and suppressed counts live in ``RuleState`` by rule id, so a rule kept under the same
        id (changed or not) keeps them; a new rule starts without; a removed rule's rows stay in the
        state and apply again if a rule with that id comes back. The list is swapped in one assignment,
        so an ``evaluate`` running meanwhile sees the old rules or the new ones, never a mix.
        """
        self._rules = [SeenRule(config, self._state) for config in configs]

    def evaluate(self, sighting: Sighting) -> list[Alert]:
        self.sightings += 1
        now = self._clock()
        alerts = [alert for rule in self._rules if (alert := rule.evaluate(sighting, now)) is not None]
        self.alerts += len(alerts)
        return alerts

    def release(self, alert: Alert) -> None:
        """Forget the cooldown an alert took, because it could not be stored for delivery."""
        self._state.clear(alert.rule, alert.person_id)
        self.alerts -= 1
