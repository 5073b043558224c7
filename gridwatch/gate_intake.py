"""The bounded queue between gate sources and recognition, and the worker that empties it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from gridwatch.core.interfaces import GateEvent

log = logging.getLogger(__name__)

GATE_QUEUE_SIZE = 64
GATE_DRAIN_S = 5.0


class GateIntake:
    """The bounded queue between gate sources and recognition, and the worker that empties it.

    ``put`` is the handler the gate sources call: it never waits. When the queue is full the
    oldest event is dropped (a fresh face at the door matters more than a stale one) and counted
    per gate.
    """

    def __init__(self, process: Callable[[GateEvent], Awaitable[None]], capacity: int = GATE_QUEUE_SIZE) -> None:
        self._process = process
        self._queue: asyncio.Queue[GateEvent] = asyncio.Queue(maxsize=capacity)
        self._task: asyncio.Task[None] | None = None
        self.dropped: dict[str, int] = {}
        self.processed = 0
        self.failed = 0

    @property
    def capacity(self) -> int:
        return self._queue.maxsize

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def put(self, event: GateEvent) -> None:
        if self._task is None or not event.reaches_recognition:
            return  # stopped, or neither a face nor a refusal (the source counted the event already)
        while self._queue.full():
            stale = self._queue.get_nowait()
            self._queue.task_done()
            self.dropped[stale.gate_id] = self.dropped.get(stale.gate_id, 0) + 1
            log.warning("gate %s: recognition queue full; dropped the oldest event", stale.gate_id)
        self._queue.put_nowait(event)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._work(), name="gridwatch.gate-recognition")

    async def stop(self, drain_s: float = GATE_DRAIN_S) -> None:
        """Finish the queued events (at most ``drain_s``), then stop the worker. Idempotent."""
        task, self._task = self._task, None
        if task is None:
            return
        if not task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), drain_s)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        while not self._queue.empty():  # left over after the drain deadline: memory only, let go
            self._queue.get_nowait()
            self._queue.task_done()

    async def _work(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._process(event)
                self.processed += 1
            except Exception as exc:  # one bad event must not stop the gates
                self.failed += 1
                # The type only: a message could quote the snapshot's bytes.
                log.error(
                    "gate %s: recognition failed on event %s: %s", event.gate_id, event.serial, type(exc).__name__
                )
            finally:
                self._queue.task_done()
