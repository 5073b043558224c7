"""The rules stage: sightings and stranger attempts in, alerts out (an ``AlertSink``); timers on the clock.

An alert goes to its port before the next event is evaluated; when the port raises (the alert could
not be stored), the cooldown the rule took is released and the error goes back to the transport,
which hands the event over again: no alert is lost, and a replayed event makes no second alert
(alert ids are deterministic).

The timer loop wakes at the next due time (at most every ``max_sleep_s``), arms timers for persons
enrolled since the last pass, and fires what is due: each alert is stored first and the timer moved
after, so a crash in between fires it again with the same id (the outbox drops the copy).

As a member of the rules consumer group, the stage is the transport's ``PartitionListener``: a
partition assigned to it has its timers armed and its overdue ones fired at once (its state is in the
database, tagged with the partition); a revoked partition's timers stop firing here, and the revocation
returns only after a timer pass in flight has stored its alerts. Two owners in a row may both fire a
timer that came due around the handover (or that a killed owner fired but did not record): the alert id
is the same, the outbox keeps one, and the timer moves only if it is still as the firing read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable

from gridwatch.core.events import Alert, Sighting, StrangerAttempt
from gridwatch.core.interfaces import AlertSink
from gridwatch.core.metrics import LOOP_ERRORS, RULES_PARTITIONS_OWNED
from rules.engine import RuleEngine

log = logging.getLogger(__name__)

MAX_SLEEP_S = 30.0  # also how soon a new enrolment gets its absence timer
RETRY_S = 5.0


class RulesStage:
    def __init__(self, engine: RuleEngine, out: AlertSink, *, max_sleep_s: float = MAX_SLEEP_S) -> None:
        self._engine = engine
        self._out = out
        self._max_sleep_s = max_sleep_s
        self._timer_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        # Held by a timer pass; a revocation waits for it, so no alert of a lost partition is made after.
        self._pass_lock = asyncio.Lock()

    @property
    def engine(self) -> RuleEngine:
        return self._engine

    async def start(self) -> None:
        if self._timer_task is None:
            self._timer_task = asyncio.create_task(self._timers(), name="gridwatch.rules.timers")

    async def stop(self) -> None:
        """Idempotent; a timer pass in flight is cancelled (its alerts fire again on the next start)."""
        task, self._timer_task = self._timer_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        """Run a timer pass now (a reload or an enrolment changed what the timers should be)."""
        self._wake.set()

    async def assigned(self, partitions: frozenset[int], partition_of: Callable[[str], int]) -> None:
        """Kafka assigned these partitions of the sightings: their timers are armed and fired from here on."""
        async with self._pass_lock:
            await asyncio.to_thread(self._engine.state.own, partitions, partition_of)
        RULES_PARTITIONS_OWNED.set(len(self._engine.state.owned or ()))
        log.info("rules: now owns partition(s) %s", sorted(self._engine.state.owned or ()))
        self.wake()  # overdue timers of the new partitions fire now, not at the next planned pass

    async def revoked(self, partitions: frozenset[int]) -> None:
        """Kafka revoked these partitions: once a timer pass in flight is done, they are not acted for."""
        async with self._pass_lock:
            self._engine.state.disown(partitions)
        RULES_PARTITIONS_OWNED.set(len(self._engine.state.owned or ()))
        log.info("rules: gave up partition(s) %s", sorted(partitions))

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
        await self._emit(await asyncio.to_thread(self._engine.evaluate, sighting))

    async def put_attempt(self, attempt: StrangerAttempt) -> None:
        await self._emit(await asyncio.to_thread(self._engine.attempt, attempt))

    async def _emit(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            try:
                await self._out.put(alert)
            except BaseException:
                # Not stored, so not sent: release the cooldown the rule just took, or the person
                # would stay silent for a whole cooldown after a lost alert. The transport hands the
                # event over again, and the alert id is the same.
                await asyncio.to_thread(self._engine.release, alert)
                raise

    async def run_timers_once(self) -> None:
        """One pass: arm new timers, fire the due ones (what the loop does; tests and the simulator call it)."""
        async with self._pass_lock:
            await self._timer_pass()

    async def _timer_pass(self) -> None:
        await asyncio.to_thread(self._engine.arm)
        while True:
            firings = await asyncio.to_thread(self._engine.due)
            for firing in firings:
                await self._out.put(firing.alert)
            # Stored first, recorded after: a crash in between fires them again with the same ids.
            await asyncio.to_thread(self._engine.commit, firings)
            if len(firings) < 1000:
                return

    async def _timers(self) -> None:
        while True:
            try:
                await self.run_timers_once()
                delay = self._max_sleep_s
                next_due = await asyncio.to_thread(self._engine.next_due)
                if next_due is not None:
                    until = (next_due - dt.datetime.now(dt.UTC)).total_seconds()
                    delay = min(delay, max(until, 0.05))
            except asyncio.CancelledError:
                raise
            except Exception:
                # A database or outbox that is down: nothing was moved, so nothing is lost; try again.
                LOOP_ERRORS.labels(loop="rules.timers").inc()
                log.exception("rules: timer pass failed; retrying in %.0f s", RETRY_S)
                delay = RETRY_S
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
