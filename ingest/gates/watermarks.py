"""A stream gate's serial watermark: where the event-history search resumes after a restart.

Serials live in memory (``SerialTracker``), so a restart used to forget where the device was: the
events it logged while gridwatch was down were neither searched nor counted. The watermark is the
highest serial with nothing at or below it still being handed over — an event whose hand-over is
in flight holds it back, so a crash never skips an event that was not yet durable. Events the
handler refused (dropped, counted) do not hold it back: they were given up, not forgotten.

Saving is coalesced: one writer task persists the newest value off the event loop, so a burst of
events costs one write, and a slow database never blocks the stream. After a crash the saved
value may lag; searching a little too far back is harmless (the same device events make the same
sightings and alert ids, which consumers deduplicate).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

from sqlalchemy import Connection, select

from gridwatch.core.db import Database, DatabaseUnavailableError
from gridwatch.core.db.schema import gate_watermarks
from gridwatch.core.db.sql import insert
from gridwatch.core.interfaces import SerialWatermarks

log = logging.getLogger(__name__)


class DatabaseWatermarks:
    """``SerialWatermarks`` in the one database."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def load(self, gate_id: str) -> int | None:
        def read(connection: Connection) -> int | None:
            serial = connection.execute(
                select(gate_watermarks.c.serial).where(gate_watermarks.c.gate_id == gate_id)
            ).scalar_one_or_none()
            return None if serial is None else int(serial)

        return self._database.transaction(read, what="gate watermark read", read_only=True)

    def save(self, gate_id: str, serial: int) -> None:
        now = dt.datetime.now(dt.UTC)

        def write(connection: Connection) -> None:
            statement = insert(connection, gate_watermarks).values(gate_id=gate_id, serial=serial, updated_at=now)
            connection.execute(
                statement.on_conflict_do_update(
                    index_elements=[gate_watermarks.c.gate_id], set_={"serial": serial, "updated_at": now}
                )
            )

        self._database.transaction(write, what="gate watermark write")


class GateWatermark:
    """The watermark of one gate.

    ``begin``/``end`` bracket each event's hand-over; ``hold``/``settle`` bracket a range of serials the
    event-history search has still to cover (a gap, or what the device logged while nobody listened), so
    the watermark never passes serials that are neither handed over nor searched. ``load`` at start,
    ``stop`` saves the final value.
    """

    def __init__(self, gate_id: str, store: SerialWatermarks | None) -> None:
        self._gate_id = gate_id
        self._store = store
        self._held: dict[int, int] = {}  # serial → hand-overs or searches from it still open
        self._done_up_to: int | None = None  # highest serial whose hand-over ended
        self._saved: int | None = None
        self._writer: asyncio.Task[None] | None = None

    @property
    def value(self) -> int | None:
        """Every serial at or below it was handed over, searched or given up; ``None`` before the first."""
        if self._done_up_to is None or not self._held:
            return self._done_up_to
        return min(min(self._held) - 1, self._done_up_to)

    async def load(self) -> int | None:
        """The saved watermark (``None`` without a store, before the first save, or when the database is down)."""
        if self._store is None:
            return None
        try:
            saved = await asyncio.to_thread(self._store.load, self._gate_id)
        except DatabaseUnavailableError as error:
            log.warning("gate %s: serial watermark not readable (%s); missed events not searched", self._gate_id, error)
            return None
        self._saved = saved
        return saved

    def begin(self, serial: int) -> None:
        """An event's hand-over starts."""
        self.hold(serial)

    def end(self, serial: int) -> None:
        """An event's hand-over ended (handed over, or refused and counted)."""
        if self._done_up_to is None or serial > self._done_up_to:
            self._done_up_to = serial
        self.settle(serial)

    def hold(self, first: int) -> None:
        """Serials from ``first`` on are not settled yet (an event in flight, a range to search)."""
        self._held[first] = self._held.get(first, 0) + 1

    def settle(self, first: int) -> None:
        """What ``hold(first)`` held is settled."""
        left = self._held.get(first, 0) - 1
        if left > 0:
            self._held[first] = left
        else:
            self._held.pop(first, None)
        self._schedule()

    async def stop(self) -> None:
        """Waits for the writer and saves the final value."""
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        await self._write()

    def _schedule(self) -> None:
        if self._store is None or (self._writer is not None and not self._writer.done()):
            return
        value = self.value
        if value is None or (self._saved is not None and value <= self._saved):
            return
        self._writer = asyncio.create_task(self._write(), name=f"gate-{self._gate_id}-watermark")

    async def _write(self) -> None:
        # Until nothing newer is left: values that arrive while one write runs are coalesced into the next.
        while self._store is not None:
            value = self.value
            if value is None or (self._saved is not None and value <= self._saved):
                return
            try:
                await asyncio.to_thread(self._store.save, self._gate_id, value)
            except DatabaseUnavailableError as error:
                # The next event retries; a restart before then searches from an older serial (harmless).
                log.warning("gate %s: serial watermark not saved (%s)", self._gate_id, error)
                return
            self._saved = value
