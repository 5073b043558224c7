"""Errors of the database layer; every message is one line and never holds a password."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

from gridwatch.core.redact import redact_text


class DatabaseError(Exception):
    """Base class: the CLI prints ``error: <message>`` and exits 1."""


class DatabaseUnreachableError(DatabaseError):
    """The database could not be reached (or opened) at start."""


class DatabaseMigrationError(DatabaseError):
    """A schema migration or the import of the legacy files failed; the database was left as it was."""


class DatabaseUnavailableError(DatabaseError):
    """The database stayed unreachable for the whole retry window of one call."""


class DatabaseClosedError(DatabaseError):
    """A call on a database that is not open."""


def describe(exc: BaseException) -> str:
    """The first line of the driver's message (no SQL, no parameters), credentials masked."""
    cause: BaseException = exc
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        cause = exc.orig
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    text = lines[0] if lines else type(cause).__name__
    return redact_text(text)[:300]
