"""The recogniser's turn: gate snapshots before camera frames.

Inference runs one image at a time (two would only share the same cores). Who goes next is chosen by
priority, then by arrival: a person waiting at a gate reader is served before the next camera frame.
Each camera has at most one frame waiting (its worker awaits the result and keeps only the latest
frame meanwhile), so camera frames still take turns fairly among themselves.
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Priority(enum.IntEnum):
    GATE = 0
    CAMERA = 1


class PriorityTurns:
    """One holder at a time; waiters in order of priority, then arrival. Safe against cancellation."""

    def __init__(self) -> None:
        self._busy = False
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    @property
    def waiting(self) -> int:
        return sum(1 for *_, future in self._waiters if not future.done())

    @asynccontextmanager
    async def turn(self, priority: Priority) -> AsyncIterator[None]:
        await self._acquire(priority)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, priority: Priority) -> None:
        if not self._busy and not self._waiters:
            self._busy = True
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (int(priority), next(self._arrivals), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release()  # the turn was handed over just as the waiter was cancelled: pass it on
            raise

    def _release(self) -> None:
        while self._waiters:
            *_, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)  # the turn passes on: still busy
                return
        self._busy = False
