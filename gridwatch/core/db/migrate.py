"""Schema migrations (Alembic, shipped in ``migrations/``), run programmatically on start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# pg_advisory_xact_lock key: processes starting together migrate one after the other.
_MIGRATION_LOCK = 0x67726964  # "grid"


def alembic_config(script_location: Path = MIGRATIONS) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    return config


def head_revision(script_location: Path = MIGRATIONS) -> str | None:
    return ScriptDirectory.from_config(alembic_config(script_location)).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_connection(connection: Connection, *, script_location: Path = MIGRATIONS) -> None:
    """Migrate to the newest revision inside the caller's transaction (the caller commits or rolls back)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    config = alembic_config(script_location)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def upgrade(engine: Engine, *, script_location: Path = MIGRATIONS) -> None:
    """Migrate the database to the newest revision in ONE transaction: all of it, or nothing."""
    with engine.begin() as connection:
        upgrade_connection(connection, script_location=script_location)
