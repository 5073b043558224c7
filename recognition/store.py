"""The registry store (SQLite): enrolled persons and the embeddings of their enrolment photos.

Persons carry pseudonymous ids; the display name is the only directly identifying field.
Enrolment photos are not kept: only their SHA-256 (to spot a photo enrolled twice) and the
embedding. Removing a person deletes their rows (erasure), not a soft flag.
"""

from __future__ import annotations

import datetime as dt
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from gridwatch.core.sqlite import open_database

SCHEMA = """
CREATE TABLE IF NOT EXISTS persons (
    person_id    TEXT PRIMARY KEY,
    registry     TEXT NOT NULL,
    display_name TEXT NOT NULL,
    enrolled_at  TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS persons_registry ON persons(registry);
CREATE TABLE IF NOT EXISTS embeddings (
    embedding_id INTEGER PRIMARY KEY AUTOINCREMENT,
    person_id    TEXT NOT NULL REFERENCES persons(person_id) ON DELETE CASCADE,
    model_id     TEXT NOT NULL,
    photo_sha256 TEXT NOT NULL,
    vector       BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS embeddings_person ON embeddings(person_id);
"""


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
    """Thread-safe: one connection, one lock (SQLite calls are short)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        if self._conn is not None:
            return
        # Erased rows are overwritten, not left in free pages.
        self._conn = open_database(self._path, SCHEMA, secure_delete=True)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self.open()
        assert self._conn is not None
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

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
        ids: list[int] = []
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO persons VALUES (?, ?, ?, ?, ?)",
                (person_id, registry, display_name, now.isoformat(), expires_at.isoformat()),
            )
            for photo_sha, vector in embeddings:
                cur = conn.execute(
                    "INSERT INTO embeddings (person_id, model_id, photo_sha256, vector) VALUES (?, ?, ?, ?)",
                    (person_id, model_id, photo_sha, np.asarray(vector, np.float32).tobytes()),
                )
                assert cur.lastrowid is not None
                ids.append(cur.lastrowid)
        person = Person(person_id, registry, display_name, now, expires_at, len(ids))
        return person, np.array(ids, dtype=np.int64)

    def remove_person(self, person_id: str) -> tuple[Person | None, npt.NDArray[np.int64]]:
        """Deletes the person and their embeddings; returns what was removed."""
        with self._tx() as conn:
            person = self._get(conn, person_id)
            rows = conn.execute("SELECT embedding_id FROM embeddings WHERE person_id = ?", (person_id,)).fetchall()
            conn.execute("DELETE FROM persons WHERE person_id = ?", (person_id,))
        return person, np.array([r[0] for r in rows], dtype=np.int64)

    def data_version(self) -> int:
        """A number that changes whenever another connection (e.g. a CLI command) commits to the store."""
        self.open()
        assert self._conn is not None
        with self._lock:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def get(self, person_id: str) -> Person | None:
        with self._tx() as conn:
            return self._get(conn, person_id)

    def list_persons(self, registry: str | None = None) -> list[Person]:
        query = (
            "SELECT p.person_id, p.registry, p.display_name, p.enrolled_at, p.expires_at, COUNT(e.embedding_id) "
            "FROM persons p LEFT JOIN embeddings e ON e.person_id = p.person_id "
        )
        params: tuple[str, ...] = ()
        if registry is not None:
            query += "WHERE p.registry = ? "
            params = (registry,)
        query += "GROUP BY p.person_id ORDER BY p.registry, p.enrolled_at"
        with self._tx() as conn:
            return [_person(row) for row in conn.execute(query, params).fetchall()]

    def expired(self, now: dt.datetime) -> list[Person]:
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT person_id, registry, display_name, enrolled_at, expires_at, 0 FROM persons "
                "WHERE expires_at <= ?",
                (now.isoformat(),),
            ).fetchall()
        return [_person(row) for row in rows]

    def embeddings(self, registry: str, model_id: str) -> StoredEmbeddings:
        """All embeddings of a registry made with this model (others are not comparable)."""
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT e.embedding_id, e.person_id, e.vector FROM embeddings e "
                "JOIN persons p ON p.person_id = e.person_id WHERE p.registry = ? AND e.model_id = ?",
                (registry, model_id),
            ).fetchall()
        if not rows:
            return StoredEmbeddings(np.empty(0, np.int64), [], np.empty((0, 0), np.float32))
        return StoredEmbeddings(
            ids=np.array([r[0] for r in rows], dtype=np.int64),
            person_ids=[r[1] for r in rows],
            vectors=np.stack([np.frombuffer(r[2], dtype=np.float32) for r in rows]),
        )

    @staticmethod
    def _get(conn: sqlite3.Connection, person_id: str) -> Person | None:
        row = conn.execute(
            "SELECT p.person_id, p.registry, p.display_name, p.enrolled_at, p.expires_at, "
            "(SELECT COUNT(*) FROM embeddings e WHERE e.person_id = p.person_id) FROM persons p "
            "WHERE p.person_id = ?",
            (person_id,),
        ).fetchone()
        return None if row is None else _person(row)


def _person(row: tuple[str, str, str, str, str, int]) -> Person:
    return Person(
        person_id=row[0],
        registry=row[1],
        display_name=row[2],
        enrolled_at=dt.datetime.fromisoformat(row[3]),
        expires_at=dt.datetime.fromisoformat(row[4]),
        embeddings=int(row[5]),
    )
