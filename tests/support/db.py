"""Databases for tests: one ``Database`` per simulated process, on SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import URL

from gridwatch.core.db import Database
from notifier.outbox import Outbox


def sqlite_url(path: Path) -> str:
    return URL.create("sqlite", database=str(path)).render_as_string()


class Databases:
    """Opens databases on one URL (each one stands for a process: the service, a CLI command); closes all."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._opened: list[Database] = []

    def __call__(self, **kwargs: object) -> Database:
        database = Database(self.url, **kwargs)  # type: ignore[arg-type]
        self._opened.append(database)
        database.open()
        return database

    def close(self) -> None:
        for database in self._opened:
            database.close()


@contextmanager
def sqlite_outbox(path: Path, sinks: tuple[str, ...] | list[str] = ()) -> Iterator[Outbox]:
    """An open outbox alone on the SQLite file ``path`` (what ``Outbox(path)`` was before the one database)."""
    with Database(sqlite_url(path)) as database, Outbox(database, sinks) as outbox:
        yield outbox
