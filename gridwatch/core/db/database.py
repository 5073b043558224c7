"""The one database object shared by the stores: open (migrate, import), transactions with retry, close."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from sqlalchemy import URL, Connection, Engine, Table
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from gridwatch.core.db import legacy
from gridwatch.core.db.engine import READ_ONLY_OPTION, create_engine, display_url, normalise_url
from gridwatch.core.db.errors import (
    DatabaseClosedError,
    DatabaseMigrationError,
    DatabaseUnavailableError,
    DatabaseUnreachableError,
    describe,
)
from gridwatch.core.db.migrate import MIGRATIONS, upgrade_connection
from gridwatch.core.db.reclaim import reclaim

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_INITIAL_S = 0.1
RETRY_MAX_DELAY_S = 5.0
_SQLITE_TRANSIENT = ("locked", "busy", "unable to open", "disk i/o")


class Database:
    """One database (SQLite file or PostgreSQL) shared by the registry store, rule state and outbox.

    No I/O in ``__init__``. ``open()`` creates the engine, checks the database answers
    (``DatabaseUnreachableError``, one line, if not), migrates it to the newest schema and imports
    the legacy SQLite files of ``legacy_dir`` — migrations and import in one transaction
    (``DatabaseMigrationError``, database untouched, if anything fails). ``open()`` and ``close()``
    are idempotent; the stores call ``open()`` themselves, the owner closes.

    ``transaction(fn, what=...)`` runs ``fn(connection)`` in one transaction. When the database drops
    (server restarted, network gone, SQLite file locked) the call waits and retries the whole
    transaction with backoff (``RETRY_INITIAL_S`` doubling up to ``RETRY_MAX_DELAY_S``), logging each
    retry, for at most ``retry_s`` seconds; then ``DatabaseUnavailableError``. Nothing was
    committed by a failed attempt, so ``fn`` must only touch the database (no side effects that
    must not repeat).
    """

    def __init__(
        self,
        url: str | URL,
        *,
        legacy_dir: Path | None = None,
        connect_timeout_s: float = 10.0,
        retry_s: float = 60.0,
        pool_size: int = 5,
        migrations: Path = MIGRATIONS,
    ) -> None:
        self._url = normalise_url(url)
        self._legacy_dir = legacy_dir
        self._connect_timeout_s = connect_timeout_s
        self._retry_s = retry_s
        self._pool_size = pool_size
        self._migrations = migrations
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Database({self.display_url})"

    @property
    def url(self) -> URL:
        return self._url

    @property
    def display_url(self) -> str:
        """The URL without its password, for messages."""
        return display_url(self._url)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._url.get_backend_name()

    @property
    def is_open(self) -> bool:
        return self._engine is not None

    @property
    def engine(self) -> Engine:
        engine = self._engine
        if engine is None:
            raise DatabaseClosedError(f"database {self.display_url} is not open")
        return engine

    def open(self) -> None:
        with self._lock:
            if self._engine is not None:
                return
            try:
                engine = create_engine(self._url, connect_timeout_s=self._connect_timeout_s, pool_size=self._pool_size)
            except (ValueError, ImportError) as exc:
                raise DatabaseUnreachableError(f"cannot use the database {self.display_url}: {describe(exc)}") from exc
            try:
                self._prepare(engine)
            except BaseException:
                engine.dispose()
                raise
            self._engine = engine
            log.info("database %s ready", self.display_url)

    def close(self) -> None:
        """Idempotent."""
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()

    def __enter__(self) -> Database:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(
        self, fn: Callable[[Connection], T], *, what: str, retry_s: float | None = None, read_only: bool = False
    ) -> T:
        """``fn(connection)`` in one transaction, retried while the database is unreachable (see the class).

        ``retry_s`` overrides the retry window of this call (0: one attempt). ``read_only``: ``fn`` only
        reads; on SQLite the transaction then takes no write lock (see ``engine.py``).
        """
        window = self._retry_s if retry_s is None else retry_s
        deadline = time.monotonic() + window
        delay = RETRY_INITIAL_S
        attempt = 0
        while True:
            engine = self.engine
            try:
                with engine.connect() as connection:
                    if read_only:
                        connection = connection.execution_options(**{READ_ONLY_OPTION: True})
                    with connection.begin():
                        return fn(connection)
            except DBAPIError as exc:
                if not self._transient(exc):
                    raise
                attempt += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DatabaseUnavailableError(
                        f"database {self.display_url} unavailable for {what} "
                        f"({attempt} attempt(s) in {window:g}s): {describe(exc)}"
                    ) from exc
                wait = min(delay, remaining)
                log.warning(
                    "database unavailable for %s (%s); attempt %d, retrying in %.1fs",
                    what,
                    describe(exc),
                    attempt,
                    wait,
                )
                time.sleep(wait)
                delay = min(delay * 2, RETRY_MAX_DELAY_S)

    def reclaim(self, tables: Sequence[Table], *, wait_s: float = 5.0) -> bool:
        """After an erasure has committed: rewrite the files so the deleted rows of ``tables`` are gone.

        SQLite: a ``TRUNCATE`` checkpoint, waiting at most ``wait_s`` for other connections' snapshots;
        PostgreSQL: ``VACUUM FULL`` of ``tables`` (see ``reclaim.py``). True when done; False (logged)
        when the database is busy or away: the next reclaim catches up, nothing is lost but time.
        """
        try:
            return reclaim(self.engine, tables, wait_s=wait_s)
        except DBAPIError as exc:
            log.warning("could not rewrite the database files after an erasure: %s", describe(exc))
            return False

    def _transient(self, exc: DBAPIError) -> bool:
        """A dropped or busy database (worth waiting for), not a bug in a statement."""
        if exc.connection_invalidated:
            return True
        if not isinstance(exc, OperationalError | InterfaceError):
            return False
        if self.dialect == "postgresql":
            return True  # connection lost/refused, server shutting down, serialization failure, deadlock
        text = str(exc.orig).lower()
        return any(marker in text for marker in _SQLITE_TRANSIENT)

    def _prepare(self, engine: Engine) -> None:
        try:
            with engine.connect():
                pass
        except DBAPIError as exc:
            raise DatabaseUnreachableError(f"cannot reach the database {self.display_url}: {describe(exc)}") from exc
        try:
            with engine.begin() as connection:
                upgrade_connection(connection, script_location=self._migrations)
                imported = (
                    legacy.import_legacy(connection, self._legacy_dir)
                    if self._legacy_dir is not None
                    else legacy.LegacyImport()
                )
        except DBAPIError as exc:
            if self._transient(exc):
                raise DatabaseUnreachableError(
                    f"cannot reach the database {self.display_url}: {describe(exc)}"
                ) from exc
            raise DatabaseMigrationError(
                f"migrating the database {self.display_url} failed, nothing was changed: {describe(exc)}"
            ) from exc
        except Exception as exc:
            raise DatabaseMigrationError(
                f"migrating the database {self.display_url} failed, nothing was changed: {describe(exc)}"
            ) from exc
        try:
            legacy.finish(imported)
        except OSError as exc:
            # Imported and committed; only the rename failed. A second import skips the rows it finds.
            log.error("imported the legacy files but could not rename them: %s", exc)
