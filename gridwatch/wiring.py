"""Builds the recognition parts from a loaded config; shared by the service and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from gridwatch.audit import AuditLog
from gridwatch.config.loader import LoadedConfig
from gridwatch.paths import DataPaths
from recognition.backends import Analyzer, build_analyzer
from recognition.quality import QualityGate
from recognition.registries import Registries
from recognition.store import RegistryStore


@dataclass
class RecognitionParts:
    analyzer: Analyzer
    gate: QualityGate
    store: RegistryStore
    registries: Registries

    def close(self) -> None:
        """Close the registry store and the audit log the parts were built with. Idempotent."""
        self.store.close()
        self.registries.audit.close()


def data_paths(loaded: LoadedConfig) -> DataPaths:
    return DataPaths(loaded.resolve(loaded.config.service.data_dir))


def build_recognition(loaded: LoadedConfig, audit: AuditLog) -> RecognitionParts:
    """Resolves the model pack (raises ModelPackError with install advice) and opens the store."""
    config = loaded.config
    analyzer = build_analyzer(config.model, config_dir=loaded.root)
    store = RegistryStore(data_paths(loaded).registry_db)
    registries = Registries(
        config.registries, store, model_id=analyzer.model_id, dim=analyzer.embedding_dim, audit=audit
    )
    return RecognitionParts(analyzer, QualityGate(config.model.quality), store, registries)
