"""Make erased rows leave the database files now, not at the next shutdown.

A committed DELETE is not yet gone from disk. On SQLite (WAL mode) the deleted bytes stay in the WAL:
in the frames that wrote them and, until a checkpoint, as the live version of their pages;
``secure_delete`` zeroes them in the main file only when the checkpoint copies the new pages there. A
``TRUNCATE`` checkpoint copies every frame and empties the WAL file; it can only finish when no
connection (of any process, e.g. the running service) reads an older snapshot, so it waits for them
briefly. On PostgreSQL the deleted tuples stay in the table's heap (and TOAST) files until a vacuum; a
plain ``VACUUM`` only marks their space free (the bytes stay in the page), so ``VACUUM FULL`` rewrites the
table into new files and drops the old ones. It cannot run inside a transaction, hence an autocommit
connection. What it cannot reach: the server's own WAL segments (recycled after checkpoints) and
backups; there the lawful-use encryption of the vectors is the answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from sqlalchemy import Engine, Table

from gridwatch.core.db.engine import SQLITE_BUSY_TIMEOUT_S

log = logging.getLogger(__name__)

RETRY_DELAY_S = 0.05


def reclaim(engine: Engine, tables: Sequence[Table], *, wait_s: float) -> bool:
    """Rewrite the database files so that rows deleted from ``tables`` are gone; True when done.

    Waits at most about ``wait_s`` for other connections' snapshots to end (SQLite); False (and a
    warning) if they did not: the next successful reclaim erases the rows then.
    """
    backend = engine.dialect.name
    if backend == "sqlite":
        return _checkpoint(engine, wait_s)
    if backend == "postgresql":
        _vacuum(engine, tables)
        return True
    return False


def _checkpoint(engine: Engine, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    # The raw DBAPI connection (autocommit, see engine.py): SQLAlchemy would wrap the pragma in a
    # transaction, and a checkpoint inside one cannot complete.
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            # The busy handler waits for readers and the writer lock; bound it to what the caller allows.
            cursor.execute(f"PRAGMA busy_timeout={max(1, int(wait_s * 1000))}")
            try:
                while True:
                    cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    row = cursor.fetchone()
                    # (busy, WAL frames, frames checkpointed); (0, -1, -1) when not in WAL mode.
                    if row is not None and int(row[0]) == 0:
                        return True
                    if time.monotonic() >= deadline:
                        log.warning(
                            "erased rows are still in the SQLite WAL: another connection holds an older snapshot "
                            "(the next checkpoint erases them)"
                        )
                        return False
                    time.sleep(RETRY_DELAY_S)
            finally:
                cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        finally:
            cursor.close()
    finally:
        raw.close()


def _vacuum(engine: Engine, tables: Sequence[Table]) -> None:
    with engine.connect() as connection:
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        for table in tables:
            # FULL locks the table while it is rewritten: the registry tables are small (a few KB a
            # person) and erasures rare, so the service's reads wait milliseconds.
            autocommit.exec_driver_sql(f'VACUUM FULL "{table.name}"')
