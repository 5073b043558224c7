"""Builds the storage and recognition parts from a loaded config; shared by the service and the CLI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import URL, make_url

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.loader import LoadedConfig
from gridwatch.core.config.root import GridwatchConfig
from gridwatch.core.config.rules import StrangerAtGateRuleConfig
from gridwatch.core.crypto import Keyring
from gridwatch.core.db import Database
from gridwatch.core.events import SourceKind
from gridwatch.core.interfaces import PersonErasure
from gridwatch.core.paths import DataPaths
from gridwatch.core.registry_keys import RegistryKeys, master_key_missing
from gridwatch.core.schedules import Schedule
from notifier.duty import DutyRoster
from notifier.outbox import Outbox
from notifier.routing import Router
from recognition.backends import Analyzer, build_analyzer
from recognition.calibration import PackCalibration, calibration_for
from recognition.enroll import reference_jpeg
from recognition.evidence import EvidenceStore
from recognition.modelpack import ModelPack
from recognition.quality import QualityGate
from recognition.registries import Registries
from recognition.store import RegistryStore
from recognition.strangers import StrangerWatch
from recognition.thresholds import AutoThresholds
from rules.state import RuleState


@dataclass
class RecognitionParts:
    analyzer: Analyzer
    gate: QualityGate
    store: RegistryStore
    registries: Registries
    keys: RegistryKeys

    def close(self) -> None:
        """Close the registry store (and its database, if it built it) and the audit log. Idempotent."""
        self.store.close()
        self.registries.audit.close()


@dataclass
class Storage:
    """The service's one database and its stores besides the registries: rule state and the alert outbox."""

    database: Database
    rule_state: RuleState
    outbox: Outbox

    def open(self) -> None:
        """Opens the database (migrations, import of legacy files): raises ``DatabaseError`` (one line)."""
        self.database.open()
        self.rule_state.open()
        self.outbox.open()

    def close(self) -> None:
        """Idempotent."""
        self.outbox.close()
        self.rule_state.close()
        self.database.close()


@dataclass(frozen=True)
class Erasures:
    """Several ``PersonErasure``s told in turn."""

    parts: tuple[PersonErasure, ...]

    def forget_persons(self, person_ids: Sequence[str]) -> None:
        for part in self.parts:
            part.forget_persons(person_ids)


def build_database(loaded: LoadedConfig) -> Database:
    """The configured database (nothing is opened): ``service.database.url``, by default SQLite in data_dir."""
    config = loaded.config.service.database
    paths = data_paths(loaded)
    if not config.url:
        url = URL.create("sqlite", database=str(paths.database))
    else:
        url = make_url(config.url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            url = url.set(database=str(loaded.resolve(Path(url.database))))
    return Database(
        url,
        legacy_dir=paths.root,
        connect_timeout_s=config.connect_timeout_s,
        retry_s=config.retry_s,
        pool_size=config.pool_size,
    )


def build_storage(loaded: LoadedConfig, database: Database | None = None) -> Storage:
    """Rule state and outbox on the configured database (nothing is opened yet)."""
    database = database if database is not None else build_database(loaded)
    return Storage(database, RuleState(database), Outbox(database))


def data_paths(loaded: LoadedConfig) -> DataPaths:
    return DataPaths(loaded.resolve(loaded.config.service.data_dir))


def registry_keys(loaded: LoadedConfig, env: Mapping[str, str] | None = None) -> RegistryKeys:
    """The registries' data keys: the key file of the data directory, unwrapped by ``GRIDWATCH_DATA_KEY``
    (+ ``GRIDWATCH_DATA_KEYS_OLD``). Without a master key they can still be shredded and listed.

    Raises ``DataKeyError`` for a key that is set but unusable.
    """
    return RegistryKeys(Keyring.from_env(env), data_paths(loaded).registry_keys)


def build_recognition(loaded: LoadedConfig, audit: AuditLog, database: Database | None = None) -> RecognitionParts:
    """Resolves the model pack (raises ModelPackError with install advice); the store opens on first use.

    ``database``: the service's shared one (``Storage.database``); without it the parts build and own
    their own (the CLI's commands). The store seals an older version's plaintext templates when it opens
    with the master key (audited).
    """
    config = loaded.config
    keys = registry_keys(loaded)
    analyzer = build_analyzer(config.model, config_dir=loaded.root)
    owns_database = database is None
    database = build_database(loaded) if database is None else database
    # An erasure also drops the person's rule state (cooldowns, timers, passes) and evidence in the same
    # call; the composition joins the two stages, the store never imports rules. Evidence is deleted
    # without the data key, so an erasure never depends on it.
    store = RegistryStore(
        database,
        keys=keys,
        owns_database=owns_database,
        erasure=Erasures((RuleState(database), EvidenceStore(database))),
        audit=audit,
    )
    registries = Registries(
        config.registries,
        store,
        model_id=analyzer.model_id,
        dim=analyzer.embedding_dim,
        audit=audit,
        thresholds=auto_thresholds(loaded, analyzer.pack),
    )
    return RecognitionParts(analyzer, QualityGate(config.model.quality), store, registries, keys)


def pack_calibration(loaded: LoadedConfig, pack: ModelPack) -> PackCalibration:
    """The calibration of the pack in use: ``model.calibration`` or the one shipped for the pack family
    (raises ``CalibrationFileError``, a ``ModelPackError``, when missing or made for another recogniser)."""
    model = loaded.config.model
    path = None if model.calibration is None else loaded.resolve(model.calibration)
    return calibration_for(model.backend, pack.sha256[pack.recognizer.name], path=path)


def auto_thresholds(loaded: LoadedConfig, pack: ModelPack) -> AutoThresholds | None:
    """The solver of the `threshold: auto` registries; None when there is none (no calibration is needed)."""
    if not any(r.auto_threshold for r in loaded.config.registries):
        return None
    return AutoThresholds.for_config(pack_calibration(loaded, pack), loaded.config)


def rule_surroundings(config: GridwatchConfig) -> dict[str, Any]:
    """What the rule engine needs of the config besides the rules: zones, schedules, source kinds and grids.

    Passed as keyword arguments to ``RuleEngine(...)`` and ``RuleEngine.reconfigure(...)``.
    """
    sources: dict[str, tuple[SourceKind, str | None]] = {c.id: (SourceKind.CAMERA, c.grid) for c in config.cameras}
    sources |= {g.id: (SourceKind.GATE, getattr(g, "grid", None)) for g in config.gates}
    zones = {z.id: frozenset(z.sources) for z in getattr(config, "zones", [])}
    schedules = {s.id: Schedule.from_config(s) for s in getattr(config, "schedules", [])}
    return {"zones": zones, "schedules": schedules, "sources": sources}


def stranger_watch(config: GridwatchConfig) -> dict[str, StrangerWatch]:
    """Per gate, what the `stranger_at_gate` rules watching it need of recognition.

    ``"*"`` means every gate (a stranger rule counts attempts at gates, never at cameras). Where several
    rules watch one gate, a face is a stranger there when none of their known registries knows it;
    look-alikes join at the highest threshold of those registries (the strictest: two strangers are
    never one cluster where a resident would not be matched) and are kept for the longest window.

    The threshold here is the configured one: for a `threshold: auto` registry a stand-in (0.45). The
    running recognizer joins look-alikes at the thresholds in use instead, an auto one solved for the
    registry's current size (``Recognizer.stranger_threshold``), which changes as people are enrolled.
    """
    thresholds = {r.name: r.threshold for r in config.registries}
    gates = [g.id for g in config.gates]
    known: dict[str, set[str]] = {}
    window: dict[str, int] = {}
    for rule in config.rules:
        if not isinstance(rule, StrangerAtGateRuleConfig):
            continue
        for gate in gates if "*" in rule.sources else [s for s in rule.sources if s in gates]:
            known.setdefault(gate, set()).update(rule.known_registries)
            window[gate] = max(window.get(gate, 0), rule.within_s)
    return {
        gate: StrangerWatch(
            known_registries=frozenset(names),
            threshold=max(thresholds[name] for name in names),  # config check: every known registry exists
            window_s=float(window[gate]),
        )
        for gate, names in known.items()
    }


def build_router(config: GridwatchConfig) -> Router:
    """Routes, staff and duty rosters of a config (rebuilt on every reload)."""
    return Router(config, DutyRoster.from_config(config))


def registry_confirmations(config: GridwatchConfig) -> dict[str, int]:
    """Registry name → confirmations its alerts need before anyone is notified."""
    return {registry.name: registry.confirmations for registry in config.registries}


def ack_base_url(config: GridwatchConfig) -> str:
    """Where one-click acknowledgement links point: ``notifier.acks.public_url``, else the HTTP listener."""
    if config.notifier.acks.public_url:
        return config.notifier.acks.public_url.rstrip("/")
    http = config.service.http
    host = "127.0.0.1" if http.host in ("0.0.0.0", "::", "") else http.host  # noqa: S104 (a bind-all address)
    return f"http://{host}:{http.port}"


def require_keyring(config: GridwatchConfig, env: Mapping[str, str] | None = None) -> Keyring | None:
    """The master keyring of the environment, or None when no key is set and there is no registry.

    Every registry's templates (and evidence, reference photos) are encrypted at rest, so any registry
    needs ``GRIDWATCH_DATA_KEY``: raises ``MasterKeyMissingError`` (a ``DataKeyError``: one line, with
    how to make a key) without it, and ``DataKeyError`` whenever a key that is set is unusable.
    ``env``: the process environment by default.
    """
    names = [r.name for r in config.registries]
    keyring = Keyring.from_env(env)
    if keyring is None and names:
        raise master_key_missing(
            f"{'registry' if len(names) == 1 else 'registries'} {', '.join(names)} "
            f"(templates, evidence and reference photos are encrypted at rest)"
        )
    return keyring


class ReferencePhotos:
    """Keeps the reference photo of an enrolment, sealed, for registries with ``evidence.reference_photo``
    (the console shows it beside the captured face). It lives as long as the entry (the registry's
    ``retention_days``) and is erased with the person."""

    def __init__(self, config: GridwatchConfig, database: Database, keys: RegistryKeys) -> None:
        self._registries = {r.name: r for r in config.registries}
        self._store = EvidenceStore(database, keys)

    def keep(self, registry: str, person_id: str, photo: bytes) -> str | None:
        """The object id, or None when the registry keeps no reference photo."""
        config = self._registries.get(registry)
        if config is None or not config.evidence.reference_photo:
            return None
        return self._store.put(
            "reference", registry, person_id, reference_jpeg(photo), retention_days=config.retention_days
        )
