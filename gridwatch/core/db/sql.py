"""Small dialect helpers for statements SQLite and PostgreSQL spell differently."""

from __future__ import annotations

from sqlalchemy import Connection, Table, text
from sqlalchemy.dialects import postgresql, sqlite


def insert(connection: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT with ``on_conflict_do_nothing`` / ``on_conflict_do_update`` for this connection's dialect."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    if connection.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"unsupported dialect {connection.dialect.name}")


def sync_sequence(connection: Connection, table: Table, column: str) -> None:
    """After rows were inserted with explicit ids, let PostgreSQL's sequence continue past them."""
    if connection.dialect.name != "postgresql":
        return  # SQLite's rowid continues from the largest id by itself
    connection.execute(
        text(
            f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column}'), "  # noqa: S608 (names are ours)
            f"COALESCE((SELECT MAX({column}) FROM {table.name}), 0) + 1, false)"
        )
    )
