"""One way to open the service's SQLite files (registry store, rule state, outbox)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_database(path: Path, schema: str, *, secure_delete: bool = False) -> sqlite3.Connection:
    """WAL, fsync on every commit, foreign keys on, the schema applied.

    Autocommit mode (``isolation_level=None``): callers open explicit transactions. One connection
    is shared across threads under the caller's lock. ``secure_delete`` overwrites deleted rows,
    for files that hold personal data that must be erasable.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    if secure_delete:
        conn.execute("PRAGMA secure_delete=ON")
    conn.executescript(schema)
    return conn
