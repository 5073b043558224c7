"""The registry store: enrolled persons and the embeddings of their enrolment photos.

Persons carry pseudonymous ids; the display name is the only directly identifying field. Their
conditions (``gridwatch.core.persons``) hold config ids and a case number only.
Enrolment photos are not kept: only their SHA-256 (to spot a photo enrolled twice) and the
embedding, sealed at rest: AES-GCM under the registry's data key (``gridwatch.core.registry_keys``), a
fresh nonce per template, associated data = person ‖ registry ‖ model id (a template moved to another
person's row does not open), the key id on the row. Rows of older versions (plaintext, no key id) are
sealed in place when the store opens with the master key (``seal_plaintext``), logged and audited with
their counts. Shredding a registry (``shred_registry``) destroys its data key and deletes its rows.

Removing a person deletes their rows (erasure), not a soft flag, tells the ``PersonErasure``
given (the rule state drops the person's cooldowns and timers), then has the database rewrite its files
(``Database.reclaim``: a WAL checkpoint on SQLite, ``VACUUM FULL`` on PostgreSQL), so the vector and
the name are gone from disk when the call returns, not when the service next stops.

The rows live in the one database (``gridwatch.core.db``), SQLite or PostgreSQL. Every change bumps
the ``registry`` generation in the same transaction, so another process's change (a CLI command
while the service runs) is seen by ``data_version()`` on both backends.

The store is the ``PersonDirectory`` of rules: ``conditions()`` and ``persons()`` read no embeddings.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import secrets
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Row, Select, bindparam, func, literal, select

from gridwatch.core.crypto import DecryptError
from gridwatch.core.db import Database, DatabaseUnavailableError
from gridwatch.core.db.schema import approvals as approvals_t
from gridwatch.core.db.schema import embeddings as embeddings_t
from gridwatch.core.db.schema import generations
from gridwatch.core.db.schema import persons as persons_t
from gridwatch.core.persons import (
    CONDITION_FIELDS,
    PersonConditions,
    check_case_ref,
    check_config_id,
    check_config_ids,
)
from gridwatch.core.registry_keys import RegistryKeys, WrappedKey, master_key_missing, template_aad
from recognition import approvals as approval_rows
from recognition.approvals import Approval, ApprovalRecord, Window

if TYPE_CHECKING:
    from gridwatch.core.audit import AuditLog
    from gridwatch.core.interfaces import PersonDirectory, PersonErasure

log = logging.getLogger(__name__)

T = TypeVar("T")

_GENERATION = "registry"

# How long an erasure waits for other connections (the running service's) to let the checkpoint finish.
RECLAIM_WAIT_S = 10.0
_ERASED_TABLES = (persons_t, embeddings_t, approvals_t)
# Plaintext rows of an older version are sealed this many at a time (one transaction each).
SEAL_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Person:
    person_id: str
    registry: str
    display_name: str
    enrolled_at: dt.datetime
    expires_at: dt.datetime
    embeddings: int = 0
    home_sources: tuple[str, ...] = ()
    allowed_zones: tuple[str, ...] = ()
    allowed_hours: str | None = None
    case_ref: str | None = None

    @property
    def conditions(self) -> PersonConditions:
        return PersonConditions(
            person_id=self.person_id,
            registry=self.registry,
            enrolled_at=self.enrolled_at,
            home_sources=self.home_sources,
            allowed_zones=self.allowed_zones,
            allowed_hours=self.allowed_hours,
            case_ref=self.case_ref,
        )


@dataclass(frozen=True, slots=True)
class ConditionsChange:
    """A person's conditions before and after ``RegistryStore.update_conditions``."""

    before: PersonConditions
    after: PersonConditions

    @property
    def changed(self) -> tuple[str, ...]:
        """Names of the fields that changed, in ``CONDITION_FIELDS`` order."""
        return tuple(name for name in CONDITION_FIELDS if getattr(self.before, name) != getattr(self.after, name))


@dataclass(frozen=True, slots=True)
class Shred:
    """What ``RegistryStore.shred_registry`` destroyed."""

    registry: str
    key: WrappedKey | None  # the destroyed wrapped key (None: the registry had none)
    persons: tuple[str, ...]
    embeddings: int


@dataclass(frozen=True, slots=True)
class StoredEmbeddings:
    ids: npt.NDArray[np.int64]
    person_ids: list[str]
    vectors: npt.NDArray[np.float32]


class RegistryStore:
    """Thread-safe. No I/O in ``__init__``; ``open()`` opens (and migrates) the shared database."""

    def __init__(
        self,
        database: Database,
        *,
        keys: RegistryKeys | None = None,
        owns_database: bool = False,
        erasure: PersonErasure | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        """``keys``: the registries' data keys; None gives a store that lists, updates and erases but
        neither enrols nor loads templates (``MasterKeyMissingError``).

        ``owns_database``: ``close()`` closes the database too (a store built alone, e.g. by a CLI command).

        ``erasure``: told the ids of erased persons, so that rows kept about them elsewhere go too.

        ``audit``: where sealing an older version's plaintext rows is recorded (with its counts).
        """
        self._db = database
        self._keys = keys
        self._owns_database = owns_database
        self._erasure = erasure
        self._audit = audit
        # Generation bumps of our own commits: data_version() reports only other processes' changes.
        self._own_bumps = 0
        self._last_version: int | None = None
        self._stale = False
        self._lock = threading.Lock()
        self._open = False

    @property
    def database(self) -> Database:
        return self._db

    @property
    def keys(self) -> RegistryKeys | None:
        return self._keys

    def open(self) -> None:
        """Opens the database; with the master key, seals the plaintext rows of an older version."""
        self._db.open()
        self._open = True
        if self._keys is not None and self._keys.master is not None:
            self.seal_plaintext()

    def seal_plaintext(self) -> dict[str, int]:
        """Seals every plaintext template (rows of an older version) in place; returns counts per registry.

        Idempotent (a sealed row has a key id and is left alone). Rewrites the database files afterwards
        (``Database.reclaim``), so the plaintext leaves the disk, not only the table.
        """
        keys = self._require_keys("sealing the templates of an older version")
        c = embeddings_t.c
        sealed: dict[str, int] = {}

        def seal_batch(conn: Connection, after: int) -> tuple[int | None, dict[str, int]]:
            """Seals the next batch of plaintext rows past ``after``; (last id, counts), (None, {}) when done."""
            rows = conn.execute(
                select(c.embedding_id, c.person_id, c.model_id, c.vector, persons_t.c.registry)
                .join(persons_t, persons_t.c.person_id == c.person_id)
                .where(c.key_id.is_(None), c.embedding_id > after)
                .order_by(c.embedding_id)
                .limit(SEAL_BATCH)
            ).all()
            if not rows:
                return None, {}
            counts: dict[str, int] = {}
            updates = []
            for row in rows:
                ring = keys.keyring(row.registry, create=True)
                blob = ring.seal(bytes(row.vector), template_aad(row.registry, row.person_id, row.model_id))
                updates.append({"row_id": row.embedding_id, "sealed": blob, "sealed_by": ring.key_id})
                counts[row.registry] = counts.get(row.registry, 0) + 1
            conn.execute(
                embeddings_t.update()
                .where(c.embedding_id == bindparam("row_id"), c.key_id.is_(None))
                .values(vector=bindparam("sealed"), key_id=bindparam("sealed_by")),
                updates,
            )
            return int(rows[-1].embedding_id), counts

        after: int | None = 0
        with self._lock:
            while after is not None:
                # Counts are merged after the commit: a transaction retried after a dropped connection counts once.
                after, counts = self._db.transaction(
                    functools.partial(seal_batch, after=after), what="sealing plaintext templates"
                )
                for name, count in counts.items():
                    sealed[name] = sealed.get(name, 0) + count
        if sealed:
            total = sum(sealed.values())
            log.info(
                "sealed %d plaintext template(s) of an older version at rest (%s)",
                total,
                ", ".join(f"{name}: {count}" for name, count in sorted(sealed.items())),
            )
            if self._audit is not None:
                self._audit.append(
                    "registry.seal_plaintext",
                    actor="gridwatch",
                    target="*",
                    details={"templates": total, "registries": dict(sorted(sealed.items()))},
                )
            self._db.reclaim(_ERASED_TABLES, wait_s=RECLAIM_WAIT_S)
        return sealed

    def shred_registry(self, registry: str, *, reclaim: bool = True) -> Shred:
        """Crypto-shreds ``registry``: destroys its data key first (every copy of its templates and
        evidence, backups included, is unreadable from then on), then deletes its persons and their
        embeddings and tells the erasure (evidence, rule state). Needs no master key."""
        keys = self._keys
        destroyed = keys.shred(registry) if keys is not None else None

        def remove(conn: Connection) -> tuple[tuple[list[str], int], bool]:
            ids = [
                str(r[0])
                for r in conn.execute(select(persons_t.c.person_id).where(persons_t.c.registry == registry)).all()
            ]
            if not ids:
                return ([], 0), False
            count = conn.execute(
                select(func.count()).select_from(embeddings_t).where(embeddings_t.c.person_id.in_(ids))
            ).scalar_one()
            conn.execute(embeddings_t.delete().where(embeddings_t.c.person_id.in_(ids)))
            conn.execute(persons_t.delete().where(persons_t.c.registry == registry))
            return (ids, int(count)), True

        person_ids, count = self._change(remove, "registry shred")
        if person_ids and self._erasure is not None:
            self._erasure.forget_persons(person_ids)
        if reclaim:
            self.reclaim()
        return Shred(registry, destroyed, tuple(person_ids), count)

    def _require_keys(self, what: str) -> RegistryKeys:
        if self._keys is None or self._keys.master is None:
            raise master_key_missing(what)
        return self._keys

    def close(self) -> None:
        """Idempotent; closes the database only if the store owns it (otherwise its owner does)."""
        self._open = False
        if self._owns_database:
            self._db.close()

    def add_person(
        self,
        *,
        registry: str,
        display_name: str,
        model_id: str,
        embeddings: list[tuple[str, npt.NDArray[np.float32]]],
        now: dt.datetime,
        expires_at: dt.datetime,
        home_sources: Sequence[str] = (),
        allowed_zones: Sequence[str] = (),
        allowed_hours: str | None = None,
        case_ref: str | None = None,
    ) -> tuple[Person, npt.NDArray[np.int64]]:
        """A new person with their embeddings (photo hash, vector) and conditions; returns the new embedding ids.

        Conditions are checked for form only (``ValueError``); whether the ids exist in the config is
        the caller's check.
        """
        person, ids, _ = self.add_approved_person(
            registry=registry,
            display_name=display_name,
            model_id=model_id,
            embeddings=embeddings,
            now=now,
            expires_at=expires_at,
            home_sources=home_sources,
            allowed_zones=allowed_zones,
            allowed_hours=allowed_hours,
            case_ref=case_ref,
        )
        return person, ids

    def add_approved_person(
        self,
        *,
        registry: str,
        display_name: str,
        model_id: str,
        embeddings: list[tuple[str, npt.NDArray[np.float32]]],
        now: dt.datetime,
        expires_at: dt.datetime,
        home_sources: Sequence[str] = (),
        allowed_zones: Sequence[str] = (),
        allowed_hours: str | None = None,
        case_ref: str | None = None,
        approval: Approval | None = None,
        actor: str = "gridwatch",
    ) -> tuple[Person, npt.NDArray[np.int64], ApprovalRecord | None]:
        """``add_person``, with the entry's first approval (a corrections registry's) in the same transaction:
        an entry of such a registry never exists without its approval. ``actor`` records who added it."""
        if approval is not None:
            approval.check()
        person_id = "p_" + secrets.token_hex(8)
        conditions = PersonConditions(
            person_id,
            registry,
            now,
            home_sources=check_config_ids("home source", home_sources),
            allowed_zones=check_config_ids("zone", allowed_zones),
            allowed_hours=None if allowed_hours is None else check_config_id("schedule", allowed_hours),
            case_ref=None if case_ref is None else check_case_ref(case_ref),
        )

        ring = self._require_keys(f"enrolment in {registry!r} (templates are encrypted at rest)").keyring(
            registry, create=True
        )
        aad = template_aad(registry, person_id, model_id)

        def add(conn: Connection) -> tuple[tuple[list[int], ApprovalRecord | None], bool]:
            conn.execute(
                persons_t.insert().values(
                    person_id=person_id,
                    registry=registry,
                    display_name=display_name,
                    enrolled_at=now,
                    expires_at=expires_at,
                    **_condition_values(conditions),
                )
            )
            ids = []
            for photo_sha, vector in embeddings:
                result = conn.execute(
                    embeddings_t.insert()
                    .values(
                        person_id=person_id,
                        model_id=model_id,
                        photo_sha256=photo_sha,
                        vector=ring.seal(np.asarray(vector, "<f4").tobytes(), aad),
                        key_id=ring.key_id,
                    )
                    .returning(embeddings_t.c.embedding_id)
                )
                ids.append(int(result.scalar_one()))
            record = None
            if approval is not None:
                record = approval_rows.insert_in(
                    conn,
                    person_id=person_id,
                    registry=registry,
                    approval=approval,
                    supersedes=None,
                    now=now,
                    actor=actor,
                )
            return (ids, record), True

        ids, record = self._change(add, "registry enrolment")
        person = _with_conditions(Person(person_id, registry, display_name, now, expires_at, len(ids)), conditions)
        return person, np.array(ids, dtype=np.int64), record

    # --- approvals of corrections registries (recognition.approvals) ----------------------------------

    def add_approval(
        self, person_id: str, approval: Approval, *, now: dt.datetime, actor: str
    ) -> ApprovalRecord | None:
        """A new approval of an entry (an extension): it supersedes the entry's latest approval, which stays as
        it was. None if there is no such person."""
        approval.check()

        def add(conn: Connection) -> tuple[ApprovalRecord | None, bool]:
            person = conn.execute(select(persons_t.c.registry).where(persons_t.c.person_id == person_id)).first()
            if person is None:
                return None, False
            earlier = approval_rows.of_person(conn, person_id)
            record = approval_rows.insert_in(
                conn,
                person_id=person_id,
                registry=person.registry,
                approval=approval,
                supersedes=earlier[-1].approval_id if earlier else None,
                now=now,
                actor=actor,
            )
            return record, True

        return self._change(add, "approval record")

    def approvals(self, person_id: str) -> list[ApprovalRecord]:
        """An entry's approvals, oldest first (the caller audits who read them)."""
        self._ensure_open()
        return self._db.transaction(
            lambda conn: approval_rows.of_person(conn, person_id), what="approval read", read_only=True
        )

    def approval_windows(self, registries: Sequence[str]) -> dict[str, dict[str, list[Window]]]:
        """Registry → person → their approvals' windows: what matching needs, nothing else."""
        self._ensure_open()
        return self._db.transaction(
            lambda conn: approval_rows.windows_of_registries(conn, registries), what="approval read", read_only=True
        )

    def update_conditions(
        self,
        person_id: str,
        *,
        home_sources: Sequence[str] | None = None,
        allowed_zones: Sequence[str] | None = None,
        allowed_hours: str | None = None,
        case_ref: str | None = None,
        clear_allowed_hours: bool = False,
        clear_case_ref: bool = False,
    ) -> ConditionsChange | None:
        """Change a person's conditions; ``None`` if there is no such person.

        ``None`` leaves a field as it is; an empty list clears a list, ``clear_allowed_hours`` /
        ``clear_case_ref`` clear the others (``ValueError`` together with a value). A real change bumps
        the registry generation, like an enrolment; setting the values a person already has does not.
        """
        if clear_allowed_hours and allowed_hours is not None:
            raise ValueError("allowed_hours: set or clear, not both")
        if clear_case_ref and case_ref is not None:
            raise ValueError("case_ref: set or clear, not both")
        changes: dict[str, Any] = {}
        if home_sources is not None:
            changes["home_sources"] = check_config_ids("home source", home_sources)
        if allowed_zones is not None:
            changes["allowed_zones"] = check_config_ids("zone", allowed_zones)
        if allowed_hours is not None or clear_allowed_hours:
            changes["allowed_hours"] = None if allowed_hours is None else check_config_id("schedule", allowed_hours)
        if case_ref is not None or clear_case_ref:
            changes["case_ref"] = None if case_ref is None else check_case_ref(case_ref)

        def update(conn: Connection) -> tuple[ConditionsChange | None, bool]:
            row = conn.execute(select(*_CONDITION_COLUMNS).where(persons_t.c.person_id == person_id)).first()
            if row is None:
                return None, False
            before = _conditions(row)
            after = replace(before, **changes)
            if after == before:
                return ConditionsChange(before, after), False
            conn.execute(
                persons_t.update().where(persons_t.c.person_id == person_id).values(**_condition_values(after))
            )
            return ConditionsChange(before, after), True

        return self._change(update, "registry update")

    def remove_person(self, person_id: str, *, reclaim: bool = True) -> tuple[Person | None, npt.NDArray[np.int64]]:
        """Deletes the person and their embeddings and the rows kept about them; returns what was removed.

        ``reclaim``: rewrite the database files at once (see the module); a caller erasing many
        persons passes False and calls ``reclaim()`` once after the last.
        """

        def remove(conn: Connection) -> tuple[tuple[Person | None, list[int]], bool]:
            person = _get(conn, person_id)
            if person is None:
                return (None, []), False
            rows = conn.execute(select(embeddings_t.c.embedding_id).where(embeddings_t.c.person_id == person_id)).all()
            conn.execute(persons_t.delete().where(persons_t.c.person_id == person_id))
            return (person, [int(r[0]) for r in rows]), True

        person, ids = self._change(remove, "registry erasure")
        if person is not None:
            if self._erasure is not None:
                self._erasure.forget_persons([person_id])
            if reclaim:
                self.reclaim()
        return person, np.array(ids, dtype=np.int64)

    def reclaim(self, *, wait_s: float = RECLAIM_WAIT_S) -> bool:
        """Make rows erased so far leave the database files (``Database.reclaim``); True when done."""
        self._ensure_open()
        return self._db.reclaim(_ERASED_TABLES, wait_s=wait_s)

    def data_version(self) -> int:
        """A number that changes whenever another process (e.g. a CLI command) commits to the store.

        Polled before every search: while the database is unreachable it answers the last number it
        read (matching goes on with the loaded indexes; a change is picked up once the database is
        back) instead of holding recognition up.
        """
        self._ensure_open()
        if not self._lock.acquire(blocking=False):
            # Our own change is being written (or retried while the database is away): nothing new
            # from other processes can be told apart until it ends, and a search must not wait for it.
            if self._last_version is not None:
                return self._last_version
            self._lock.acquire()
        try:
            try:
                value = self._db.transaction(
                    lambda conn: conn.execute(
                        select(generations.c.value).where(generations.c.name == _GENERATION)
                    ).scalar_one(),
                    what="registry generation",
                    retry_s=0.0,
                    read_only=True,
                )
            except DatabaseUnavailableError as exc:
                if self._last_version is None:
                    raise
                if not self._stale:
                    self._stale = True
                    log.warning("registry store unreachable (%s): matching on the loaded indexes", exc)
                return self._last_version
            if self._stale:
                self._stale = False
                log.info("registry store reachable again")
            self._last_version = int(value) - self._own_bumps
            return self._last_version
        finally:
            self._lock.release()

    def get(self, person_id: str) -> Person | None:
        self._ensure_open()
        return self._db.transaction(lambda conn: _get(conn, person_id), what="registry read", read_only=True)

    def list_persons(self, registry: str | None = None) -> list[Person]:
        query = (
            select(*_PERSON_COLUMNS, func.count(embeddings_t.c.embedding_id).label("embeddings"))
            .select_from(persons_t.outerjoin(embeddings_t, embeddings_t.c.person_id == persons_t.c.person_id))
            .group_by(*_PERSON_COLUMNS)
            .order_by(*_ENROLMENT_ORDER)
        )
        if registry is not None:
            query = query.where(persons_t.c.registry == registry)
        self._ensure_open()
        rows = self._db.transaction(lambda conn: conn.execute(query).all(), what="registry read", read_only=True)
        return [_person(row) for row in rows]

    def expired(self, now: dt.datetime) -> list[Person]:
        query = (
            select(*_PERSON_COLUMNS, literal(0).label("embeddings"))
            .where(persons_t.c.expires_at <= now)
            .order_by(persons_t.c.expires_at)
        )
        self._ensure_open()
        rows = self._db.transaction(lambda conn: conn.execute(query).all(), what="registry read", read_only=True)
        return [_person(row) for row in rows]

    # --- PersonDirectory: what rules read (one query each, no embeddings) ---------------------------

    def conditions(self, person_id: str) -> PersonConditions | None:
        query = _with_windows(select(*_CONDITION_COLUMNS)).where(persons_t.c.person_id == person_id)
        self._ensure_open()
        rows = self._db.transaction(lambda conn: conn.execute(query).all(), what="registry read", read_only=True)
        entries = _grouped_conditions(rows)
        return entries[0] if entries else None

    def persons(self, registries: Collection[str]) -> list[PersonConditions]:
        if not registries:
            return []
        query = (
            _with_windows(select(*_CONDITION_COLUMNS))
            .where(persons_t.c.registry.in_(sorted(set(registries))))
            .order_by(*_ENROLMENT_ORDER, approvals_t.c.seq)
        )
        self._ensure_open()
        rows = self._db.transaction(lambda conn: conn.execute(query).all(), what="registry read", read_only=True)
        return _grouped_conditions(rows)

    def embeddings(self, registry: str, model_id: str) -> StoredEmbeddings:
        """All embeddings of a registry made with this model (others are not comparable), opened.

        Raises ``MasterKeyMissingError`` without the master key, ``RegistryKeyMissingError`` when the
        registry's key was shredded, ``DecryptError`` for a row that does not open (moved, changed).
        """
        keys = self._require_keys(f"loading the registry {registry!r} (templates are encrypted at rest)")
        query = (
            select(embeddings_t.c.embedding_id, embeddings_t.c.person_id, embeddings_t.c.vector, embeddings_t.c.key_id)
            .join(persons_t, persons_t.c.person_id == embeddings_t.c.person_id)
            .where(persons_t.c.registry == registry, embeddings_t.c.model_id == model_id)
            .order_by(embeddings_t.c.embedding_id)
        )
        self._ensure_open()
        rows = self._db.transaction(lambda conn: conn.execute(query).all(), what="registry read", read_only=True)
        if not rows:
            # Re-reads a changed key file: a registry shredded by another process leaves this one's memory too.
            keys.wrapped_keys()
            return StoredEmbeddings(np.empty(0, np.int64), [], np.empty((0, 0), np.float32))
        ring = keys.keyring(registry)
        vectors = []
        for _, person_id, blob, key in rows:
            if key is None:
                # Only an older version writing meanwhile leaves one: it is sealed when the store next opens.
                raise DecryptError("a template of an older version is not sealed yet: restart to seal it")
            plain = ring.open(bytes(blob), template_aad(registry, person_id, model_id))
            vectors.append(np.frombuffer(plain, dtype="<f4"))
        return StoredEmbeddings(
            ids=np.array([r[0] for r in rows], dtype=np.int64),
            person_ids=[r[1] for r in rows],
            vectors=np.stack(vectors).astype(np.float32, copy=False),
        )

    def _ensure_open(self) -> None:
        if not self._open:
            self.open()

    def _change(self, fn: Callable[[Connection], tuple[T, bool]], what: str) -> T:
        """``fn`` returns (result, changed); a change bumps the generation in the same transaction."""
        self._ensure_open()
        with self._lock:
            bumped = False

            def run(conn: Connection) -> T:
                nonlocal bumped
                result, bumped = fn(conn)
                if bumped:
                    conn.execute(
                        generations.update()
                        .where(generations.c.name == _GENERATION)
                        .values(value=generations.c.value + 1)
                    )
                return result

            result = self._db.transaction(run, what=what)
            if bumped:
                self._own_bumps += 1
            return result


_CONDITION_COLUMNS = (
    persons_t.c.person_id,
    persons_t.c.registry,
    persons_t.c.enrolled_at,
    persons_t.c.home_sources,
    persons_t.c.allowed_zones,
    persons_t.c.allowed_hours,
    persons_t.c.case_ref,
)
_PERSON_COLUMNS = (*_CONDITION_COLUMNS, persons_t.c.display_name, persons_t.c.expires_at)
_ENROLMENT_ORDER = (persons_t.c.registry, persons_t.c.enrolled_at, persons_t.c.person_id)


def _get(conn: Connection, person_id: str) -> Person | None:
    count = (
        select(func.count())
        .select_from(embeddings_t)
        .where(embeddings_t.c.person_id == persons_t.c.person_id)
        .scalar_subquery()
    )
    row = conn.execute(
        select(*_PERSON_COLUMNS, count.label("embeddings")).where(persons_t.c.person_id == person_id)
    ).first()
    return None if row is None else _person(row)


def _conditions(row: Row[*tuple[Any, ...]]) -> PersonConditions:
    return PersonConditions(
        person_id=row.person_id,
        registry=row.registry,
        enrolled_at=row.enrolled_at,
        home_sources=tuple(row.home_sources),
        allowed_zones=tuple(row.allowed_zones),
        allowed_hours=row.allowed_hours,
        case_ref=row.case_ref,
    )


def _with_windows(query: Select[Any]) -> Select[Any]:
    """``query`` on ``persons`` plus each approval's start and end (a row per approval; NULLs for none), so that
    rules read an entry and its approvals in one statement."""
    return query.add_columns(
        approvals_t.c.start.label("approval_start"), approvals_t.c.end.label("approval_end")
    ).select_from(persons_t.outerjoin(approvals_t, approvals_t.c.person_id == persons_t.c.person_id))


def _grouped_conditions(rows: Sequence[Row[Any]]) -> list[PersonConditions]:
    """One entry per person of rows from ``_with_windows`` (order kept), with its approvals' windows if any."""
    entries: dict[str, PersonConditions] = {}
    windows: dict[str, list[Window]] = {}
    for row in rows:
        if row.person_id not in entries:
            entries[row.person_id] = _conditions(row)
        if row.approval_start is not None:
            windows.setdefault(row.person_id, []).append((row.approval_start, row.approval_end))
    return [
        replace(entry, approvals=tuple(sorted(windows[pid]))) if pid in windows else entry
        for pid, entry in entries.items()
    ]


def _person(row: Row[*tuple[Any, ...]]) -> Person:
    person = Person(
        person_id=row.person_id,
        registry=row.registry,
        display_name=row.display_name,
        enrolled_at=row.enrolled_at,
        expires_at=row.expires_at,
        embeddings=int(row.embeddings),
    )
    return _with_conditions(person, _conditions(row))


def _with_conditions(person: Person, conditions: PersonConditions) -> Person:
    return replace(
        person,
        home_sources=conditions.home_sources,
        allowed_zones=conditions.allowed_zones,
        allowed_hours=conditions.allowed_hours,
        case_ref=conditions.case_ref,
    )


def _condition_values(conditions: PersonConditions) -> dict[str, Any]:
    """The condition columns of a ``persons`` row."""
    return {
        "home_sources": list(conditions.home_sources),
        "allowed_zones": list(conditions.allowed_zones),
        "allowed_hours": conditions.allowed_hours,
        "case_ref": conditions.case_ref,
    }


if TYPE_CHECKING:

    def _is_a_person_directory(store: RegistryStore) -> PersonDirectory:
        return store  # mypy checks that the store implements the port rules are given
