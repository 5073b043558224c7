"""The one database layer (SQLAlchemy 2 Core + Alembic): engine, tables, migrations, retry.

Contracts layer: imports no stage and no web framework. The stores (``recognition.store``,
``rules.state``, ``notifier.outbox``) take a shared ``Database`` and run their statements through
``Database.transaction``.
"""

from __future__ import annotations

from gridwatch.core.db.database import Database
from gridwatch.core.db.engine import create_engine, display_url
from gridwatch.core.db.errors import (
    DatabaseClosedError,
    DatabaseError,
    DatabaseMigrationError,
    DatabaseUnavailableError,
    DatabaseUnreachableError,
)
from gridwatch.core.db.migrate import upgrade

__all__ = [
    "Database",
    "DatabaseClosedError",
    "DatabaseError",
    "DatabaseMigrationError",
    "DatabaseUnavailableError",
    "DatabaseUnreachableError",
    "create_engine",
    "display_url",
    "upgrade",
]
