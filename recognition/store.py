"""The registry store: enrolled persons and the embeddings of their enrolment photos.

Persons carry pseudonymous ids; the display name is the only directly identifying field.
Enrolment photos are not kept: only their SHA-256 (to spot a photo enrolled twice) and the
embedding. Removing a person deletes their rows (erasure), not a soft flag; on SQLite the file
overwrites deleted rows (``secure_delete``); on PostgreSQL dead rows stay until VACUUM reclaims them.

The rows live in the one database (``gridwatch.core.db``), SQLite or PostgreSQL. Every change bumps
the ``registry`` generation in the same transaction, so another process's change (a CLI command
while the service runs) is seen by ``data_version()`` on both backends.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, func, select

from gridwatch.core.db import Database, DatabaseUnavailableError
from gridwatch.core.db.schema import embeddings as embeddings_t
from gridwatch.core.db.schema import generations, persons

log = logging.getLogger(__name__)

T = TypeVar("T")

_GENERATION = "registry"


@dataclass(frozen=True, slots=True)
class Person:
    person_id: str
    registry: str
    display_name: str
    enrolled_at: dt.datetime
    expires_at: dt.datetime
    embeddings: int = 0


@dataclass(frozen=True, slots=True)
class StoredEmbeddings:
    ids: npt.NDArray[np.int64]
    person_ids: list[str]
    vectors: npt.NDArray[np.float32]


class RegistryStore:
    """Thread-safe. No I/O in ``__init__``; ``open()`` opens (and migrates) the shared database."""

    def __init__(self, database: Database, *, owns_database: bool = False) -> None:
        """``owns_database``: ``close()`` closes the database too (a store built alone, e.g. by a CLI command)."""
        self._db = database
        self._owns_database = owns_database
        # Generation bumps of our own commits: data_version() reports only other processes' changes.
        self._own_bumps = 0
        self._last_version: int | None = None
        self._stale = False
        self._lock = threading.Lock()
        self._open = False

    @property
    def database(self) -> Database:
        return self._db

    def open(self) -> None:
        self._db.open()
        self._open = True

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
    ) -> tuple[Person, npt.NDArray[np.int64]]:
        """A new person with their embeddings (photo hash, vector); returns the new embedding ids."""
        person_id = "p_" + secrets.token_hex(8)

        def add(conn: Connection) -> tuple[list[int], bool]:
            conn.execute(
                persons.insert().values(
                    person_id=person_id,
                    registry=registry,
                    display_name=display_name,
                    enrolled_at=now,
                    expires_at=expires_at,
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
                        vector=np.asarray(vector, np.float32).tobytes(),
                    )
                    .returning(embeddings_t.c.embedding_id)
                )
                ids.append(int(result.scalar_one()))
            return ids, True

        ids = self._change(add, "registry enrolment")
        person = Person(person_id, registry, display_name, now, expires_at, len(ids))
        return person, np.array(ids, dtype=np.int64)

    def remove_person(self, person_id: str) -> tuple[Person | None, npt.NDArray[np.int64]]:
        """Deletes the person and their embeddings; returns what was removed."""

        def remove(conn: Connection) -> tuple[tuple[Person | None, list[int]], bool]:
            person = _get(conn, person_id)
            if person is None:
                return (None, []), False
            rows = conn.execute(select(embeddings_t.c.embedding_id).where(embeddings_t.c.person_id == person_id)).all()
            conn.execute(persons.delete().where(persons.c.person_id == person_id))
            return (person, [int(r[0]) for r in rows]), True

        person, ids = self._change(remove, "registry erasure")
        return person, np.array(ids, dtype=np.int64)

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
        return self._db.transaction(lambda conn: _get(conn, person_id), what="registry read")

    def list_persons(self, registry: str | None = None) -> list[Person]:
        query = (
            select(*_PERSON_COLUMNS, func.count(embeddings_t.c.embedding_id))
            .select_from(persons.outerjoin(embeddings_t, embeddings_t.c.person_id == persons.c.person_id))
            .group_by(*_PERSON_COLUMNS)
            .order_by(persons.c.registry, persons.c.enrolled_at, persons.c.person_id)
        )
        if registry is not None:
            query = query.where(persons.c.registry == registry)
        self._ensure_open()
        rows = self._db.transaction(lambda conn: conn.execute(query).all(), what="registry read")
        return [_person(row) for row in rows]

    def expired(self, now: dt.datetime) -> list[Person]:
        query = select(*_PERSON_COLUMNS).where(persons.c.expires_at <= now).order_by(persons.c.expires_at)
        self._ensure_open()
        rows = self._db.transaction(lambda conn: conn.execute(query).all(), what="registry read")
        return [_person((*row, 0)) for row in rows]

    def embeddings(self, registry: str, model_id: str) -> StoredEmbeddings:
        """All embeddings of a registry made with this model (others are not comparable)."""
        query = (
            select(embeddings_t.c.embedding_id, embeddings_t.c.person_id, embeddings_t.c.vector)
            .join(persons, persons.c.person_id == embeddings_t.c.person_id)
            .where(persons.c.registry == registry, embeddings_t.c.model_id == model_id)
            .order_by(embeddings_t.c.embedding_id)
        )
        self._ensure_open()
        rows = self._db.transaction(lambda conn: conn.execute(query).all(), what="registry read")
        if not rows:
            return StoredEmbeddings(np.empty(0, np.int64), [], np.empty((0, 0), np.float32))
        return StoredEmbeddings(
            ids=np.array([r[0] for r in rows], dtype=np.int64),
            person_ids=[r[1] for r in rows],
            vectors=np.stack([np.frombuffer(r[2], dtype=np.float32) for r in rows]),
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


_PERSON_COLUMNS = (
    persons.c.person_id,
    persons.c.registry,
    persons.c.display_name,
    persons.c.enrolled_at,
    persons.c.expires_at,
)


def _get(conn: Connection, person_id: str) -> Person | None:
    count = (
        select(func.count())
        .select_from(embeddings_t)
        .where(embeddings_t.c.person_id == persons.c.person_id)
        .scalar_subquery()
    )
    row = conn.execute(select(*_PERSON_COLUMNS, count).where(persons.c.person_id == person_id)).first()
    return None if row is None else _person(row)


def _person(row: Sequence[Any]) -> Person:
    return Person(
        person_id=row[0],
        registry=row[1],
        display_name=row[2],
        enrolled_at=row[3],
        expires_at=row[4],
        embeddings=int(row[5]),
    )
