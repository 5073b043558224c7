"""Where the service keeps its files, under ``service.data_dir``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class DataPaths:
    root: Path

    @property
    def registry_db(self) -> Path:
        return self.root / "registry.sqlite3"

    @property
    def rule_state_db(self) -> Path:
        return self.root / "rule_state.sqlite3"

    @property
    def outbox_db(self) -> Path:
        return self.root / "outbox.sqlite3"

    @property
    def audit_log(self) -> Path:
        return self.root / "audit.jsonl"

    @property
    def log_file(self) -> Path:
        return self.root / "logs" / "gridwatch.log"
