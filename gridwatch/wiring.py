"""Builds the recognition parts from a loaded config; shared by the service and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.loader import LoadedConfig
from gridwatch.core.paths import DataPaths
from notifier.outbox import Outbox
from recognition.backends import Analyzer, build_analyzer
from recognition.quality import QualityGate
from recognition.registries import Registries
from recognition.store import RegistryStore
from rules.state import RuleState


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


@dataclass
class Storage:
    """The service's durable state besides the registries: rule state and the alert outbox."""

    rule_state: RuleState
    outbox: Outbox

    def open(self) -> None:
        self.rule_state.open()

    def close(self) -> None:
        """Idempotent."""
        self.rule_state.close()
        self.outbox.close()


def build_storage(loaded: LoadedConfig) -> Storage:
    """Rule state and outbox of the configured database (nothing is opened yet)."""
    paths = data_paths(loaded)
    return Storage(RuleState(paths.rule_state_db), Outbox(paths.outbox_db))


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
