"""The warning models that react to a matched sighting: seen, outside_area, outside_hours, frequency."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from gridwatch.core.config.rules import (
    FrequencyRuleConfig,
    OutsideAreaRuleConfig,
    OutsideHoursRuleConfig,
    SeenRuleConfig,
)
from gridwatch.core.events import Alert, Sighting, SourceKind, alert_id_of
from rules.base import SightingRule, utc_text
from rules.context import RuleContext
from rules.state import Pass


def sighting_alert(
    rule: SightingRule, sighting: Sighting, now: dt.datetime, explanation: str
) -> Callable[[int], Alert]:
    """The alert of one sighting; its id is deterministic, so a replayed sighting makes no second alert."""
    config = rule.config

    def build(suppressed: int) -> Alert:
        return Alert(
            # From the sighting's own id, not its (device) time: a replayed sighting makes the same id,
            # two visits two ids even when the terminal's clock stands still.
            alert_id=alert_id_of(rule.id, sighting.person_id, sighting.sighting_id),
            rule=rule.id,
            kind=config.kind,
            severity=config.severity,
            person_id=sighting.person_id,
            registry=sighting.registry,
            source=sighting.source,
            source_kind=sighting.source_kind,
            grid=sighting.grid,
            created_at=now,
            sightings=[sighting.sighting_id],
            similarity=sighting.similarity,
            explanation=explanation,
            suppressed=suppressed,
            model=sighting.model,
        )

    return build


def seen_text(sighting: Sighting) -> str:
    return (
        f"person {sighting.person_id} of registry {sighting.registry!r} seen at {sighting.source_kind} "
        f"{sighting.source!r} (similarity {sighting.similarity:.2f}, threshold {sighting.threshold:.2f})"
    )


class PersonRule(SightingRule):
    """Base of the kinds that judge one sighting of a person of their registries."""

    def __init__(self, config: SeenRuleConfig | OutsideAreaRuleConfig | OutsideHoursRuleConfig) -> None:
        super().__init__(config)
        self._registries = frozenset(config.registries)

    def on_sighting(self, sighting: Sighting, now: dt.datetime, ctx: RuleContext) -> list[Alert]:
        if sighting.registry not in self._registries or not self.watches(sighting.source):
            return []
        explanation = self.judge(sighting, ctx)
        if explanation is None:
            return []
        build = sighting_alert(self, sighting, now, explanation)
        alert = self.issue(ctx, subject=sighting.person_id, at=sighting.captured_at, now=now, build=build)
        return [alert] if alert is not None else []

    def judge(self, sighting: Sighting, ctx: RuleContext) -> str | None:
        """The explanation of an alert this sighting deserves, or None."""
        raise NotImplementedError


class SeenRule(PersonRule):
    """A person of registry R is sighted at sources S."""

    def judge(self, sighting: Sighting, ctx: RuleContext) -> str | None:
        return seen_text(sighting)


class OutsideAreaRule(PersonRule):
    """Sighted at a source outside the person's permitted zones (the entry's, else the rule's)."""

    def __init__(self, config: OutsideAreaRuleConfig) -> None:
        super().__init__(config)
        self._cfg = config

    def judge(self, sighting: Sighting, ctx: RuleContext) -> str | None:
        entry = ctx.directory.conditions(sighting.person_id)
        own = entry.allowed_zones if entry is not None else ()
        zones = tuple(own) if own else tuple(self._cfg.allowed_zones)
        if not zones or sighting.source in ctx.zone_sources(zones):
            return None  # no area is set for this person, or they are inside it
        return f"{seen_text(sighting)}: outside the permitted zone(s) {', '.join(zones)}"


class OutsideHoursRule(PersonRule):
    """Sighted while the person may not be there (outside the entry's, else the rule's, schedule)."""

    def __init__(self, config: OutsideHoursRuleConfig) -> None:
        super().__init__(config)
        self._cfg = config

    def judge(self, sighting: Sighting, ctx: RuleContext) -> str | None:
        entry = ctx.directory.conditions(sighting.person_id)
        schedule_id = entry.allowed_hours if entry is not None and entry.allowed_hours else self._cfg.allowed_hours
        schedule = ctx.schedules.get(schedule_id) if schedule_id is not None else None
        if schedule is None or schedule.contains(sighting.captured_at):
            return None  # no hours are set for this person, or they are within them
        return f"{seen_text(sighting)} at {utc_text(sighting.captured_at)}: outside the permitted hours {schedule_id!r}"


class FrequencyRule(SightingRule):
    """The same person sighted at least ``count`` times within ``within_s``; one pass = one track or gate event."""

    def __init__(self, config: FrequencyRuleConfig) -> None:
        super().__init__(config)
        self._cfg = config
        self._registries = frozenset(config.registries)

    def on_sighting(self, sighting: Sighting, now: dt.datetime, ctx: RuleContext) -> list[Alert]:
        cfg = self._cfg
        if sighting.registry not in self._registries:
            return []
        if not self.watches(sighting.source, ctx.zone_sources(cfg.zones) if cfg.zones else frozenset()):
            return []
        # The window counts on the server's clock (received_at), as `stranger_at_gate` does: a gate's stuck clock
        # must neither merge a day of visits into one window nor make passes look older than they are.
        at = sighting.received_at
        window_start = at - dt.timedelta(seconds=cfg.within_s)
        passes = [p for p in ctx.state.passes(self.id, sighting.person_id) if p.at > window_start]
        if not self._new_pass(sighting, passes):
            ctx.state.save_passes(self.id, sighting.person_id, passes, now)
            return []
        passes.append(Pass(at, sighting.source, sighting.track_id))
        if len(passes) < cfg.count:
            ctx.state.save_passes(self.id, sighting.person_id, passes, now)
            return []
        first = min(p.at for p in passes)
        places = sorted({p.source for p in passes})
        text = (
            f"person {sighting.person_id} of registry {sighting.registry!r} passed {len(passes)} times within "
            f"{_duration(cfg.within_s)} (since {utc_text(first)}) at {', '.join(places)}"
        )
        alert = self.issue(
            ctx, subject=sighting.person_id, at=at, now=now, build=sighting_alert(self, sighting, now, text)
        )
        if alert is None:
            ctx.state.save_passes(self.id, sighting.person_id, passes, now)
            return []
        ctx.state.save_passes(self.id, sighting.person_id, [], now)  # the next alert needs `count` new passes
        return [alert]

    def _new_pass(self, sighting: Sighting, passes: list[Pass]) -> bool:
        if sighting.source_kind is SourceKind.GATE:
            return True  # every gate event is one pass
        if sighting.track_id is not None:
            return all(not (p.source == sighting.source and p.track == sighting.track_id) for p in passes)
        gap = dt.timedelta(seconds=self._cfg.pass_gap_s)
        same_place = [p for p in passes if p.source == sighting.source]
        if same_place and abs(sighting.received_at - max(p.at for p in same_place)) < gap:
            # Still the same walk past this camera: move the pass's end, so a slow walk stays one pass.
            last = max(same_place, key=lambda p: p.at)
            passes[passes.index(last)] = Pass(max(last.at, sighting.received_at), last.source, last.track)
            return False
        return True


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
