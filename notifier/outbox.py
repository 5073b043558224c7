"""The durable outbox: alerts and their per-sink delivery state in one SQLite file.

An alert is stored once per ``alert_id`` (a replay adds nothing) together with one delivery row
for each sink registered at that moment; a sink registered later only gets later alerts. Rows stay
pending until ``mark_delivered``, across process restarts. Only the alert's JSON is stored: the
Alert contract carries no embeddings and no image bytes.

The methods block (SQLite with ``synchronous=FULL`` fsyncs each commit); async callers run them in
a worker thread. One connection is shared under a lock, so any thread may call.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gridwatch.core.events import Alert
from gridwatch.core.sqlite import open_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL UNIQUE,
    alert_json TEXT NOT NULL,
    added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    alert_id TEXT NOT NULL REFERENCES alerts(alert_id),
    sink TEXT NOT NULL,
    delivered_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    PRIMARY KEY (alert_id, sink)
);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (sink, delivered_at, next_attempt_at);
"""
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


class Outbox:
    """See the module docstring. ``sinks`` are the names that new alerts get delivery rows for."""

    def __init__(self, path: Path, sinks: Iterable[str] = ()) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._sinks: tuple[str, ...] = tuple(dict.fromkeys(sinks))
        # isolation_level=None: explicit transactions below, so each add is one atomic commit.
        self._db: sqlite3.Connection | None = open_database(path, _SCHEMA)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def sinks(self) -> tuple[str, ...]:
        return self._sinks

    def set_sinks(self, names: Iterable[str]) -> None:
        """The sinks that alerts added from now on are delivered to."""
        with self._lock:
            self._sinks = tuple(dict.fromkeys(names))

    def add(self, alert: Alert, *, now: float | None = None) -> bool:
        """Store the alert with a pending row per sink; False (and no change) for a known alert_id."""
        at = time.time() if now is None else now
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO alerts (alert_id, alert_json, added_at) VALUES (?, ?, ?)",
                    (alert.alert_id, alert.to_json(), at),
                )
                added = cursor.rowcount == 1
                if added:
                    db.executemany(
                        "INSERT INTO deliveries (alert_id, sink, next_attempt_at) VALUES (?, ?, ?)",
                        [(alert.alert_id, sink, at) for sink in self._sinks],
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return added

    def pending(self, sink_name: str, limit: int = 100, *, due_at: float | None = None) -> list[PendingDelivery]:
        """Undelivered alerts for a sink, oldest first; with ``due_at`` only those due by then."""
        query = (
            "SELECT a.seq, d.alert_id, d.sink, a.alert_json, d.attempts, d.next_attempt_at, d.last_error "
            "FROM deliveries d JOIN alerts a ON a.alert_id = d.alert_id "
            "WHERE d.sink = ? AND d.delivered_at IS NULL"
        )
        params: list[object] = [sink_name]
        if due_at is not None:
            query += " AND d.next_attempt_at <= ?"
            params.append(due_at)
        query += " ORDER BY a.seq LIMIT ?"
        params.append(max(int(limit), 0))
        with self._lock:
            rows = self._conn().execute(query, params).fetchall()
        return [PendingDelivery(*row) for row in rows]

    def next_due(self, sink_name: str) -> float | None:
        """When the next undelivered row of a sink is due, or None when nothing is pending."""
        with self._lock:
            row = (
                self._conn()
                .execute(
                    "SELECT MIN(next_attempt_at) FROM deliveries WHERE sink = ? AND delivered_at IS NULL",
                    (sink_name,),
                )
                .fetchone()
            )
        return None if row is None or row[0] is None else float(row[0])

    def count_pending(self, sink_name: str | None = None) -> int:
        query = "SELECT COUNT(*) FROM deliveries WHERE delivered_at IS NULL"
        params: tuple[object, ...] = ()
        if sink_name is not None:
            query += " AND sink = ?"
            params = (sink_name,)
        with self._lock:
            return int(self._conn().execute(query, params).fetchone()[0])

    def mark_delivered(self, alert_id: str, sink_name: str, *, now: float | None = None) -> bool:
        """Record a delivery; False when there was no pending row (unknown or already delivered)."""
        at = time.time() if now is None else now
        with self._lock:
            cursor = self._conn().execute(
                "UPDATE deliveries SET delivered_at = ?, attempts = attempts + 1, last_error = NULL "
                "WHERE alert_id = ? AND sink = ? AND delivered_at IS NULL",
                (at, alert_id, sink_name),
            )
            return cursor.rowcount == 1

    def mark_failed(self, alert_id: str, sink_name: str, error: str, next_attempt_at: float) -> int:
        """Record a failed attempt and when to try again; returns the attempts so far (0: no such row)."""
        with self._lock:
            db = self._conn()
            cursor = db.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
                "WHERE alert_id = ? AND sink = ? AND delivered_at IS NULL",
                (error[:_MAX_ERROR_CHARS], next_attempt_at, alert_id, sink_name),
            )
            if cursor.rowcount != 1:
                return 0
            row = db.execute(
                "SELECT attempts FROM deliveries WHERE alert_id = ? AND sink = ?", (alert_id, sink_name)
            ).fetchone()
            return int(row[0])

    def get(self, alert_id: str) -> Alert | None:
        with self._lock:
            row = self._conn().execute("SELECT alert_json FROM alerts WHERE alert_id = ?", (alert_id,)).fetchone()
        return None if row is None else Alert.model_validate_json(row[0])

    def close(self) -> None:
        """Idempotent."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("outbox is closed")
        return self._db
