"""What every gate dialect shares: health counters, door directions, device times, rejections."""

from __future__ import annotations

import datetime as dt
import logging
from collections import deque
from zoneinfo import ZoneInfo

from gridwatch.core.config.gates import Direction, GateConfig
from gridwatch.core.interfaces import SourceState, SourceStatus
from gridwatch.core.metrics import GATE_EVENTS, GATE_REJECTIONS

log = logging.getLogger(__name__)


class PayloadRejected(ValueError):
    """A gate payload that cannot be used; the message says why, in words safe to return and log."""

    def __init__(self, reason: str, *, status_code: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


class GateHealth:
    """Health of one gate, shown in the service status next to the cameras; its events and
    rejections also move the gate's metrics (``gridwatch.core.metrics``)."""

    def __init__(self, gate_id: str, kind: str) -> None:
        self._status = SourceStatus(source_id=gate_id, kind=kind)
        self._events = GATE_EVENTS.labels(gate=gate_id)
        self._rejections = GATE_REJECTIONS.labels(gate=gate_id)
        self._recent: deque[dt.datetime] = deque()
        self._status.extra.update(
            {"connected": False, "heartbeats": 0, "events": 0, "events_per_minute": 0, "rejected": 0}
        )

    @property
    def status(self) -> SourceStatus:
        """The live status; the events-per-minute figure is brought up to date on every read,
        so a gate that went quiet shows 0 instead of its last rate."""
        self._prune(dt.datetime.now(dt.UTC))
        return self._status

    def _prune(self, now: dt.datetime) -> None:
        while self._recent and now - self._recent[0] > dt.timedelta(minutes=1):
            self._recent.popleft()
        self._status.extra["events_per_minute"] = len(self._recent)

    def connected(self) -> None:
        if self.status.state is not SourceState.ONLINE:
            log.info("gate %s connected", self.status.source_id)
        self.status.state = SourceState.ONLINE
        self.status.extra["connected"] = True

    def disconnected(self, reason: str) -> None:
        if self.status.state is SourceState.ONLINE:
            log.warning("gate %s disconnected: %s", self.status.source_id, reason)
            self.status.reconnects += 1
        self.status.state = SourceState.OFFLINE
        self.status.extra["connected"] = False
        self.status.last_error = reason

    def stopped(self) -> None:
        self.status.state = SourceState.STOPPED
        self.status.extra["connected"] = False

    def heartbeat(self) -> None:
        self.status.extra["heartbeats"] = int(self.status.extra["heartbeats"]) + 1  # type: ignore[call-overload]

    def event(self, now: dt.datetime | None = None) -> None:
        now = now or dt.datetime.now(dt.UTC)
        self.status.last_frame_at = now
        self.status.frames_in += 1
        self.status.extra["events"] = int(self.status.extra["events"]) + 1  # type: ignore[call-overload]
        self._events.inc()
        self._recent.append(now)
        self._prune(now)

    def rejected(self, reason: str) -> None:
        self.status.extra["rejected"] = int(self.status.extra["rejected"]) + 1  # type: ignore[call-overload]
        self._rejections.inc()
        self.status.last_error = reason
        log.warning("gate %s: rejected payload: %s", self.status.source_id, reason)


def direction_for(config: GateConfig, door: str | None) -> Direction | None:
    """The configured direction of a door or reader, else the gate's default."""
    if door is not None:
        for entry in config.doors:
            if entry.door == door:
                return entry.direction
    return config.default_direction


# Device times outside these bounds are rejected: a year-1 or year-9999 time with an offset cannot even be
# converted to UTC (OverflowError downstream), and times near the ends of the calendar overflow when rules
# add a cooldown to them. A terminal whose clock was reset reads 1970 or 2000: still inside, still alerted.
EARLIEST_DEVICE_TIME = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST_DEVICE_TIME = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


def device_time(value: str | int | float | None, config: GateConfig, *, received_at: dt.datetime) -> dt.datetime:
    """A timezone-aware device time: ISO 8601 (with or without offset) or Unix seconds.

    Times without an offset are in the gate's configured zone. A missing time falls back to the
    receive time (the event is still useful; the gap is visible in the sighting). An unreadable
    time, or one outside 1970–2099, is a ``PayloadRejected``: nothing downstream has to guard it.
    """
    if value is None or value == "":
        return received_at
    try:
        if isinstance(value, int | float):
            parsed = dt.datetime.fromtimestamp(float(value), dt.UTC)
        else:
            parsed = dt.datetime.fromisoformat(value.strip().replace(" ", "T", 1))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=ZoneInfo(config.timezone))
        in_utc = parsed.astimezone(dt.UTC)
    # ValueError: not ISO 8601, NaN; OverflowError and OSError: beyond what datetime or the C library hold.
    except (ValueError, OverflowError, OSError):
        raise PayloadRejected(f"unreadable device time {_preview(value)}") from None
    if not EARLIEST_DEVICE_TIME <= in_utc < LATEST_DEVICE_TIME:
        raise PayloadRejected(f"device time {_preview(value)} is outside 1970-01-01 to 2099-12-31")
    return parsed


def _preview(value: str | int | float) -> str:
    # str() of an int with more than 4,300 digits raises ValueError: a reason must never raise.
    if isinstance(value, str):
        return repr(value[:40])
    if isinstance(value, float) or abs(value) < 10**18:
        return repr(value)
    return f"(a number of {value.bit_length()} bits)"
