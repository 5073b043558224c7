"""The durable outbox: alerts and their per-sink delivery state, in the one database.

An alert is stored once per ``alert_id`` (a replay adds nothing) together with one delivery row
for each sink registered at that moment; a sink registered later only gets later alerts. Rows stay
pending until ``mark_delivered``, across process restarts. Only the alert's JSON is stored: the
Alert contract carries no embeddings and no image bytes.

A delivery the sink refuses for good is ``park``ed: moved, in one transaction, from ``deliveries`` to
``parked_deliveries`` with its error, time and attempts, so it no longer counts as pending and stops
blocking the sink. It stays there for an operator (``parked``, ``requeue``).

The methods block (each is one committed transaction; SQLite fsyncs it): async callers run them in
a worker thread; any thread may call. When the database drops, a call waits and retries (see
``gridwatch.core.db.Database.transaction``) and raises ``DatabaseUnavailableError`` only after the
retry window: the alert is then not stored, and the caller still holds it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Connection, func, select

from gridwatch.core.db import Database, DatabaseClosedError
from gridwatch.core.db.schema import alerts, deliveries, parked_deliveries
from gridwatch.core.db.sql import insert
from gridwatch.core.events import Alert

T = TypeVar("T")
_MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    """One alert not yet delivered to one sink."""

    seq: int
    alert_id: str
    sink: str
    alert_json: str
    attempts: int
    next_attempt_at: float
    last_error: str | None

    def alert(self) -> Alert:
        return Alert.model_validate_json(self.alert_json)


@dataclass(frozen=True, slots=True)
class ParkedDelivery:
    """One alert set aside for one sink, with why and when."""

    alert_id: str
    sink: str
    parked_at: float
    attempts: int
    error: str


class Outbox:
    """See the module docstring. ``sinks`` are the names that new alerts get delivery rows for.

    No I/O in ``__init__``: ``open()`` (or ``with Outbox(...)``) opens the shared database;
    ``close()`` is idempotent and leaves the database to its owner.
    """

    def __init__(self, database: Database, sinks: Iterable[str] = ()) -> None:
        self._db = database
        self._lock = threading.Lock()
        self._sinks: tuple[str, ...] = tuple(dict.fromkeys(sinks))
        self._open = False

    @property
    def database(self) -> Database:
        return self._db

    @property
    def sinks(self) -> tuple[str, ...]:
        return self._sinks

    def open(self) -> None:
        self._db.open()
        self._open = True

    def close(self) -> None:
        """Idempotent."""
        self._open = False

    def __enter__(self) -> Outbox:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_sinks(self, names: Iterable[str]) -> None:
        """The sinks that alerts added from now on are delivered to."""
        with self._lock:
            self._sinks = tuple(dict.fromkeys(names))

    def add(self, alert: Alert, *, now: float | None = None, also: Callable[[Connection], None] | None = None) -> bool:
        """Store the alert with a pending row per sink; False (and no change) for a known alert_id.

        ``also(connection)`` runs in the same transaction when the alert is new (the alert's case opens
        with it: an alert never exists without its case, nor a case without its alert).
        """
        at = time.time() if now is None else now
        alert_json = alert.to_json()
        with self._lock:
            sinks = self._sinks

        attempts = 0

        def add(conn: Connection) -> bool:
            nonlocal attempts
            attempts += 1
            inserted = conn.execute(
                insert(conn, alerts)
                .values(alert_id=alert.alert_id, alert_json=alert_json, added_at=at)
                .on_conflict_do_nothing(index_elements=[alerts.c.alert_id])
                .returning(alerts.c.seq)
            ).first()
            if inserted is None:
                if attempts == 1:
                    return False
                # Known already, on a retry: if it is this very call's row (an earlier attempt committed,
                # then the connection dropped before the answer came back), it is still news to the caller.
                row = conn.execute(
                    select(alerts.c.alert_json, alerts.c.added_at).where(alerts.c.alert_id == alert.alert_id)
                ).one()
                return bool(row[0] == alert_json and row[1] == at and not self._delivered_any(conn, alert.alert_id))
            if sinks:
                conn.execute(
                    deliveries.insert(),
                    [{"alert_id": alert.alert_id, "sink": sink, "next_attempt_at": at} for sink in sinks],
                )
            if also is not None:
                also(conn)
            return True

        return self._run(add, "outbox add")

    def pending(self, sink_name: str, limit: int = 100, *, due_at: float | None = None) -> list[PendingDelivery]:
        """Undelivered alerts for a sink, oldest first; with ``due_at`` only those due by then."""
        query = (
            select(
                alerts.c.seq,
                deliveries.c.alert_id,
                deliveries.c.sink,
                alerts.c.alert_json,
                deliveries.c.attempts,
                deliveries.c.next_attempt_at,
                deliveries.c.last_error,
            )
            .join(alerts, alerts.c.alert_id == deliveries.c.alert_id)
            .where(deliveries.c.sink == sink_name, deliveries.c.delivered_at.is_(None))
            .order_by(alerts.c.seq)
            .limit(max(int(limit), 0))
        )
        if due_at is not None:
            query = query.where(deliveries.c.next_attempt_at <= due_at)
        rows = self._run(lambda conn: conn.execute(query).all(), "outbox read")
        return [PendingDelivery(int(r[0]), r[1], r[2], r[3], int(r[4]), float(r[5]), r[6]) for r in rows]

    def next_due(self, sink_name: str) -> float | None:
        """When the next undelivered row of a sink is due, or None when nothing is pending."""
        query = select(func.min(deliveries.c.next_attempt_at)).where(
            deliveries.c.sink == sink_name, deliveries.c.delivered_at.is_(None)
        )
        value = self._run(lambda conn: conn.execute(query).scalar(), "outbox read")
        return None if value is None else float(value)

    def count_pending(self, sink_name: str | None = None) -> int:
        query = select(func.count()).select_from(deliveries).where(deliveries.c.delivered_at.is_(None))
        if sink_name is not None:
            query = query.where(deliveries.c.sink == sink_name)
        return int(self._run(lambda conn: conn.execute(query).scalar_one(), "outbox read"))

    def oldest_pending_age(self, *, now: float | None = None) -> float | None:
        """Seconds since the oldest alert with an undelivered row was added, or None when nothing is pending."""
        query = (
            select(func.min(alerts.c.added_at))
            .join(deliveries, deliveries.c.alert_id == alerts.c.alert_id)
            .where(deliveries.c.delivered_at.is_(None))
        )
        oldest = self._run(lambda conn: conn.execute(query).scalar(), "outbox read")
        if oldest is None:
            return None
        return max((time.time() if now is None else now) - float(oldest), 0.0)

    def mark_delivered(self, alert_id: str, sink_name: str, *, now: float | None = None) -> bool:
        """Record a delivery; False when there was no pending row (unknown or already delivered)."""
        at = time.time() if now is None else now
        stmt = (
            deliveries.update()
            .where(
                deliveries.c.alert_id == alert_id,
                deliveries.c.sink == sink_name,
                deliveries.c.delivered_at.is_(None),
            )
            .values(delivered_at=at, attempts=deliveries.c.attempts + 1, last_error=None)
        )

        attempts = 0

        def mark(conn: Connection) -> bool:
            nonlocal attempts
            attempts += 1
            if conn.execute(stmt).rowcount == 1:
                return True
            if attempts == 1:
                return False
            # A retried call whose first attempt committed (the answer was lost): the row carries this time.
            delivered = conn.execute(
                select(deliveries.c.delivered_at).where(
                    deliveries.c.alert_id == alert_id, deliveries.c.sink == sink_name
                )
            ).scalar()
            return delivered is not None and float(delivered) == at

        return self._run(mark, "outbox delivery")

    def mark_failed(self, alert_id: str, sink_name: str, error: str, next_attempt_at: float) -> int:
        """Record a failed attempt and when to try again; returns the attempts so far (0: no such row)."""
        stmt = (
            deliveries.update()
            .where(
                deliveries.c.alert_id == alert_id,
                deliveries.c.sink == sink_name,
                deliveries.c.delivered_at.is_(None),
            )
            .values(
                attempts=deliveries.c.attempts + 1,
                last_error=error[:_MAX_ERROR_CHARS],
                next_attempt_at=next_attempt_at,
            )
        )

        def mark(conn: Connection) -> int:
            if conn.execute(stmt).rowcount != 1:
                return 0
            return int(
                conn.execute(
                    select(deliveries.c.attempts).where(
                        deliveries.c.alert_id == alert_id, deliveries.c.sink == sink_name
                    )
                ).scalar_one()
            )

        return self._run(mark, "outbox failure")

    def park(self, alert_id: str, sink_name: str, error: str, *, now: float | None = None) -> int:
        """Move a pending delivery to the parked ones; returns its attempts (this one included), 0: no such row."""
        at = time.time() if now is None else now
        pending = (
            select(deliveries.c.attempts)
            .where(
                deliveries.c.alert_id == alert_id,
                deliveries.c.sink == sink_name,
                deliveries.c.delivered_at.is_(None),
            )
            .with_for_update()
        )

        def move(conn: Connection) -> int:
            before = conn.execute(pending).scalar()
            if before is None:
                # Parked already by an earlier attempt of this very call (the answer was lost), or delivered.
                parked = conn.execute(
                    select(parked_deliveries.c.attempts).where(
                        parked_deliveries.c.alert_id == alert_id, parked_deliveries.c.sink == sink_name
                    )
                ).scalar()
                return 0 if parked is None else int(parked)
            attempts = int(before) + 1
            conn.execute(deliveries.delete().where(deliveries.c.alert_id == alert_id, deliveries.c.sink == sink_name))
            conn.execute(
                parked_deliveries.insert().values(
                    alert_id=alert_id, sink=sink_name, parked_at=at, attempts=attempts, error=error[:_MAX_ERROR_CHARS]
                )
            )
            return attempts

        return self._run(move, "outbox park")

    def count_parked(self, sink_name: str | None = None) -> int:
        query = select(func.count()).select_from(parked_deliveries)
        if sink_name is not None:
            query = query.where(parked_deliveries.c.sink == sink_name)
        return int(self._run(lambda conn: conn.execute(query).scalar_one(), "outbox read"))

    def parked_by_sink(self) -> dict[str, int]:
        """Parked deliveries per sink (sinks with none are absent)."""
        query = select(parked_deliveries.c.sink, func.count()).group_by(parked_deliveries.c.sink)
        rows = self._run(lambda conn: conn.execute(query).all(), "outbox read")
        return {str(r[0]): int(r[1]) for r in rows}

    def depth_by_sink(self) -> dict[str, dict[str, int]]:
        """``{"pending": {sink: n}, "parked": {sink: n}}`` for ``/status``: one attempt, no retry window,
        because the caller is the event loop and must not wait out a database outage."""
        pending = (
            select(deliveries.c.sink, func.count())
            .where(deliveries.c.delivered_at.is_(None))
            .group_by(deliveries.c.sink)
        )
        parked = select(parked_deliveries.c.sink, func.count()).group_by(parked_deliveries.c.sink)

        def read(conn: Connection) -> dict[str, dict[str, int]]:
            return {
                "pending": {str(r[0]): int(r[1]) for r in conn.execute(pending)},
                "parked": {str(r[0]): int(r[1]) for r in conn.execute(parked)},
            }

        if not self._open:
            raise DatabaseClosedError("outbox is not open")
        return self._db.transaction(read, what="outbox status", retry_s=0, read_only=True)

    def parked(
        self, sink_name: str | None = None, limit: int = 100, *, alert_id: str | None = None
    ) -> list[ParkedDelivery]:
        """Parked deliveries, oldest parked first."""
        query = (
            select(
                parked_deliveries.c.alert_id,
                parked_deliveries.c.sink,
                parked_deliveries.c.parked_at,
                parked_deliveries.c.attempts,
                parked_deliveries.c.error,
            )
            .order_by(parked_deliveries.c.parked_at, parked_deliveries.c.alert_id)
            .limit(max(int(limit), 0))
        )
        if sink_name is not None:
            query = query.where(parked_deliveries.c.sink == sink_name)
        if alert_id is not None:
            query = query.where(parked_deliveries.c.alert_id == alert_id)
        rows = self._run(lambda conn: conn.execute(query).all(), "outbox read")
        return [ParkedDelivery(r[0], r[1], float(r[2]), int(r[3]), r[4]) for r in rows]

    def requeue(self, alert_id: str, sink_name: str, *, now: float | None = None) -> bool:
        """Move a parked delivery back to pending (attempts from 0, due now); False when none was parked."""
        at = time.time() if now is None else now
        match = (parked_deliveries.c.alert_id == alert_id) & (parked_deliveries.c.sink == sink_name)

        def move(conn: Connection) -> bool:
            if conn.execute(parked_deliveries.delete().where(match)).rowcount != 1:
                return False
            conn.execute(deliveries.insert().values(alert_id=alert_id, sink=sink_name, next_attempt_at=at))
            return True

        return self._run(move, "outbox requeue")

    def get(self, alert_id: str) -> Alert | None:
        query = select(alerts.c.alert_json).where(alerts.c.alert_id == alert_id)
        text = self._run(lambda conn: conn.execute(query).scalar(), "outbox read")
        return None if text is None else Alert.model_validate_json(text)

    @staticmethod
    def _delivered_any(conn: Connection, alert_id: str) -> bool:
        query = (
            select(func.count())
            .select_from(deliveries)
            .where(deliveries.c.alert_id == alert_id, deliveries.c.delivered_at.is_not(None))
        )
        return bool(conn.execute(query).scalar_one())

    def _run(self, fn: Callable[[Connection], T], what: str) -> T:
        if not self._open:
            raise DatabaseClosedError("outbox is not open")
        return self._db.transaction(fn, what=what)
