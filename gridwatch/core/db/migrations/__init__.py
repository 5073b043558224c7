"""Alembic migrations of the one database; run by ``gridwatch.core.db.migrate.upgrade``."""
