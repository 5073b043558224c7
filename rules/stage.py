"""The rules stage: sightings in (a ``SightingSink``), alerts out (an ``AlertSink``).

An alert goes to its port before the next sighting is evaluated; when the port raises (the alert
could not be stored), the cooldown the rule took is released and the error goes back to the
transport, which hands the sighting over again: no alert is lost, and a replayed sighting makes
no second alert (alert ids are deterministic).
"""

from __future__ import annotations

import asyncio
import logging

from gridwatch.core.events import Sighting
from gridwatch.core.interfaces import AlertSink
from rules.engine import RuleEngine

log = logging.getLogger(__name__)


class RulesStage:
    def __init__(self, engine: RuleEngine, out: AlertSink) -> None:
        self._engine = engine
        self._out = out

    @property
    def engine(self) -> RuleEngine:
        return self._engine

    async def start(self) -> None:
        """Nothing to start yet; the clock-driven rules (timers) will run here."""

    async def stop(self) -> None:
        """Idempotent."""

    async def put(self, sighting: Sighting) -> None:
        log.debug(
            "sighting %s: person %s of %s at %s (similarity %.2f)",
            sighting.sighting_id,
            sighting.person_id,
            sighting.registry,
            sighting.source,
            sighting.similarity,
        )
        # Rule state lives in the database: evaluate off the event loop, so a database that is
        # being waited for (retried) never stalls cameras, gates or the HTTP API.
        for alert in await asyncio.to_thread(self._engine.evaluate, sighting):
            try:
                await self._out.put(alert)
            except BaseException:
                # Not stored, so not sent: release the cooldown the rule just took, or the person
                # would stay silent for a whole cooldown after a lost alert. The transport hands the
                # sighting over again, and the alert id is the same.
                await asyncio.to_thread(self._engine.release, alert)
                raise
