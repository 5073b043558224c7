"""Engines from a URL: SQLite (the embedded default) or PostgreSQL through psycopg 3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import URL, Engine, event, make_url

from gridwatch.core.redact import mask_url

SQLITE_BUSY_TIMEOUT_S = 10.0
POSTGRES_DRIVER = "postgresql+psycopg"


# Execution option of a connection whose transaction only reads (``Database.transaction(read_only=True)``).
READ_ONLY_OPTION = "gridwatch_read_only"


def normalise_url(url: str | URL) -> URL:
    """``postgresql://`` and ``postgres://`` mean psycopg 3 (the driver gridwatch ships)."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername=POSTGRES_DRIVER)
    return parsed


def display_url(url: str | URL) -> str:
    """The URL for messages and logs: never its password."""
    return mask_url(normalise_url(url).render_as_string(hide_password=True))


def create_engine(url: str | URL, *, connect_timeout_s: float = 10.0, pool_size: int = 5) -> Engine:
    """An engine configured for the service; connects lazily (no I/O here).

    SQLite: WAL, ``synchronous=FULL`` (every commit is on disk), foreign keys, ``secure_delete``
    (erased personal data is overwritten, not left in free pages), a busy timeout, and every
    transaction ``BEGIN IMMEDIATE`` (DDL included, so a failed migration rolls back whole; a writer
    never fails on upgrading a read lock). PostgreSQL: psycopg 3, connections checked before use
    (a restarted server costs no failed call), a connect timeout.
    Statement parameters never appear in errors or logs (``hide_parameters``): they hold names and
    embeddings.
    """
    parsed = normalise_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend == "postgresql":
        if parsed.drivername != POSTGRES_DRIVER:
            raise ValueError(f"unsupported PostgreSQL driver {parsed.drivername}: use {POSTGRES_DRIVER}://")
        return sa.create_engine(
            parsed,
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=max(connect_timeout_s, 1.0),
            hide_parameters=True,
            connect_args={"connect_timeout": max(1, round(connect_timeout_s))},
        )
    raise ValueError(f"unsupported database {parsed.drivername}: use sqlite:/// or {POSTGRES_DRIVER}://")


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url,
        hide_parameters=True,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver: SQLAlchemy's "begin" event below opens every transaction itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # A read-only transaction starts deferred: in WAL mode a reader never waits for the writer, so
        # a read made while this process holds the write lock elsewhere (the rule stage reading a
        # person's conditions inside its own transaction) cannot deadlock on the busy timeout.
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine
