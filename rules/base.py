"""The rule protocol, and the one gate every alert passes: arming schedule, then cooldown."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Protocol

from gridwatch.core.config.rules import RuleConfig
from gridwatch.core.events import SEVERITY_RANK, Alert, Sighting
from rules.context import Firing, RuleContext
from rules.state import AbsenceTimer


class Rule(Protocol):
    """A warning model. Sightings and the clock come in; alerts for people go out."""

    @property
    def id(self) -> str: ...

    @property
    def config(self) -> RuleConfig: ...

    def on_sighting(self, sighting: Sighting, now: dt.datetime, ctx: RuleContext) -> list[Alert]:
        """Alerts this sighting makes (state is updated as a side effect)."""
        ...

    def arm(self, now: dt.datetime, ctx: RuleContext) -> None:
        """Start the timers the rule needs for persons it now applies to (no-op for most kinds)."""
        ...

    def on_timer(self, timer: AbsenceTimer, now: dt.datetime, ctx: RuleContext) -> Firing | None:
        """A due timer of this rule: the alert it makes, or None (the timer was moved instead)."""
        ...


class SightingRule:
    """Base of the kinds that react to sightings only."""

    def __init__(self, config: RuleConfig) -> None:
        self._config = config

    @property
    def id(self) -> str:
        return self._config.id

    @property
    def config(self) -> RuleConfig:
        return self._config

    def watches(self, source: str, extra_sources: frozenset[str] = frozenset()) -> bool:
        sources = self._config.sources
        return "*" in sources or source in sources or source in extra_sources

    def on_sighting(self, sighting: Sighting, now: dt.datetime, ctx: RuleContext) -> list[Alert]:
        raise NotImplementedError

    def arm(self, now: dt.datetime, ctx: RuleContext) -> None:
        return None

    def on_timer(self, timer: AbsenceTimer, now: dt.datetime, ctx: RuleContext) -> Firing | None:
        return None

    def issue(
        self,
        ctx: RuleContext,
        *,
        subject: str,
        at: dt.datetime,
        now: dt.datetime,
        build: Callable[[int], Alert],
    ) -> Alert | None:
        """The alert ``build(suppressed)`` makes, unless the schedule disarms the rule or a cooldown runs.

        A cooldown runs from the delivery of the previous alert; while that alert waits undelivered,
        every further sighting is suppressed too. A higher severity passes either way. Suppressed
        sightings are counted and the count travels on the next alert.
        """
        config = self._config
        if not ctx.armed(config.active, at):
            return None
        rank = SEVERITY_RANK[config.severity]
        previous = ctx.state.cooldown(self.id, subject)
        if previous is not None and rank <= previous.severity_rank:
            since = previous.running_since
            cooling = since is not None and now - since < dt.timedelta(seconds=config.cooldown_s)
            if previous.waiting_for_delivery or cooling:
                ctx.state.record_suppressed(self.id, subject)
                ctx.on_suppressed(self.id)
                return None
        alert = build(previous.suppressed if previous is not None else 0)
        ctx.state.record_alert(self.id, subject, now, rank, alert_id=alert.alert_id, delivered=ctx.delivered_on_create)
        return alert


def sources_text(sources: Sequence[str]) -> str:
    return ", ".join(sources) if sources else "any source"


def utc_text(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
