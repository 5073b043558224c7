"""Databases for tests: one ``Database`` per simulated process, on SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import URL

from gridwatch.core.db import Database
from gridwatch.core.registry_keys import RegistryKeys
from notifier.outbox import Outbox
from tests.support.keys import site_keys


def sqlite_url(path: Path) -> str:
    return URL.create("sqlite", database=str(path)).render_as_string()


class Databases:
    """Opens databases on one URL (each one stands for a process: the service, a CLI command); closes all."""

    def __init__(self, url: str, keys_dir: Path | None = None) -> None:
        """``keys_dir``: where the site's registry key file lives (shared by the simulated processes)."""
        self.url = url
        self.keys_dir = keys_dir
        self._opened: list[Database] = []

    def keys(self) -> RegistryKeys:
        """One process's view of the site's registry data keys (the session's master key)."""
        if self.keys_dir is None:
            raise RuntimeError("these databases were opened without a key directory")
        return site_keys(self.keys_dir)

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
