"""Registries: the store, one in-memory FAISS index per registry, thresholds, and the audit trail.

Every change and every human read of registry data is written to the audit log. Matching a
probe is not audited here: what it leads to (a sighting, an alert) is. Per-person conditions
(``gridwatch.core.persons``) are kept by the store only: matching does not use them, rules do.

A ``kind: corrections`` registry's entries rest on approval records (``recognition.approvals``):
enrolment without one is refused (``ApprovalError``), an entry is matched only while one of its
approvals runs (on the injected clock), and an extension is a new record (``extend_approval``). Every
read and addition of approval records is audited.
"""

from __future__ import annotations

import datetime as dt
import enum
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.registries import RegistryConfig
from gridwatch.core.interfaces import Match
from gridwatch.core.persons import CONDITION_FIELDS, PersonConditions
from recognition.approvals import Approval, ApprovalRecord, Window, covered
from recognition.approvals import check_fits as check_approval_fits
from recognition.index import FaissIndex, IndexInfo
from recognition.index_build import IndexPolicy, build_index
from recognition.store import ConditionsChange, Person, RegistryStore
from recognition.thresholds import AutoThresholds


class Outcome(enum.StrEnum):
    MATCH = "match"
    UNKNOWN = "unknown"


class UnknownReason(enum.StrEnum):
    BELOW_THRESHOLD = "below_threshold"  # the best identity is not similar enough
    AMBIGUOUS = "ambiguous"  # the best two identities are within the margin of each other
    EMPTY = "empty"  # nobody to compare with


@dataclass(frozen=True, slots=True)
class Decision:
    """The decision for one probe in one registry: a match, or an explicit unknown (with why).

    ``candidate`` is the best identity found, for both outcomes; an unknown face's candidate must
    never leave the process (it is not a sighting). ``covers_source`` is False for a registry searched
    only because a stranger rule names it as known at the source: its match tells a resident from a
    stranger there and never becomes a sighting.
    """

    registry: str
    outcome: Outcome
    candidate: Match | None
    reason: UnknownReason | None = None
    covers_source: bool = True

    @property
    def match(self) -> Match | None:
        return self.candidate if self.outcome is Outcome.MATCH else None

    @property
    def known(self) -> bool:
        """The face is one of the registry's people: a match, or a tie between two of them.

        The margin guards against naming the wrong person; it does not make a face that is close to
        two residents a stranger.
        """
        return self.outcome is Outcome.MATCH or self.reason is UnknownReason.AMBIGUOUS


def decide(config: RegistryConfig, candidate: Match | None) -> Decision:
    """Threshold plus margin: the best identity matches only if it reaches the registry's threshold and
    beats the second-best identity by at least the registry's margin."""
    if candidate is None:
        return Decision(config.name, Outcome.UNKNOWN, None, UnknownReason.EMPTY)
    if candidate.similarity < config.threshold:
        return Decision(config.name, Outcome.UNKNOWN, candidate, UnknownReason.BELOW_THRESHOLD)
    if candidate.second_similarity is not None and candidate.similarity - candidate.second_similarity < config.margin:
        return Decision(config.name, Outcome.UNKNOWN, candidate, UnknownReason.AMBIGUOUS)
    return Decision(config.name, Outcome.MATCH, candidate)


# How long a search that found another process's change waits to finish that change's checkpoint.
SYNC_RECLAIM_WAIT_S = 0.2

# Registry fields a running service applies in place (``Registries.reconfigure``): the next decision uses
# them, the index stays. A change of any other field rebuilds that registry's index from the store.
LIVE_REGISTRY_FIELDS = frozenset(
    {"threshold", "margin", "sources", "calibration", "purpose", "legal_basis", "retention_days"}
)


class UnknownRegistryError(KeyError):
    def __str__(self) -> str:
        return f"unknown registry {self.args[0]!r}"


class UnknownPersonError(KeyError):
    def __str__(self) -> str:
        return f"no person with id {self.args[0]!r}"


@dataclass
class _LoadedRegistry:
    config: RegistryConfig
    index: FaissIndex
    person_of: dict[int, str]
    # A person past their expiry is never matched, even before the (hourly) purge erases them.
    expires_of: dict[str, dt.datetime] = field(default_factory=dict)
    # A corrections registry: each person's approval windows (no window now: never matched). None: another kind.
    windows_of: dict[str, list[Window]] | None = None


class Registries:
    def __init__(
        self,
        configs: Sequence[RegistryConfig],
        store: RegistryStore,
        *,
        model_id: str,
        dim: int,
        audit: AuditLog,
        thresholds: AutoThresholds | None = None,
        index_policy: IndexPolicy | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        """``thresholds``: solves the ``threshold: auto`` registries (without it they keep the default).
        ``index_policy``: how each registry's index is chosen by its size (``recognition.index_build``).
        ``clock``: what expiries and approval windows are compared with (default: the wall clock, UTC)."""
        self._clock = clock or _utc_now
        self._configs = {c.name: c for c in configs}
        self._thresholds = thresholds
        self._store = store
        self._model_id = model_id
        self._dim = dim
        self._audit = audit
        self._loaded: dict[str, _LoadedRegistry] = {}
        self._lock = threading.Lock()
        # Held across each change of the store plus the index (enrol, remove, load), so that a
        # reload cannot bring back an entry that is being erased.
        self._update_lock = threading.RLock()
        self._data_version: int | None = None
        self._index_policy = index_policy or IndexPolicy()
        # Indexes built from the store (start, reload of a changed registry config); another process's
        # change (``sync``) applies its delta instead and counts in ``index_deltas``.
        self.index_builds = 0
        self.index_deltas = 0

    @property
    def audit(self) -> AuditLog:
        return self._audit

    @property
    def configs(self) -> dict[str, RegistryConfig]:
        """The registry configs, with the thresholds in use (``threshold: auto`` solved for the current size)."""
        return {name: self._threshold_of(config) for name, config in self._configs.items()}

    def use_thresholds(self, thresholds: AutoThresholds | None) -> None:
        """Solve the ``threshold: auto`` registries with ``thresholds`` from now on (a config reload)."""
        self._thresholds = thresholds

    def _threshold_of(self, config: RegistryConfig) -> RegistryConfig:
        """The config with the threshold that decides now: an auto threshold is solved for the current size."""
        if self._thresholds is None or not config.auto_threshold:
            return config
        loaded = self._loaded.get(config.name)
        return self._thresholds.effective(config, 0 if loaded is None else len(loaded.index))

    def load(self) -> None:
        """Rebuild every index from the store (the index is never persisted)."""
        self._store.open()
        with self._update_lock:
            # Read the version first: a change committed while we read is picked up by the next sync.
            version = self._store.data_version()
            loaded = {name: self._build(config) for name, config in self._configs.items()}
            with self._lock:
                self._loaded = loaded
                self._data_version = version

    def _build(self, config: RegistryConfig) -> _LoadedRegistry:
        """One registry's index, from the store (under ``_update_lock``)."""
        stored = self._store.embeddings(config.name, self._model_id)
        # Read after the embeddings, so every person they name is here unless erased meanwhile.
        expires_of = {p.person_id: p.expires_at for p in self._store.list_persons(config.name)}
        index = build_index(self._dim, stored.ids, stored.vectors, self._index_policy, name=config.name)
        self.index_builds += 1
        return _LoadedRegistry(
            config,
            index,
            dict(zip(stored.ids.tolist(), stored.person_ids, strict=True)),
            expires_of,
            self._windows(config),
        )

    def _windows(self, config: RegistryConfig) -> dict[str, list[Window]] | None:
        """A corrections registry's approval windows per person (what matching needs; read by the service,
        not by a person, so not audited); None for another kind."""
        if not config.corrections:
            return None
        return self._store.approval_windows([config.name]).get(config.name, {})

    def reconfigure(self, configs: Sequence[RegistryConfig]) -> None:
        """Apply a new registries config while searches run (config hot reload).

        A registry whose only changes are in ``LIVE_REGISTRY_FIELDS`` (threshold, margin, covered
        sources, ...) keeps its index and gets the new config in place: the next decision uses it. A new
        registry is loaded from the store, a registry with other changes is rebuilt from it, and a removed
        one is dropped from memory (its entries stay in the store). A changed ``retention_days`` applies
        to later enrolments. Blocking (it may read the store): call it from a worker thread.
        """
        new_configs = {c.name: c for c in configs}
        with self._update_lock:
            if self._data_version is None:  # never loaded: load() will use the new configs
                with self._lock:
                    self._configs = new_configs
                return
            current = self._loaded
            loaded: dict[str, _LoadedRegistry] = {}
            for name, config in new_configs.items():
                old = current.get(name)
                if old is not None and _live_change_only(old.config, config):
                    loaded[name] = old
                else:
                    loaded[name] = self._build(config)
            # One swap: a search holds either the old mapping or the new one, never a half-updated dict.
            with self._lock:
                for name, config in new_configs.items():
                    loaded[name].config = config
                self._configs = new_configs
                self._loaded = loaded

    def index_status(self) -> dict[str, IndexInfo]:
        """Per loaded registry, its index (kind, size, and why it searches exactly if it fell back)."""
        return {name: loaded.index.info for name, loaded in self._loaded.items()}

    def sync(self) -> None:
        """Apply what another process (a CLI command) changed in the store since the last load or sync.

        Without this, a person erased with `gridwatch registry remove` while the service runs would
        stay matchable in the service's in-memory index until a restart. Only the delta is applied
        (``_apply_store_changes``): no index is rebuilt.
        """
        if self._data_version is None or self._store.data_version() == self._data_version:
            return
        with self._update_lock:
            version = self._store.data_version()
            if version != self._data_version:
                # The version is read first: a change committed while we read is picked up by the next sync.
                self._apply_store_changes()
                self._data_version = version
                # The change may be an erasure whose own checkpoint found this process reading: finish
                # it from here, briefly (this runs on the search path; a busy database waits for the next).
                self._store.reclaim(wait_s=SYNC_RECLAIM_WAIT_S)

    def _apply_store_changes(self) -> None:
        """Bring each loaded registry's persons, expiries and index in line with the store (under
        ``_update_lock``): vectors of persons gone are removed, those of new persons added. Idempotent.

        The store has no read of selected persons' vectors, so a registry that gained persons reads its
        embeddings once and keeps only theirs; one that only lost persons reads none.
        """
        stored: dict[str, dict[str, dt.datetime]] = {}
        for person in self._store.list_persons(None):
            stored.setdefault(person.registry, {})[person.person_id] = person.expires_at
        for name, loaded in self._loaded.items():
            now_stored = stored.get(name, {})
            gone = loaded.expires_of.keys() - now_stored.keys()
            new = now_stored.keys() - loaded.expires_of.keys()
            if gone:
                ids = np.array([i for i, person in loaded.person_of.items() if person in gone], dtype=np.int64)
                loaded.index.remove(ids)
                with self._lock:
                    for embedding_id in ids.tolist():
                        del loaded.person_of[embedding_id]
                    for person_id in gone:
                        del loaded.expires_of[person_id]
            if new:
                embeddings = self._store.embeddings(name, self._model_id)
                rows = [row for row, person in enumerate(embeddings.person_ids) if person in new]
                ids = embeddings.ids[rows]
                # Owner first, vectors second (see ``enroll``).
                with self._lock:
                    loaded.person_of.update(
                        zip(ids.tolist(), (embeddings.person_ids[row] for row in rows), strict=True)
                    )
                loaded.index.add(ids, embeddings.vectors[rows])
            windows = self._windows(loaded.config)  # an approval added by another process (an extension)
            with self._lock:
                loaded.expires_of.update(now_stored)
                loaded.windows_of = windows
            if gone or new:
                self.index_deltas += 1

    def covers(self, source_id: str) -> bool:
        self.sync()
        return any(_covers(r.config, source_id) for r in self._loaded.values() if len(r.index))

    def size(self, registry: str) -> int:
        return len(self._registry(registry).index)

    def enroll(
        self,
        registry: str,
        display_name: str,
        embeddings: list[tuple[str, npt.NDArray[np.float32]]],
        *,
        actor: str,
        now: dt.datetime | None = None,
        home_sources: Sequence[str] = (),
        allowed_zones: Sequence[str] = (),
        allowed_hours: str | None = None,
        case_ref: str | None = None,
        approval: Approval | None = None,
    ) -> Person:
        """Enrol a person with their conditions (checked for form by the store: ``ValueError``; whether
        the ids exist in the config is the caller's check).

        ``approval``: required by a corrections registry, refused by any other (``ApprovalError``, nothing
        enrolled); recorded in the same transaction as the entry.
        """
        now = now or self._clock()
        with self._update_lock:
            loaded = self._registry(registry)
            check_approval_fits(loaded.config, approval)
            expires_at = now + dt.timedelta(days=loaded.config.retention_days)
            person, ids, record = self._store.add_approved_person(
                registry=registry,
                display_name=display_name,
                model_id=self._model_id,
                embeddings=embeddings,
                now=now,
                expires_at=expires_at,
                home_sources=home_sources,
                allowed_zones=allowed_zones,
                allowed_hours=allowed_hours,
                case_ref=case_ref,
                approval=approval,
                actor=actor,
            )
            # Owner first, vectors second: a search between the two must not find vectors of nobody
            # (it would skip them and could name the second-best person without the margin check).
            with self._lock:
                loaded.expires_of[person.person_id] = expires_at
                if loaded.windows_of is not None and record is not None:
                    loaded.windows_of[person.person_id] = [(record.approval.start, record.approval.end)]
                loaded.person_of.update(dict.fromkeys(ids.tolist(), person.person_id))
            loaded.index.add(ids, np.stack([v for _, v in embeddings]).astype(np.float32))
        self._audit.append(
            "registry.enroll",
            actor=actor,
            target=person.person_id,
            details={
                "registry": registry,
                "photos": [sha for sha, _ in embeddings],
                "expires_at": expires_at.isoformat(),
                "model": self._model_id,
                "conditions": _audited(person.conditions, CONDITION_FIELDS, only_set=True),
            },
        )
        if record is not None:
            self._audit.append("registry.approval.add", actor=actor, target=person.person_id, details=record.audited())
        return person

    def extend_approval(
        self, person_id: str, approval: Approval, *, actor: str, now: dt.datetime | None = None
    ) -> ApprovalRecord:
        """Record a new approval of a corrections entry (an extension); the earlier ones stay as they were.

        Raises ``UnknownPersonError``, or ``ApprovalError`` (an invalid approval, or an entry of a registry
        that is not a corrections registry). Audited.
        """
        approval.check()
        now = now or self._clock()
        with self._update_lock:
            person = self._store.get(person_id)
            if person is None:
                raise UnknownPersonError(person_id)
            loaded = self._registry(person.registry)
            check_approval_fits(loaded.config, approval)
            record = self._store.add_approval(person_id, approval, now=now, actor=actor)
            if record is None:
                raise UnknownPersonError(person_id)  # erased meanwhile
            if loaded.windows_of is not None:
                with self._lock:
                    loaded.windows_of.setdefault(person_id, []).append((approval.start, approval.end))
        self._audit.append("registry.approval.extend", actor=actor, target=person_id, details=record.audited())
        return record

    def approvals(self, person_id: str, *, actor: str) -> list[ApprovalRecord]:
        """An entry's approval records, oldest first; the read is audited. ``UnknownPersonError`` if none."""
        person = self._store.get(person_id)
        if person is None:
            raise UnknownPersonError(person_id)
        records = self._store.approvals(person_id)
        self._audit.append(
            "registry.approval.read",
            actor=actor,
            target=person_id,
            details={"registry": person.registry, "approvals": [r.approval_id for r in records]},
        )
        return records

    def update_conditions(
        self,
        person_id: str,
        *,
        actor: str,
        home_sources: Sequence[str] | None = None,
        allowed_zones: Sequence[str] | None = None,
        allowed_hours: str | None = None,
        case_ref: str | None = None,
        clear_allowed_hours: bool = False,
        clear_case_ref: bool = False,
    ) -> ConditionsChange:
        """Change a person's conditions (see ``RegistryStore.update_conditions``); audited when something changed.

        Raises ``UnknownPersonError``, or ``ValueError`` for a value of the wrong form.
        """
        change = self._store.update_conditions(
            person_id,
            home_sources=home_sources,
            allowed_zones=allowed_zones,
            allowed_hours=allowed_hours,
            case_ref=case_ref,
            clear_allowed_hours=clear_allowed_hours,
            clear_case_ref=clear_case_ref,
        )
        if change is None:
            raise UnknownPersonError(person_id)
        if change.changed:
            self._audit.append(
                "registry.update",
                actor=actor,
                target=person_id,
                details={"registry": change.after.registry, "changed": _audited(change.after, change.changed)},
            )
        return change

    def remove(self, person_id: str, *, actor: str, reason: str = "removed") -> Person:
        """Erase a person from the store (and the database files, see ``RegistryStore``) and the index."""
        return self._remove(person_id, actor=actor, reason=reason, reclaim=True)

    def _remove(
        self,
        person_id: str,
        *,
        actor: str,
        reason: str,
        reclaim: bool,
        index_later: dict[str, list[npt.NDArray[np.int64]]] | None = None,
    ) -> Person:
        """``index_later``: collect the vectors' ids by registry instead of removing them from the index now
        (a removal costs O(registry size): a batch removes them once). Their owner goes at once, so they are
        never matched meanwhile (``_best`` skips vectors of nobody)."""
        with self._update_lock:
            person, ids = self._store.remove_person(person_id, reclaim=reclaim)
            if person is None:
                raise UnknownPersonError(person_id)
            loaded = self._loaded.get(person.registry)
            if loaded is not None:
                if index_later is None:
                    loaded.index.remove(ids)
                else:
                    index_later.setdefault(person.registry, []).append(ids)
                with self._lock:
                    for embedding_id in ids.tolist():
                        loaded.person_of.pop(embedding_id, None)
                    loaded.expires_of.pop(person_id, None)
        self._audit.append(
            "registry.remove", actor=actor, target=person_id, details={"registry": person.registry, "reason": reason}
        )
        return person

    def list_persons(self, registry: str | None, *, actor: str) -> list[Person]:
        if registry is not None:
            self._registry(registry)
        persons = self._store.list_persons(registry)
        self._audit.append("registry.list", actor=actor, target=registry or "*", details={"persons": len(persons)})
        return persons

    def purge_expired(self, *, now: dt.datetime | None = None) -> list[Person]:
        """Erase entries past their ``expires_at`` from the store and the index."""
        now = now or dt.datetime.now(dt.UTC)
        purged = []
        index_later: dict[str, list[npt.NDArray[np.int64]]] = {}
        for person in self._store.expired(now):
            try:
                purged.append(
                    self._remove(
                        person.person_id,
                        actor="system:retention",
                        reason="expired",
                        reclaim=False,
                        index_later=index_later,
                    )
                )
            except UnknownPersonError:
                # Erased meanwhile by another process (a CLI remove or purge): not a reason to stop
                # erasing the others.
                continue
        with self._update_lock:
            for registry, ids in index_later.items():
                loaded = self._loaded.get(registry)
                if loaded is not None:
                    loaded.index.remove(np.concatenate(ids))
        if purged:
            self._store.reclaim()  # once for the whole batch: a checkpoint per person would be wasted work
        return purged

    def match(self, vectors: npt.NDArray[np.float32], source_id: str) -> list[list[Match]]:
        """For each probe, its matches (see ``decide``) in the registries covering the source."""
        return [[d.match for d in row if d.match is not None] for row in self.decide(vectors, source_id)]

    def decide(
        self, vectors: npt.NDArray[np.float32], source_id: str, *, also: Collection[str] = ()
    ) -> list[list[Decision]]:
        """For each probe, one decision per non-empty registry covering the source: a match, or unknown.

        ``also``: registries to search even where they do not cover the source (the known registries
        of a stranger rule); their decisions say ``covers_source=False``.
        """
        self.sync()
        results: list[list[Decision]] = [[] for _ in range(len(vectors))]
        for loaded in self._loaded.values():
            covers = _covers(loaded.config, source_id)
            if not len(loaded.index) or not (covers or loaded.config.name in also):
                continue
            config = self._threshold_of(loaded.config)
            for row, candidate in enumerate(self._candidates(loaded, vectors)):
                decision = decide(config, candidate)
                results[row].append(decision if covers else replace(decision, covers_source=False))
        return results

    def _candidates(self, loaded: _LoadedRegistry, vectors: npt.NDArray[np.float32]) -> list[Match | None]:
        """The best and second-best identity of each probe (second ``None`` if only one identity)."""
        now = self._clock()
        k = min(len(loaded.index), 16)
        similarities, ids = loaded.index.search(vectors, k)
        candidates = [self._best(loaded, similarities[row], ids[row], now) for row in range(len(vectors))]
        # An index may return fewer than k neighbours (missing ones are -1): a deeper search of such a
        # probe would find nothing more.
        exhausted = {row for row in range(len(vectors)) if ids[row, -1] < 0}
        # A person with many embeddings can fill the first k neighbours: search deeper for the
        # second identity, or the margin rule would be skipped exactly when it matters.
        while k < len(loaded.index):
            short = [
                row
                for row, c in enumerate(candidates)
                if c is not None and c.second_similarity is None and row not in exhausted
            ]
            if not short:
                break
            k = min(len(loaded.index), k * 4)
            similarities, ids = loaded.index.search(vectors[short], k)
            for i, row in enumerate(short):
                candidates[row] = self._best(loaded, similarities[i], ids[i], now)
                if ids[i, -1] < 0:
                    exhausted.add(row)
        return candidates

    def _best(
        self,
        loaded: _LoadedRegistry,
        similarities: npt.NDArray[np.float32],
        ids: npt.NDArray[np.int64],
        now: dt.datetime,
    ) -> Match | None:
        best_person: str | None = None
        best = second = None
        for similarity, embedding_id in zip(similarities.tolist(), ids.tolist(), strict=True):
            person = loaded.person_of.get(embedding_id)
            if person is None:
                continue
            expires_at = loaded.expires_of.get(person)
            if expires_at is None or expires_at <= now:
                continue  # expired (the purge has not erased it yet) or being erased
            windows = loaded.windows_of
            if windows is not None and not covered(windows.get(person, ()), now):
                continue  # a corrections entry outside its approvals (before start, after end)
            if best_person is None:
                best_person, best = person, similarity
            elif person != best_person:
                second = similarity
                break
        if best_person is None or best is None:
            return None
        return Match(loaded.config.name, best_person, float(best), None if second is None else float(second))

    def _registry(self, name: str) -> _LoadedRegistry:
        if not self._loaded and self._configs:
            self.load()
        try:
            return self._loaded[name]
        except KeyError:
            raise UnknownRegistryError(name) from None


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _audited(conditions: PersonConditions, fields: Sequence[str], *, only_set: bool = False) -> dict[str, Any]:
    """Condition fields for an audit record: config ids and a case number, never a name."""
    values = {name: getattr(conditions, name) for name in fields}
    if only_set:
        values = {name: value for name, value in values.items() if value}
    return {name: list(value) if isinstance(value, tuple) else value for name, value in values.items()}


def _live_change_only(old: RegistryConfig, new: RegistryConfig) -> bool:
    before, after = old.model_dump(), new.model_dump()
    return all(before[key] == after[key] for key in before.keys() | after.keys() if key not in LIVE_REGISTRY_FIELDS)


def _covers(config: RegistryConfig, source_id: str) -> bool:
    return "*" in config.sources or source_id in config.sources
