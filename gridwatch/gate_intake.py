"""Per-gate bounded queues between gate sources and recognition, emptied round-robin by one worker.

A gate source awaits ``put``: it returns once the event was recognised and its sightings are durable
(the processing callable returns only then: see ``Service._on_gate_event``), so a device is told
"accepted" only for what a crash can no longer lose. When the gate's queue is full, or the event
waited longer than ``wait_s``, ``put`` raises ``GateBusy`` and the event is not kept: a pushing
device answered 503 (or not acknowledged) keeps it and sends it again. Face images are never
spooled to disk; the queues are the only place they wait.

Fairness: each gate has its own small queue and the worker takes one event per gate in turn, so a
flooding gate fills (and is refused on) its own queue while the others keep their turn.

Poison events: an event whose processing raised is refused (the device sends it again), but one that
failed ``poison_after`` times (same gate, same device serial) will never go through, and a terminal
that resends it forever may hold back the events behind it. The next time it comes it is answered as
taken and dropped: counted (``gridwatch_gate_events_poisoned_total{gate}``, ``poisoned`` in ``/status``)
and logged at ERROR once. Nothing of it is kept: its face may be a stranger's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from gridwatch.core.interfaces import GateBusy, GateEvent
from gridwatch.core.metrics import GATE_BUSY, GATE_POISONED

log = logging.getLogger(__name__)

# Small on purpose: a queued face is memory only and a device keeps what it was refused; at ~0.1-0.3 s
# of recognition per event, 8 queued events answer within the wait bound even with a few busy gates.
GATE_QUEUE_SIZE = 8
# Longer than this and the device is better off resending later than holding its connection open.
GATE_WAIT_S = 10.0
# What a refused device is told to wait before it sends the event again (ISAPI ``Retry-After``).
GATE_RETRY_AFTER_S = 2
GATE_DRAIN_S = 5.0
# Failures of one event (gate + serial) after which it is dropped when it comes again.
GATE_POISON_AFTER = 5
# Events with failures remembered at once (oldest forgotten first): memory stays bounded under a flood.
_FAILURES_KEPT = 10_000


@dataclass(eq=False, slots=True)
class _Entry:
    event: GateEvent
    done: asyncio.Future[None]


@dataclass(slots=True)
class GateQueueStats:
    """One gate's numbers in ``/status``; ``dropped`` = refused + timed out (events not taken)."""

    pending: int = 0
    in_progress: int = 0
    processed: int = 0
    failed: int = 0
    refused: int = 0  # the gate's queue was full
    timed_out: int = 0  # waited longer than the bound
    poisoned: int = 0  # failed poison_after times, then answered as taken and dropped

    @property
    def dropped(self) -> int:
        return self.refused + self.timed_out

    def as_dict(self) -> dict[str, int]:
        return {
            "pending": self.pending,
            "in_progress": self.in_progress,
            "processed": self.processed,
            "failed": self.failed,
            "refused": self.refused,
            "timed_out": self.timed_out,
            "poisoned": self.poisoned,
            "dropped": self.dropped,
        }


@dataclass(slots=True)
class _GateQueue:
    entries: deque[_Entry] = field(default_factory=deque)
    stats: GateQueueStats = field(default_factory=GateQueueStats)


class GateIntake:
    """Per-gate bounded queues and the round-robin worker that empties them; ``start()``/``stop()``."""

    def __init__(
        self,
        process: Callable[[GateEvent], Awaitable[None]],
        capacity: int = GATE_QUEUE_SIZE,
        *,
        wait_s: float = GATE_WAIT_S,
        retry_after_s: int = GATE_RETRY_AFTER_S,
        poison_after: int = GATE_POISON_AFTER,
    ) -> None:
        """``capacity``: events waiting per gate (the one in recognition not counted)."""
        self._process = process
        self._poison_after = poison_after
        self._failures: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._capacity = capacity
        self._wait_s = wait_s
        self._retry_after_s = retry_after_s
        self._gates: dict[str, _GateQueue] = {}
        self._turns: deque[str] = deque()  # gates with waiting events, in the order they get their turn
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._current: _Entry | None = None  # the event in recognition

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def pending(self) -> int:
        return sum(len(gate.entries) for gate in self._gates.values())

    @property
    def processed(self) -> int:
        return sum(gate.stats.processed for gate in self._gates.values())

    @property
    def failed(self) -> int:
        return sum(gate.stats.failed for gate in self._gates.values())

    @property
    def dropped(self) -> dict[str, int]:
        """Events not taken, per gate (refused when full, or timed out)."""
        return {gate_id: gate.stats.dropped for gate_id, gate in self._gates.items() if gate.stats.dropped}

    def stats(self) -> dict[str, GateQueueStats]:
        for gate in self._gates.values():
            gate.stats.pending = len(gate.entries)
        return {gate_id: gate.stats for gate_id, gate in self._gates.items()}

    async def put(self, event: GateEvent) -> None:
        """Returns once ``event`` was processed; raises ``GateBusy`` (not taken) or what processing raised."""
        if not event.reaches_recognition:
            return  # neither a face nor a refusal (the source counted the event already)
        if self._task is None:
            raise GateBusy("recognition is not running", self._retry_after_s)
        gate = self._gates.setdefault(event.gate_id, _GateQueue())
        if self._is_poison(event):
            gate.stats.poisoned += 1
            GATE_POISONED.labels(gate=event.gate_id).inc()
            if gate.stats.poisoned == 1 or gate.stats.poisoned % 100 == 0:
                log.error(
                    "gate %s: event %s failed %d times; answered as taken and dropped (%d so far)",
                    event.gate_id,
                    event.serial,
                    self._poison_after,
                    gate.stats.poisoned,
                )
            return
        if len(gate.entries) >= self._capacity:
            gate.stats.refused += 1
            GATE_BUSY.labels(gate=event.gate_id).inc()
            log.warning("gate %s: recognition queue full (%d); event refused", event.gate_id, self._capacity)
            raise GateBusy(f"the gate's recognition queue is full ({self._capacity})", self._retry_after_s)
        entry = _Entry(event, asyncio.get_running_loop().create_future())
        gate.entries.append(entry)
        if len(gate.entries) == 1:
            self._turns.append(event.gate_id)
        self._ready.set()
        try:
            # Shielded: a timeout (or a client gone) must not cancel a recognition in progress.
            await asyncio.wait_for(asyncio.shield(entry.done), self._wait_s)
        except TimeoutError:
            gate.stats.timed_out += 1
            GATE_BUSY.labels(gate=event.gate_id).inc()
            self._withdraw(gate, entry)
            log.warning("gate %s: event waited over %.0f s for recognition; refused", event.gate_id, self._wait_s)
            raise GateBusy(f"recognition took over {self._wait_s:g} s", self._retry_after_s) from None
        except asyncio.CancelledError:
            self._withdraw(gate, entry)
            raise

    def _withdraw(self, gate: _GateQueue, entry: _Entry) -> None:
        """An event its sender gave up on: not processed if it still waits (the device sends it again)."""
        with contextlib.suppress(ValueError):
            gate.entries.remove(entry)
        if not entry.done.done():
            entry.done.cancel()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._work(), name="gridwatch.gate-recognition")

    async def stop(self, drain_s: float = GATE_DRAIN_S) -> None:
        """Finish the queued events (at most ``drain_s``), then stop the worker. Idempotent.

        Events still queued after the deadline are refused (``GateBusy``): their devices were not
        told they were taken, so pushing devices send them again to the next run.
        """
        task, self._task = self._task, None
        if task is None:
            return
        waiting = [entry.done for gate in self._gates.values() for entry in gate.entries]
        if self._current is not None:
            waiting.append(self._current.done)
        if waiting and not task.done():
            await asyncio.wait(waiting, timeout=drain_s)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for gate in self._gates.values():
            while gate.entries:
                entry = gate.entries.popleft()
                if not entry.done.done():
                    entry.done.set_exception(GateBusy("gridwatch is stopping", self._retry_after_s))
                    entry.done.exception()  # retrieved: a sender that left already must not log it
        self._turns.clear()

    def _next(self) -> tuple[_GateQueue, _Entry] | None:
        while self._turns:
            gate_id = self._turns.popleft()
            gate = self._gates[gate_id]
            if not gate.entries:
                continue  # its events were withdrawn
            entry = gate.entries.popleft()
            if gate.entries:
                self._turns.append(gate_id)  # back of the line: one event per gate per turn
            return gate, entry
        return None

    async def _work(self) -> None:
        while True:
            taken = self._next()
            if taken is None:
                self._ready.clear()
                await self._ready.wait()
                continue
            gate, entry = taken
            if entry.done.done():
                continue  # withdrawn by its sender
            await self._run(gate, entry)

    async def _run(self, gate: _GateQueue, entry: _Entry) -> None:
        event = entry.event
        gate.stats.in_progress += 1
        self._current = entry
        try:
            await self._process(event)
        except asyncio.CancelledError:
            if not entry.done.done():
                entry.done.set_exception(GateBusy("gridwatch is stopping", self._retry_after_s))
                entry.done.exception()
            raise
        except Exception as exc:  # one bad event must not stop the gates
            gate.stats.failed += 1
            self._count_failure(event)
            # The type only: a message could quote the snapshot's bytes.
            log.error("gate %s: recognition failed on event %s: %s", event.gate_id, event.serial, type(exc).__name__)
            if not entry.done.done():
                entry.done.set_exception(exc)
                entry.done.exception()
        else:
            gate.stats.processed += 1
            if event.event_id is not None:
                self._failures.pop((event.gate_id, event.event_id), None)
            if not entry.done.done():
                entry.done.set_result(None)
        finally:
            gate.stats.in_progress -= 1
            self._current = None

    def _is_poison(self, event: GateEvent) -> bool:
        if event.event_id is None:
            return False  # without the device's serial, a resend cannot be told from a new event
        return self._failures.get((event.gate_id, event.event_id), 0) >= self._poison_after

    def _count_failure(self, event: GateEvent) -> None:
        if event.event_id is None:
            return
        key = (event.gate_id, event.event_id)
        self._failures[key] = self._failures.get(key, 0) + 1
        self._failures.move_to_end(key)
        while len(self._failures) > _FAILURES_KEPT:
            self._failures.popitem(last=False)
