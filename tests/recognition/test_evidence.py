"""Evidence at rest: sealed in the database, bound to its person and registry, purged and erased."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import cv2
import pytest
from sqlalchemy import select, update

from gridwatch.core.crypto import DecryptError, Keyring, associated_data, new_data_key
from gridwatch.core.db import Database
from gridwatch.core.db.schema import evidence
from gridwatch.core.registry_keys import RegistryKeyMissingError, RegistryKeys
from recognition.evidence import EvidenceNotFoundError, EvidenceStore, new_object_id
from tests.support.db import Databases
from tests.support.keys import site_keys

PHOTOS = Path("/work/shared/testdata/faces")


def jpeg(path: Path) -> bytes:
    """The photo as recognition would store it: decoded and encoded again by OpenCV."""
    ok, encoded = cv2.imencode(".jpg", cv2.imread(str(path)))
    assert ok
    return bytes(encoded.tobytes())


OBAMA = jpeg(PHOTOS / "obama" / "obama.jpg")
BIDEN = jpeg(PHOTOS / "biden" / "biden.jpg")
JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def database(databases: Databases) -> Database:
    return databases()


@pytest.fixture
def keys(tmp_path: Path) -> RegistryKeys:
    return site_keys(tmp_path)


@pytest.fixture
def store(database: Database, keys: RegistryKeys) -> EvidenceStore:
    store = EvidenceStore(database, keys)
    store.open()
    return store


def stored_blob(database: Database, object_id: str) -> bytes:
    query = select(evidence.c.blob).where(evidence.c.object_id == object_id)
    return bytes(database.transaction(lambda conn: conn.execute(query).scalar_one(), what="test read"))


def pieces(image: bytes, size: int = 32) -> list[bytes]:
    """The image's ``size``-byte pieces past its headers (which any JPEG may share), all of them distinctive."""
    chunks = [image[i : i + size] for i in range(1024, len(image) - size, size)]
    distinctive = [chunk for chunk in chunks if len(set(chunk)) >= 16]
    assert len(distinctive) > len(chunks) // 2
    return distinctive


def test_round_trip(store: EvidenceStore, keys: RegistryKeys) -> None:
    object_id = store.put("face", "wanted", "p_a", OBAMA, retention_days=30, sighting_id="s1", now=NOW)
    assert store.get(object_id, registry="wanted", person_id="p_a", now=NOW) == OBAMA
    [described] = store.objects(sighting_id="s1")
    assert (described.object_id, described.kind, described.registry, described.person_id) == (
        object_id,
        "face",
        "wanted",
        "p_a",
    )
    assert described.key_id == keys.keyring("wanted").key_id  # the registry's data key, not the master key
    assert described.expires_at == NOW + dt.timedelta(days=30)


def test_stored_bytes_are_not_an_image_and_do_not_contain_it(store: EvidenceStore, database: Database) -> None:
    object_id = store.put("frame", "wanted", "p_a", OBAMA, retention_days=30)
    blob = stored_blob(database, object_id)
    assert not blob.startswith(JPEG_MAGIC)
    assert not blob.startswith(PNG_MAGIC)
    assert OBAMA not in blob
    assert not any(piece in blob for piece in pieces(OBAMA))


def test_the_sqlite_files_hold_no_piece_of_the_image(tmp_path: Path, keys: RegistryKeys) -> None:
    path = tmp_path / "evidence.sqlite3"
    with Database(f"sqlite:///{path}") as database:
        store = EvidenceStore(database, keys)
        object_id = store.put("face", "wanted", "p_a", OBAMA, retention_days=30)
        blob = stored_blob(database, object_id)
        on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith(path.name))
    # The files read are the ones that hold the object (its sealed bytes are there).
    assert blob[-64:] in on_disk
    assert not any(piece in on_disk for piece in pieces(OBAMA))


def test_a_wrong_key_fails_to_decrypt(
    store: EvidenceStore, database: Database, keys: RegistryKeys, tmp_path: Path
) -> None:
    object_id = store.put("face", "wanted", "p_a", OBAMA, retention_days=30)
    another_site = site_keys(tmp_path / "elsewhere")  # its own data key for "wanted"
    another_site.keyring("wanted", create=True)
    with pytest.raises(DecryptError):
        EvidenceStore(database, another_site).get(object_id, registry="wanted", person_id="p_a")
    another_master = RegistryKeys(Keyring(new_data_key()), keys.path)  # the site's key file, a wrong master key
    with pytest.raises(DecryptError):
        EvidenceStore(database, another_master).get(object_id, registry="wanted", person_id="p_a")


def test_a_shredded_registry_key_makes_its_evidence_unreadable(store: EvidenceStore, keys: RegistryKeys) -> None:
    gone = store.put("face", "wanted", "p_a", OBAMA, retention_days=30)
    kept = store.put("face", "kept", "p_b", BIDEN, retention_days=30)
    assert keys.shred("wanted") is not None
    with pytest.raises(RegistryKeyMissingError):
        store.get(gone, registry="wanted", person_id="p_a")
    assert store.get(kept, registry="kept", person_id="p_b") == BIDEN
    assert store.forget_registry("wanted") == 1


def test_evidence_an_older_version_sealed_under_the_master_key_is_resealed_under_the_registry_key(
    store: EvidenceStore, database: Database, keys: RegistryKeys
) -> None:
    master = keys.master
    assert master is not None
    object_id = new_object_id()
    older = {
        "object_id": object_id,
        "registry": "wanted",
        "person_id": "p_a",
        "kind": "face",
        "key_id": master.key_id,
        "blob": master.seal(OBAMA, associated_data("face", "wanted", "p_a", object_id)),
        "created_at": NOW,
        "expires_at": NOW + dt.timedelta(days=30),
    }
    database.transaction(lambda conn: conn.execute(evidence.insert().values(**older)), what="test older row")
    assert store.reseal_under_registry_keys() == {"wanted": 1}
    assert store.reseal_under_registry_keys() == {}  # idempotent
    key_query = select(evidence.c.key_id).where(evidence.c.object_id == object_id)
    assert (
        database.transaction(lambda conn: conn.execute(key_query).scalar_one(), what="t")
        == keys.keyring("wanted").key_id
    )
    assert store.get(object_id, registry="wanted", person_id="p_a", now=NOW) == OBAMA
    assert stored_blob(database, object_id) != older["blob"]


def test_ciphertexts_swapped_between_persons_fail(store: EvidenceStore, database: Database) -> None:
    id_a = store.put("face", "wanted", "p_a", OBAMA, retention_days=30)
    id_b = store.put("face", "wanted", "p_b", BIDEN, retention_days=30)
    blob_a, blob_b = stored_blob(database, id_a), stored_blob(database, id_b)

    def swap(conn: object) -> None:
        conn.execute(update(evidence).where(evidence.c.object_id == id_a).values(blob=blob_b))  # type: ignore[attr-defined]
        conn.execute(update(evidence).where(evidence.c.object_id == id_b).values(blob=blob_a))  # type: ignore[attr-defined]

    database.transaction(swap, what="test swap")
    with pytest.raises(DecryptError):
        store.get(id_a, registry="wanted", person_id="p_a")
    with pytest.raises(DecryptError):
        store.get(id_b, registry="wanted", person_id="p_b")


def test_an_object_asked_for_as_another_person_or_registry_does_not_open(store: EvidenceStore) -> None:
    object_id = store.put("face", "wanted", "p_a", OBAMA, retention_days=30)
    with pytest.raises(DecryptError):
        store.get(object_id, registry="wanted", person_id="p_b")
    with pytest.raises(DecryptError):
        store.get(object_id, registry="other", person_id="p_a")


def test_a_relabelled_kind_does_not_open(store: EvidenceStore, database: Database) -> None:
    object_id = store.put("face", "wanted", "p_a", OBAMA, retention_days=30)
    database.transaction(
        lambda conn: conn.execute(update(evidence).where(evidence.c.object_id == object_id).values(kind="frame")),
        what="test relabel",
    )
    with pytest.raises(DecryptError):
        store.get(object_id, registry="wanted", person_id="p_a")


def test_purge_removes_only_expired_objects(store: EvidenceStore) -> None:
    short = store.put("face", "wanted", "p_a", OBAMA, retention_days=1, now=NOW)
    long = store.put("face", "wanted", "p_a", BIDEN, retention_days=30, now=NOW)
    later = NOW + dt.timedelta(days=2)
    # Past its retention an object is gone for readers even before the purge job ran.
    with pytest.raises(EvidenceNotFoundError):
        store.get(short, registry="wanted", person_id="p_a", now=later)
    assert store.purge_expired(later) == 1
    assert store.purge_expired(later) == 0
    assert store.get(long, registry="wanted", person_id="p_a", now=later) == BIDEN
    with pytest.raises(EvidenceNotFoundError):
        store.get(short, registry="wanted", person_id="p_a", now=NOW)


def test_erasure_forgets_the_persons_evidence_only(store: EvidenceStore) -> None:
    face = store.put("face", "wanted", "p_a", OBAMA, retention_days=30, sighting_id="s1")
    frame = store.put("frame", "wanted", "p_a", OBAMA, retention_days=30, sighting_id="s1")
    kept = store.put("face", "wanted", "p_b", BIDEN, retention_days=30)
    store.forget_persons(["p_a"])
    store.forget_persons([])
    for object_id in (face, frame):
        with pytest.raises(EvidenceNotFoundError):
            store.get(object_id, registry="wanted", person_id="p_a")
    assert store.objects(sighting_id="s1") == []
    assert store.get(kept, registry="wanted", person_id="p_b") == BIDEN


def test_unknown_kind_and_bad_retention_are_refused(store: EvidenceStore) -> None:
    with pytest.raises(ValueError, match="unknown evidence kind"):
        store.put("template", "wanted", "p_a", OBAMA, retention_days=30)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retention_days"):
        store.put("face", "wanted", "p_a", OBAMA, retention_days=0)
