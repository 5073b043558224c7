"""Where the service keeps its files, under ``service.data_dir``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class DataPaths:
    root: Path

    @property
    def database(self) -> Path:
        """The default (SQLite) database: registries, rule state, outbox."""
        return self.root / "gridwatch.sqlite3"

    @property
    def audit_log(self) -> Path:
        return self.root / "audit.jsonl"

    @property
    def log_file(self) -> Path:
        return self.root / "logs" / "gridwatch.log"

    @property
    def registry_keys(self) -> Path:
        """The registries' data keys, wrapped by the master key; kept apart from the database so that
        destroying one (a crypto-shred) reaches every copy of the database (``gridwatch.core.registry_keys``)."""
        return self.root / "keys" / "registry-keys.json"
