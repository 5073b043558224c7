"""Import of the three SQLite files of gridwatch ≤ 0.1 into the one database, once.

Before the one database a site kept ``registry.sqlite3``, ``rule_state.sqlite3`` and ``outbox.sqlite3``
in ``service.data_dir``. On start every such file found there is read and its rows are inserted (in the
caller's transaction, after the migrations: all of it or nothing); after the commit the file is renamed
``<name>.migrated`` so it is never imported again and can be erased by the operator once checked.
Rows already present (a second import after a rename that failed) are skipped, not duplicated.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, select

from gridwatch.core.db import schema
from gridwatch.core.db.sql import insert, sync_sequence

log = logging.getLogger(__name__)

REGISTRY_FILE = "registry.sqlite3"
RULE_STATE_FILE = "rule_state.sqlite3"
OUTBOX_FILE = "outbox.sqlite3"
LEGACY_FILES = (REGISTRY_FILE, RULE_STATE_FILE, OUTBOX_FILE)
MIGRATED_SUFFIX = ".migrated"


@dataclass
class LegacyImport:
    """What one start imported: file → rows per table."""

    files: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.files)


def legacy_files(directory: Path) -> list[Path]:
    return [directory / name for name in LEGACY_FILES if (directory / name).is_file()]


def import_legacy(connection: Connection, directory: Path) -> LegacyImport:
    """Insert the rows of every legacy file in ``directory`` (nothing is renamed yet: see ``finish``)."""
    result = LegacyImport()
    for path in legacy_files(directory):
        with _open(path) as legacy:
            if path.name == REGISTRY_FILE:
                _copy_registry(connection, legacy, result)
            elif path.name == RULE_STATE_FILE:
                _copy_rule_state(connection, legacy, result)
            else:
                _copy_outbox(connection, legacy, result)
        result.files.append(path)
    return result


def finish(imported: LegacyImport) -> None:
    """After the commit: rename the imported files (and any WAL leftovers) to ``*.migrated``."""
    for path in imported.files:
        for suffix in ("", "-wal", "-shm"):
            part = path.with_name(path.name + suffix)
            if part.exists():
                part.replace(part.with_name(part.name + MIGRATED_SUFFIX))
    if imported:
        log.info(
            "imported %s into the database (%s); the old files are renamed *%s",
            ", ".join(p.name for p in imported.files),
            ", ".join(f"{table} {n}" for table, n in sorted(imported.rows.items())),
            MIGRATED_SUFFIX,
        )


@contextmanager
def _open(path: Path) -> Iterator[sqlite3.Connection]:
    # A read-write open: SQLite folds a left-over WAL into the file when the last connection closes.
    with closing(sqlite3.connect(path)) as conn:
        yield conn


def _rows(legacy: sqlite3.Connection, table: str, columns: str, order: str = "rowid") -> list[tuple[Any, ...]]:
    exists = legacy.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    if exists is None:
        return []
    return legacy.execute(f"SELECT {columns} FROM {table} ORDER BY {order}").fetchall()  # noqa: S608 (fixed names)


def _time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _insert(connection: Connection, table: Table, rows: list[dict[str, Any]], result: LegacyImport) -> None:
    if not rows:
        return
    connection.execute(insert(connection, table).on_conflict_do_nothing(), rows)
    result.rows[table.name] = result.rows.get(table.name, 0) + len(rows)


def _copy_registry(connection: Connection, legacy: sqlite3.Connection, result: LegacyImport) -> None:
    persons = [
        {
            "person_id": r[0],
            "registry": r[1],
            "display_name": r[2],
            "enrolled_at": _time(r[3]),
            "expires_at": _time(r[4]),
        }
        for r in _rows(legacy, "persons", "person_id, registry, display_name, enrolled_at, expires_at")
    ]
    _insert(connection, schema.persons, persons, result)
    embeddings = [
        {"embedding_id": r[0], "person_id": r[1], "model_id": r[2], "photo_sha256": r[3], "vector": bytes(r[4])}
        for r in _rows(legacy, "embeddings", "embedding_id, person_id, model_id, photo_sha256, vector")
    ]
    _insert(connection, schema.embeddings, embeddings, result)
    sync_sequence(connection, schema.embeddings, "embedding_id")
    if persons or embeddings:
        # A running service reloads its indexes when the registry generation moves.
        connection.execute(
            schema.generations.update()
            .where(schema.generations.c.name == "registry")
            .values(value=schema.generations.c.value + 1)
        )


def _copy_rule_state(connection: Connection, legacy: sqlite3.Connection, result: LegacyImport) -> None:
    rows = [
        {
            "rule": r[0],
            "person_id": r[1],
            "partition": 0,
            "last_alert_at": _time(r[2]),
            "severity_rank": int(r[3]),
            "suppressed": int(r[4]),
        }
        for r in _rows(legacy, "cooldowns", "rule, person_id, last_alert_at, severity_rank, suppressed")
    ]
    _insert(connection, schema.cooldowns, rows, result)


def _copy_outbox(connection: Connection, legacy: sqlite3.Connection, result: LegacyImport) -> None:
    # Keep the legacy order numbers unless the database already holds alerts (then new ones, same order).
    keep_seq = connection.execute(select(schema.alerts.c.seq).limit(1)).first() is None
    alerts = [
        {"seq": r[0], "alert_id": r[1], "alert_json": r[2], "added_at": float(r[3])}
        if keep_seq
        else {"alert_id": r[1], "alert_json": r[2], "added_at": float(r[3])}
        for r in _rows(legacy, "alerts", "seq, alert_id, alert_json, added_at", order="seq")
    ]
    _insert(connection, schema.alerts, alerts, result)
    sync_sequence(connection, schema.alerts, "seq")
    deliveries = [
        {
            "alert_id": r[0],
            "sink": r[1],
            "delivered_at": None if r[2] is None else float(r[2]),
            "attempts": int(r[3]),
            "next_attempt_at": float(r[4]),
            "last_error": r[5],
        }
        for r in _rows(legacy, "deliveries", "alert_id, sink, delivered_at, attempts, next_attempt_at, last_error")
    ]
    _insert(connection, schema.deliveries, deliveries, result)
