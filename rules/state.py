"""Rule state that survives a restart (SQLite): last alert per (rule, person), suppressed counts."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from gridwatch.core.sqlite import open_database

SCHEMA = """
CREATE TABLE IF NOT EXISTS cooldowns (
    rule          TEXT NOT NULL,
    person_id     TEXT NOT NULL,
    last_alert_at TEXT NOT NULL,
    severity_rank INTEGER NOT NULL,
    suppressed    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (rule, person_id)
);
"""


@dataclass(frozen=True, slots=True)
class Cooldown:
    last_alert_at: dt.datetime
    severity_rank: int
    suppressed: int


class RuleState:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        if self._conn is not None:
            return
        self._conn = open_database(self._path, SCHEMA)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _db(self) -> sqlite3.Connection:
        self.open()
        assert self._conn is not None
        return self._conn

    def cooldown(self, rule: str, person_id: str) -> Cooldown | None:
        with self._lock:
            row = (
                self._db()
                .execute(
                    "SELECT last_alert_at, severity_rank, suppressed FROM cooldowns WHERE rule = ? AND person_id = ?",
                    (rule, person_id),
                )
                .fetchone()
            )
        return None if row is None else Cooldown(dt.datetime.fromisoformat(row[0]), int(row[1]), int(row[2]))

    def record_alert(self, rule: str, person_id: str, at: dt.datetime, severity_rank: int) -> None:
        with self._lock:
            self._db().execute(
                "INSERT INTO cooldowns VALUES (?, ?, ?, ?, 0) ON CONFLICT(rule, person_id) DO UPDATE SET "
                "last_alert_at = excluded.last_alert_at, severity_rank = excluded.severity_rank, suppressed = 0",
                (rule, person_id, at.isoformat(), severity_rank),
            )

    def clear(self, rule: str, person_id: str) -> None:
        with self._lock:
            self._db().execute("DELETE FROM cooldowns WHERE rule = ? AND person_id = ?", (rule, person_id))

    def record_suppressed(self, rule: str, person_id: str) -> None:
        with self._lock:
            self._db().execute(
                "UPDATE cooldowns SET suppressed = suppressed + 1 WHERE rule = ? AND person_id = ?",
                (rule, person_id),
            )
