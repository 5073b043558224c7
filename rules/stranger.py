"""The `stranger_at_gate` warning model: an unknown face tries the rule's sources again and again.

Recognition gives unknown faces of one source a random look-alike label, in memory only; the rule
counts attempts per (source, label) within ``within_s``. A gate's own refusal without a face counts
under one label per source. The alert names the source, the count, the first and last time and the
gate's event ids; nothing biometric exists at this stage to put in it.
"""

from __future__ import annotations

import datetime as dt

from gridwatch.core.config.rules import StrangerAtGateRuleConfig
from gridwatch.core.events import Alert, Sighting, StrangerAttempt, alert_id_of
from rules.base import SightingRule, utc_text
from rules.context import RuleContext
from rules.state import Pass

NO_FACE = "no-face"


class StrangerAtGateRule(SightingRule):
    def __init__(self, config: StrangerAtGateRuleConfig) -> None:
        super().__init__(config)
        self._cfg = config

    def arm(self, now: dt.datetime, ctx: RuleContext) -> None:
        # Called on every timer pass: attempts that never reached `count` must not outlive the window,
        # so the label and times of an unknown face are forgotten with it (not only at its next attempt).
        ctx.state.forget_passes_before(now - dt.timedelta(seconds=self._cfg.within_s), rule=self.id)

    def on_sighting(self, sighting: Sighting, now: dt.datetime, ctx: RuleContext) -> list[Alert]:
        return []  # a matched face is not a stranger (recognition reports it only if no known registry matched)

    def on_attempt(self, attempt: StrangerAttempt, now: dt.datetime, ctx: RuleContext) -> list[Alert]:
        cfg = self._cfg
        if not self.watches(attempt.source):
            return []
        subject = f"{attempt.source}|{attempt.cluster or NO_FACE}"
        # The window counts on the server's clock: a gate whose clock is stuck or wrong would otherwise put every
        # attempt of a day into one window (a false stranger alert), and `arm` forgets on the server's clock too.
        at = attempt.received_at or attempt.captured_at
        window_start = at - dt.timedelta(seconds=cfg.within_s)
        attempts = [p for p in ctx.state.passes(self.id, subject) if p.at > window_start]
        this = Pass(at, attempt.source, attempt.gate_event_id)
        if attempt.gate_event_id is not None and this in attempts:
            return []  # the transport handed the same gate event over again (at least once): counted already
        attempts.append(this)
        if len(attempts) < cfg.count:
            ctx.state.save_passes(self.id, subject, attempts, now)
            return []
        first, last = min(p.at for p in attempts), max(p.at for p in attempts)
        events = [p.track for p in attempts if p.track]
        text = (
            f"an unknown face tried {attempt.source_kind} {attempt.source!r} {len(attempts)} times between "
            f"{utc_text(first)} and {utc_text(last)}" + (f"; gate events {', '.join(events)}" if events else "")
        )

        def build(suppressed: int) -> Alert:
            return Alert(
                alert_id=alert_id_of(self.id, subject, attempt.attempt_id),
                rule=self.id,
                kind=cfg.kind,
                severity=cfg.severity,
                person_id=None,
                registry=None,
                source=attempt.source,
                source_kind=attempt.source_kind,
                grid=attempt.grid,
                created_at=now,
                sightings=[],
                similarity=0.0,
                explanation=text,
                suppressed=suppressed,
            )

        # One cooldown per source: a second stranger at the same gate within it is the same incident.
        # Its subject is the alert's key, so that the engine can release it like a person's.
        alert = self.issue(ctx, subject=f"source:{attempt.source}", at=at, now=now, build=build)
        ctx.state.save_passes(self.id, subject, [] if alert is not None else attempts, now)
        return [alert] if alert is not None else []
