"""Event serial numbers (ISAPI ``serialNo``, Dahua ``RecNo``): drop duplicates, report gaps.

Devices replay recent events after a reconnect (duplicates) and lose events while nobody listens
(gaps). A bounded memory of recently seen serials tells replays apart; the highest serial so far
reveals gaps. Counters go to the gate's ``status.extra``.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from gridwatch.core.interfaces import SourceStatus
from gridwatch.core.metrics import GATE_DUPLICATES

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SerialVerdict:
    duplicate: bool
    missed: int  # serials skipped between the previous highest serial and this one


class SerialTracker:
    """Recent serials of one gate. ``check()`` looks, ``record()`` remembers (after the event was accepted)."""

    def __init__(self, status: SourceStatus, *, memory: int = 4096) -> None:
        self._status = status
        self._memory = memory
        self._seen: set[int] = set()
        self._order: deque[int] = deque()
        self._highest: int | None = None
        status.extra.update({"duplicates": 0, "serial_gaps": 0, "missed_events": 0, "last_serial": None})

    @property
    def highest(self) -> int | None:
        """The highest serial accepted so far (``None`` before the first)."""
        return self._highest

    def resume(self, serial: int) -> None:
        """After a restart: the highest serial handed over before it (a watermark), for the reconnect search."""
        if self._highest is None:
            self._highest = serial
            self._status.extra["last_serial"] = serial

    def is_duplicate(self, serial: int) -> bool:
        return serial in self._seen

    def duplicate(self, serial: int) -> None:
        """Count a dropped duplicate."""
        self._status.extra["duplicates"] = int(self._status.extra["duplicates"]) + 1  # type: ignore[call-overload]
        GATE_DUPLICATES.labels(gate=self._status.source_id).inc()
        log.info("gate %s: duplicate serial %d dropped", self._status.source_id, serial)

    def record(self, serial: int) -> SerialVerdict:
        """Remember an accepted serial; count and log a gap before it."""
        if serial in self._seen:
            return SerialVerdict(duplicate=True, missed=0)
        self._seen.add(serial)
        self._order.append(serial)
        while len(self._order) > self._memory:
            self._seen.discard(self._order.popleft())
        missed = 0
        if self._highest is not None and serial > self._highest + 1:
            missed = serial - self._highest - 1
            extra = self._status.extra
            extra["serial_gaps"] = int(extra["serial_gaps"]) + 1  # type: ignore[call-overload]
            extra["missed_events"] = int(extra["missed_events"]) + missed  # type: ignore[call-overload]
            log.warning(
                "gate %s: serial gap, %d event(s) missed between %d and %d",
                self._status.source_id,
                missed,
                self._highest,
                serial,
            )
        if self._highest is None or serial > self._highest:
            self._highest = serial
        self._status.extra["last_serial"] = self._highest
        return SerialVerdict(duplicate=False, missed=missed)
