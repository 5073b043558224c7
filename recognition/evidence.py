"""The evidence store: face crops, frames and reference photos, sealed at rest.

Only registries with ``evidence.keep`` (crops, frames) or ``evidence.reference_photo`` store anything,
and only for matched faces: recognition never hands an unmatched face here. Every object is sealed
by ``gridwatch.core.crypto`` under its registry's data key (``gridwatch.core.registry_keys``), with
associated data binding it to its kind, registry, person and object id, so a blob copied onto another
row, person or registry does not open, a copy of the database holds no image, and shredding the
registry (destroying its key) makes every copy unreadable. Objects an older version sealed under the
master key itself are re-sealed under their registry's key when the service starts
(``reseal_under_registry_keys``). Rows expire (``purge_expired``, the retention job) and go with
their person (``forget_persons``, a ``PersonErasure``).

Blocking (one short transaction per call); thread-safe. Async callers use ``asyncio.to_thread``.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import cv2
import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, select

from gridwatch.core.crypto import DecryptError, Keyring, associated_data
from gridwatch.core.db import Database
from gridwatch.core.db.schema import evidence
from gridwatch.core.metrics import EVIDENCE_FAILURES, EVIDENCE_STORED
from gridwatch.core.redact import redact_text
from gridwatch.core.registry_keys import RegistryKeys

log = logging.getLogger(__name__)

# A match must not wait a database outage out for its evidence: the sighting (and alert) goes on without.
CAPTURE_RETRY_S = 2.0
# Context around the detector's box, as a share of the box's size on each side (hair, chin, ears).
CROP_MARGIN = 0.3
JPEG_QUALITY = 90

EvidenceKind = Literal["face", "frame", "reference"]
EVIDENCE_KINDS: tuple[str, ...] = get_args(EvidenceKind)


class EvidenceNotFoundError(LookupError):
    """No such evidence object (never stored, expired, purged or erased)."""


@dataclass(frozen=True, slots=True)
class EvidenceObject:
    """What is known about a stored object without opening it."""

    object_id: str
    kind: str
    registry: str
    person_id: str
    sighting_id: str | None
    alert_id: str | None
    key_id: str
    created_at: dt.datetime
    expires_at: dt.datetime


def new_object_id() -> str:
    """A random id that says nothing about its content ("ev_" + 128 random bits)."""
    return "ev_" + secrets.token_hex(16)


class EvidenceStore:
    """Sealed evidence in the one database. ``open()``/``close()`` like the other stores (no I/O in ``__init__``).

    ``keys``: the registries' data keys. None, or keys without the master key, give a store that can
    only delete (``purge_expired``, ``forget_persons``, ``forget_registry``), so retention and erasure
    go on without a data key.
    """

    def __init__(self, database: Database, keys: RegistryKeys | None = None) -> None:
        self._db = database
        self._keys = keys

    @property
    def database(self) -> Database:
        return self._db

    def open(self) -> None:
        self._db.open()

    def close(self) -> None:
        """Idempotent; the database itself is closed by its owner."""

    def put(
        self,
        kind: EvidenceKind,
        registry: str,
        person_id: str,
        image: bytes,
        *,
        retention_days: int,
        sighting_id: str | None = None,
        alert_id: str | None = None,
        now: dt.datetime | None = None,
        retry_s: float | None = None,
    ) -> str:
        """Seals and stores ``image`` (encoded, e.g. JPEG); returns its object id.

        ``retry_s``: how long to retry a database that is away (default: the database's window).
        """
        keys = self._require_keys()
        if kind not in EVIDENCE_KINDS:
            raise ValueError(f"unknown evidence kind {kind!r}; expected one of {', '.join(EVIDENCE_KINDS)}")
        if retention_days < 1:
            raise ValueError("retention_days must be at least 1")
        created = now or dt.datetime.now(dt.UTC)
        object_id = new_object_id()
        keyring = keys.keyring(registry, create=True)
        blob = keyring.seal(image, associated_data(kind, registry, person_id, object_id))
        row = {
            "object_id": object_id,
            "registry": registry,
            "person_id": person_id,
            "kind": kind,
            "alert_id": alert_id,
            "sighting_id": sighting_id,
            "key_id": keyring.key_id,
            "blob": blob,
            "created_at": created,
            "expires_at": created + dt.timedelta(days=retention_days),
        }
        self._db.transaction(
            lambda conn: conn.execute(evidence.insert().values(**row)), what="evidence write", retry_s=retry_s
        )
        return object_id

    def get(self, object_id: str, *, registry: str, person_id: str, now: dt.datetime | None = None) -> bytes:
        """The image of ``object_id``, which must belong to ``person_id`` of ``registry``.

        Raises ``EvidenceNotFoundError`` (no such object, or expired) or ``DecryptError`` (another
        person's or registry's object, a changed blob, a key that is not configured, a shredded registry).
        """
        keys = self._require_keys()
        query = select(evidence.c.kind, evidence.c.blob, evidence.c.expires_at).where(evidence.c.object_id == object_id)
        row = self._db.transaction(lambda conn: conn.execute(query).first(), what="evidence read", read_only=True)
        if row is None or row.expires_at <= (now or dt.datetime.now(dt.UTC)):
            raise EvidenceNotFoundError(f"no evidence {object_id!r}")
        # The caller's registry and person, not the row's: a row relabelled in the database does not open.
        keyring = keys.keyring(registry)
        return keyring.open(bytes(row.blob), associated_data(row.kind, registry, person_id, object_id))

    def reseal_under_registry_keys(self) -> dict[str, int]:
        """Re-seals objects an older version sealed under the master key itself (current or old) under
        their registry's data key, in place; returns counts per registry. Idempotent."""
        keys = self._require_keys()
        master = keys.master
        assert master is not None  # _require_keys
        resealed: dict[str, int] = {}
        for registry in self._registries():
            count = self._reseal(registry, keys.keyring(registry, create=True), master)
            if count:
                resealed[registry] = count
        if resealed:
            log.info(
                "re-sealed %d evidence object(s) under their registry's data key (%s)",
                sum(resealed.values()),
                ", ".join(f"{name}: {count}" for name, count in sorted(resealed.items())),
            )
        return resealed

    def _reseal(self, registry: str, ring: Keyring, master: Keyring) -> int:
        c = evidence.c
        query = select(c.object_id, c.kind, c.person_id, c.blob).where(c.registry == registry, c.key_id != ring.key_id)

        def reseal(conn: Connection) -> int:
            count = 0
            for row in conn.execute(query).all():
                aad = associated_data(row.kind, registry, row.person_id, row.object_id)
                try:
                    image = master.open(bytes(row.blob), aad)
                except DecryptError:
                    continue  # not the master's: a shredded or foreign key; left for retention to purge
                conn.execute(
                    evidence.update()
                    .where(c.object_id == row.object_id)
                    .values(blob=ring.seal(image, aad), key_id=ring.key_id)
                )
                count += 1
            return count

        return self._db.transaction(reseal, what="evidence re-seal")

    def _registries(self) -> list[str]:
        query = select(evidence.c.registry).distinct().order_by(evidence.c.registry)
        rows = self._db.transaction(lambda conn: conn.execute(query).all(), what="evidence read", read_only=True)
        return [str(row[0]) for row in rows]

    def _require_keys(self) -> RegistryKeys:
        if self._keys is None or self._keys.master is None:
            raise RuntimeError("this evidence store has no data key: it can only purge and erase")
        return self._keys

    def objects(self, *, sighting_id: str | None = None, reference_of: str | None = None) -> list[EvidenceObject]:
        """The objects stored for one sighting (face and frame), or a person's reference photo
        (``reference_of``: the person id), without opening them."""
        if (sighting_id is None) == (reference_of is None):
            raise ValueError("give sighting_id or reference_of")
        c = evidence.c
        where = (
            c.sighting_id == sighting_id
            if sighting_id is not None
            else (c.person_id == reference_of) & (c.kind == "reference")
        )
        query = (
            select(
                c.object_id,
                c.kind,
                c.registry,
                c.person_id,
                c.sighting_id,
                c.alert_id,
                c.key_id,
                c.created_at,
                c.expires_at,
            )
            .where(where)
            .order_by(c.kind, c.created_at)
        )
        rows = self._db.transaction(lambda conn: conn.execute(query).all(), what="evidence read", read_only=True)
        return [EvidenceObject(*row) for row in rows]

    def purge_expired(self, now: dt.datetime | None = None) -> int:
        """Deletes every object whose retention has run out; returns how many."""
        cutoff = now or dt.datetime.now(dt.UTC)

        def purge(conn: Connection) -> int:
            return int(conn.execute(evidence.delete().where(evidence.c.expires_at <= cutoff)).rowcount)

        return self._db.transaction(purge, what="evidence purge")

    def forget_registry(self, registry: str) -> int:
        """Deletes every object of ``registry`` (a shred); returns how many."""

        def forget(conn: Connection) -> int:
            return int(conn.execute(evidence.delete().where(evidence.c.registry == registry)).rowcount)

        return self._db.transaction(forget, what="evidence erasure")

    def forget_persons(self, person_ids: Sequence[str]) -> None:
        """An erased person leaves no evidence (``PersonErasure``)."""
        if not person_ids:
            return
        ids = list(person_ids)
        self._db.transaction(
            lambda conn: conn.execute(evidence.delete().where(evidence.c.person_id.in_(ids))),
            what="evidence erasure",
        )


def face_crop(
    image: npt.NDArray[np.uint8], box: npt.NDArray[np.float32], *, margin: float = CROP_MARGIN
) -> npt.NDArray[np.uint8]:
    """The face of ``box`` (x1, y1, x2, y2) with ``margin`` around it, clipped to the image."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
    left, top = max(0, int(x1 - dx)), max(0, int(y1 - dy))
    right, bottom = min(width, int(x2 + dx + 1)), min(height, int(y2 + dy + 1))
    if right <= left or bottom <= top:
        raise ValueError("the face box lies outside the image")
    return image[top:bottom, left:right]


def encode_jpeg(image: npt.NDArray[np.uint8], *, quality: int = JPEG_QUALITY) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("the image could not be encoded as JPEG")
    return bytes(encoded.tobytes())


class EvidenceCapture:
    """The evidence of one match: its face crop and its frame, sealed into the store. Blocking.

    The recognizer calls it only for a face that matched a registry with ``evidence.keep``; an
    unmatched face never comes here. A failed write is logged and counted, and the match goes on
    without evidence: an alert must not wait for, or be lost with, its pictures.
    """

    def __init__(self, store: EvidenceStore, *, retry_s: float = CAPTURE_RETRY_S) -> None:
        self._store = store
        self._retry_s = retry_s

    @property
    def store(self) -> EvidenceStore:
        return self._store

    def capture(
        self,
        image: npt.NDArray[np.uint8],
        box: npt.NDArray[np.float32],
        *,
        registry: str,
        person_id: str,
        sighting_id: str,
        retention_days: int,
        now: dt.datetime | None = None,
    ) -> str | None:
        """Stores the face crop and the frame; returns the face's object id (None when it could not be stored)."""
        face_id: str | None = None
        try:
            pictures: list[tuple[EvidenceKind, npt.NDArray[np.uint8]]] = [
                ("face", face_crop(image, box)),
                ("frame", image),
            ]
            for kind, picture in pictures:
                object_id = self._store.put(
                    kind,
                    registry,
                    person_id,
                    encode_jpeg(picture),
                    retention_days=retention_days,
                    sighting_id=sighting_id,
                    now=now,
                    retry_s=self._retry_s,
                )
                EVIDENCE_STORED.labels(registry=registry, kind=kind).inc()
                face_id = face_id or object_id
        except Exception as exc:
            EVIDENCE_FAILURES.labels(registry=registry).inc()
            # No person id: the log must not say who was seen where.
            log.warning("evidence of a %s match was not stored: %s", registry, redact_text(str(exc)))
        return face_id


__all__ = [
    "EVIDENCE_KINDS",
    "DecryptError",
    "EvidenceCapture",
    "EvidenceKind",
    "EvidenceNotFoundError",
    "EvidenceObject",
    "EvidenceStore",
    "encode_jpeg",
    "face_crop",
    "new_object_id",
]
