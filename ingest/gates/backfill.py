"""Recover the events a stream gate missed from the device's own event history.

A stream cannot be asked to resend, but some devices keep a searchable event log. Two things start
a backfill: a reconnect, when the serial seen last is known (the device is asked for its latest
serial, and everything between is searched at once, without waiting for the next live event), and
a serial gap revealed by a live event. One worker task runs the searches in order, so the counts do
not depend on whether the history or the live stream answers first:

- every serial is searched at most once (a watermark): a gap the reconnect search already covered
  is not searched, nor counted, again;
- at most ``max_events`` serials per search, the oldest first; the rest counts as unrecovered;
- a recovered event goes the way of a live one (the source's ``emit``), unless its serial was seen
  already (the stream delivered it meanwhile): each event is handed on once;
- ``unrecovered``: serials of a searched range that neither the history nor the stream delivered;
- the gate's ``GateWatermark`` (if any) is held at the start of each queued range until it is searched, so
  a restart resumes the search there;
- a device that refuses the search (``HistoryUnavailable``: no such API, not allowed) is logged
  once and never asked again; its gaps count as unrecovered. A failed request (network, malformed
  answer) loses that range (counted) and is not retried: a backfill never loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from gridwatch.core.interfaces import GateEvent, SourceStatus
from gridwatch.core.metrics import GATE_BACKFILLED, GATE_UNRECOVERED
from ingest.gates.common import PayloadRejected
from ingest.gates.watermarks import GateWatermark

log = logging.getLogger(__name__)


class HistoryUnavailable(Exception):
    """The device offers no event history search or refuses it; the message says why (safe to log)."""


class EventHistory(Protocol):
    """A device's searchable event log (raise ``HistoryUnavailable`` when it has none)."""

    @property
    def max_events(self) -> int:
        """Most serials searched per gap (0: backfill off)."""
        ...

    async def latest_serial(self) -> int | None:
        """The serial of the device's most recent event, or ``None`` when its log is empty."""
        ...

    def search(self, first: int, last: int) -> AsyncIterator[GateEvent]:
        """The logged events with serials ``first`` to ``last`` (inclusive), oldest first."""
        ...


@dataclass(frozen=True, slots=True)
class _Range:
    first: int
    last: int | None  # None: up to the device's latest serial (after a reconnect)


class Backfill:
    """The backfill of one gate: ``reconnected()`` and ``gap()`` queue work, ``stop()`` cancels it."""

    def __init__(
        self,
        status: SourceStatus,
        history: EventHistory | None,
        emit: Callable[[GateEvent], Awaitable[None]],
        seen: Callable[[int], bool],
        watermark: GateWatermark | None = None,
    ) -> None:
        self._status = status
        self._watermark = watermark
        self._history = history
        self._emit = emit
        self._seen = seen
        # No history (the protocol has none): gaps are only counted, as unrecovered.
        self._max_events = history.max_events if history is not None else 0
        self._queue: deque[_Range] = deque()
        self._task: asyncio.Task[None] | None = None
        self._searched_up_to: int | None = None
        self._unavailable = history is None or self._max_events == 0
        self._backfilled = GATE_BACKFILLED.labels(gate=status.source_id)
        self._unrecovered = GATE_UNRECOVERED.labels(gate=status.source_id)
        status.extra.update({"backfilled": 0, "unrecovered": 0})

    def reconnected(self, last_seen: int | None) -> None:
        """The stream is back; search what the device logged after ``last_seen`` (if known)."""
        if last_seen is not None and not self._unavailable:
            self._submit(_Range(last_seen + 1, None))

    def gap(self, first: int, last: int) -> None:
        """A live event revealed that serials ``first`` to ``last`` were skipped."""
        self._submit(_Range(first, last))

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._queue.clear()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _submit(self, work: _Range) -> None:
        if self._watermark is not None:
            self._watermark.hold(work.first)  # until searched: a restart before then searches it again
        self._queue.append(work)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._work(), name=f"gate-{self._status.source_id}-backfill")

    async def _work(self) -> None:
        while self._queue:
            work = self._queue.popleft()
            try:
                await self._run(work)
            except Exception as error:
                # The worker must survive whatever the device answers; the type only (no device bytes).
                log.error("gate %s: backfill failed: unexpected %s", self._status.source_id, type(error).__name__)
            # Searched, or lost and counted (never retried). Not when cancelled at stop: then it stays held.
            if self._watermark is not None:
                self._watermark.settle(work.first)

    async def _run(self, work: _Range) -> None:
        gate = self._status.source_id
        first, last = work.first, work.last
        if self._searched_up_to is not None:
            first = max(first, self._searched_up_to + 1)
        if last is None:
            # After a reconnect the end of the range is unknown: ask the device. A failure here
            # costs nothing: the next live event reveals the gap, which is searched then.
            try:
                last = await self._latest(gate)
            except (httpx.HTTPError, OSError, PayloadRejected) as error:
                log.warning("gate %s: event history not reachable after the reconnect: %s", gate, _reason(error))
                return
            if last is None:
                return
        if first > last:
            return
        self._searched_up_to = last
        end = min(last, first + self._max_events - 1)
        if end < last and not self._unavailable:
            log.warning(
                "gate %s: %d missed event(s) beyond the backfill limit of %d", gate, last - end, self._max_events
            )
        if not self._unavailable:
            await self._recover(gate, first, end)
        # Beyond the limit nothing was searched; inside it, what neither history nor stream delivered.
        lost = (last - end) + sum(1 for serial in range(first, end + 1) if not self._seen(serial))
        if lost:
            self._count("unrecovered", lost)
            self._unrecovered.inc(lost)

    async def _latest(self, gate: str) -> int | None:
        if self._unavailable or self._history is None:
            return None
        try:
            return await self._history.latest_serial()
        except HistoryUnavailable as refused:
            self._refused(gate, refused)
            return None

    async def _recover(self, gate: str, first: int, last: int) -> None:
        if self._history is None:
            return
        try:
            async for event in self._history.search(first, last):
                serial = event.serial
                if serial is None or not first <= serial <= last or self._seen(serial):
                    continue
                await self._emit(event)
                self._count("backfilled", 1)
                self._backfilled.inc()
        except HistoryUnavailable as refused:
            self._refused(gate, refused)
        except (httpx.HTTPError, OSError, PayloadRejected) as error:
            log.warning("gate %s: backfill of serials %d-%d failed: %s", gate, first, last, _reason(error))
        else:
            log.info("gate %s: backfill of serials %d-%d done", gate, first, last)

    def _refused(self, gate: str, refused: HistoryUnavailable) -> None:
        self._unavailable = True
        log.warning("gate %s: no backfill of missed events: %s", gate, refused)

    def _count(self, name: str, amount: int) -> None:
        self._status.extra[name] = int(self._status.extra[name]) + amount  # type: ignore[call-overload]


def _reason(error: Exception) -> str:
    # A rejection's reason is written to be safe; for the rest the type only (messages may quote URLs).
    return error.reason if isinstance(error, PayloadRejected) else type(error).__name__
