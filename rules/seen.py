"""The "seen" warning model: a person of registry R is sighted at sources S."""

from __future__ import annotations

import datetime as dt

from gridwatch.core.config.rules import SeenRuleConfig
from gridwatch.core.events import SEVERITY_RANK, Alert, Sighting, alert_id_for
from rules.state import RuleState


class SeenRule:
    def __init__(self, config: SeenRuleConfig, state: RuleState) -> None:
        self._config = config
        self._state = state

    @property
    def id(self) -> str:
        return self._config.id

    def applies_to(self, sighting: Sighting) -> bool:
        sources = self._config.sources
        return sighting.registry in self._config.registries and ("*" in sources or sighting.source in sources)

    def evaluate(self, sighting: Sighting, now: dt.datetime) -> Alert | None:
        """An alert, or None while the (person, rule) cooldown runs; suppressed sightings are counted."""
        if not self.applies_to(sighting):
            return None
        rank = SEVERITY_RANK[self._config.severity]
        previous = self._state.cooldown(self.id, sighting.person_id)
        if (
            previous is not None
            and now - previous.last_alert_at < dt.timedelta(seconds=self._config.cooldown_s)
            and rank <= previous.severity_rank  # a higher severity passes through
        ):
            self._state.record_suppressed(self.id, sighting.person_id)
            return None
        alert = Alert(
            alert_id=alert_id_for(
                self.id,
                sighting.person_id,
                sighting.source,
                sighting.captured_at,
                # The cooldown is the bucket: two alerts of one person and rule are at least a
                # cooldown apart, so they never share an id, while a replayed sighting does.
                max(self._config.cooldown_s, 1),
            ),
            rule=self.id,
            severity=self._config.severity,
            person_id=sighting.person_id,
            registry=sighting.registry,
            source=sighting.source,
            source_kind=sighting.source_kind,
            grid=sighting.grid,
            created_at=now,
            sightings=[sighting.sighting_id],
            similarity=sighting.similarity,
            explanation=(
                f"person {sighting.person_id} of registry {sighting.registry!r} seen at {sighting.source_kind} "
                f"{sighting.source!r} (similarity {sighting.similarity:.2f}, threshold {sighting.threshold:.2f})"
            ),
        )
        self._state.record_alert(self.id, sighting.person_id, now, rank)
        return alert
