"""Templates sealed at rest (issue 14): nothing on disk or in a backup equals an enrolled template, a
template moved to another person does not open, a shred reaches copies made before it, a master-key
rotation keeps every template readable, and an older version's plaintext rows are sealed on open.

On SQLite and PostgreSQL, with the real model pack on the shared test photos.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.model import QualityConfig
from gridwatch.core.crypto import DecryptError, Keyring, new_data_key
from gridwatch.core.db import Database
from gridwatch.core.db.schema import embeddings as embeddings_t
from gridwatch.core.db.schema import persons as persons_t
from gridwatch.core.registry_keys import (
    MasterKeyMissingError,
    RegistryKeyMissingError,
    RegistryKeys,
    template_aad,
)
from recognition.enroll import EnrollmentError, enrollment_sample
from recognition.quality import QualityGate
from recognition.store import RegistryStore
from tests.support.db import Databases
from tests.support.keys import site_keys
from tests.support.models import shared_analyzer
from tests.support.paths import TESTDATA
from tests.support.postgres import PostgresCluster

FACES = TESTDATA / "faces"
NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=30)
# How much of a template counts as found: any aligned 64-byte run (16 floats) of it, not only the whole.
CHUNK = 64

Templates = dict[str, list[tuple[str, npt.NDArray[np.float32]]]]


@pytest.fixture(scope="module")
def templates() -> Templates:
    """Person folder → (photo hash, embedding) of every single-face photo of the shared test data."""
    analyzer, gate = shared_analyzer(), QualityGate(QualityConfig())
    found: Templates = {}
    for folder in sorted(p for p in FACES.iterdir() if p.is_dir() and p.name != "group"):
        for photo in sorted(folder.iterdir()):
            try:
                sample = enrollment_sample(analyzer, gate, photo.read_bytes(), what=photo.name)
            except EnrollmentError:
                continue  # a photo the quality gate refuses is not enrolled, so it is not a template
            found.setdefault(folder.name, []).append((sample.photo_sha256, sample.embedding))
    assert sum(len(samples) for samples in found.values()) >= 10
    return found


def needles(templates: Templates) -> list[bytes]:
    """Every aligned 64-byte run of every template's float32 bytes, as the store would have written them."""
    runs = []
    for samples in templates.values():
        for _, vector in samples:
            raw = np.asarray(vector, "<f4").tobytes()
            runs += [raw[i : i + CHUNK] for i in range(0, len(raw), CHUNK)]
    return runs


def files_holding(paths: list[Path], runs: list[bytes]) -> list[str]:
    """The files that hold any of ``runs`` at any offset.

    One vectorised pass per byte alignment, not one scan per run: after a full test session the PostgreSQL
    cluster holds hundreds of megabytes, and ~1,000 runs searched one by one took more than 5 minutes.
    """
    wanted = set(runs)
    firsts = np.unique(np.frombuffer(b"".join(run[:8] for run in runs), dtype="<u8"))
    hits = []
    for path in paths:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue  # a server's temporary file gone since the listing (its content is elsewhere by now)
        if any(data[at : at + CHUNK] in wanted for at in _candidates(data, firsts)):
            hits.append(str(path))
    return hits


def _candidates(data: bytes, firsts: np.ndarray) -> list[int]:
    """Offsets where one of the runs' first 8 bytes stands (every alignment)."""
    found: list[int] = []
    for align in range(8):
        usable = (len(data) - align) // 8 * 8
        if usable <= 0:
            continue
        words = np.frombuffer(data, dtype="<u8", count=usable // 8, offset=align)
        found += (np.flatnonzero(np.isin(words, firsts)) * 8 + align).tolist()
    return found


def enrol_all(store: RegistryStore, templates: Templates, registry: str = "watch") -> dict[str, str]:
    """Person folder → person id."""
    ids = {}
    for name, samples in templates.items():
        person, _ = store.add_person(
            registry=registry,
            display_name=name,
            model_id="pack@1",
            embeddings=samples,
            now=NOW,
            expires_at=LATER,
        )
        ids[name] = person.person_id
    return ids


def is_postgres(databases: Databases) -> bool:
    return make_url(databases.url).get_backend_name() == "postgresql"


def backup(databases: Databases, database: Database, request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A backup made the way an operator makes one: SQLite's online backup, or ``pg_dump``."""
    target = tmp_path / "backup"
    target.mkdir(exist_ok=True)
    if not is_postgres(databases):
        copy = target / "gridwatch.sqlite3"
        source_path = database.url.database
        assert source_path is not None
        with sqlite3.connect(source_path) as source, sqlite3.connect(copy) as destination:
            source.backup(destination)
        return copy
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    dump = target / "gridwatch.sql"
    url = make_url(databases.url).set(drivername="postgresql").render_as_string(hide_password=False)
    subprocess.run([str(cluster.bin_dir / "pg_dump"), "--no-owner", "-f", str(dump), url], check=True, timeout=120)
    return dump


def restore(backup_file: Path, request: pytest.FixtureRequest) -> Database:
    """The database of a backup, restored beside the live one."""
    if backup_file.suffix == ".sqlite3":
        return Database(f"sqlite:///{backup_file}")
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    copy_url = cluster.create_database("restored")
    plain = make_url(copy_url).set(drivername="postgresql").render_as_string(hide_password=False)
    subprocess.run(
        [str(cluster.bin_dir / "psql"), "-q", "-v", "ON_ERROR_STOP=1", "-f", str(backup_file), plain],
        check=True,
        timeout=120,
        capture_output=True,
    )
    return Database(copy_url)


@pytest.fixture
def store(databases: Databases) -> Iterator[RegistryStore]:
    store = RegistryStore(databases(), keys=databases.keys())
    yield store
    store.close()


def test_no_stored_byte_sequence_equals_an_enrolled_template(
    databases: Databases, store: RegistryStore, templates: Templates, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    enrol_all(store, templates)
    runs = needles(templates)
    # The store gives them back: what is searched for is what was enrolled.
    loaded = store.embeddings("watch", "pack@1")
    assert loaded.vectors.shape[0] == sum(len(s) for s in templates.values())
    assert any(run in loaded.vectors.astype("<f4").tobytes() for run in runs)

    backup_file = backup(databases, store.database, request, tmp_path)
    searched = [p for p in tmp_path.rglob("*") if p.is_file()]  # data files, WAL, key file, the backup
    if is_postgres(databases):
        cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
        store.database.transaction(lambda conn: conn.exec_driver_sql("CHECKPOINT"), what="test checkpoint")
        searched += [p for p in cluster.data.rglob("*") if p.is_file()]
    assert backup_file in searched
    assert any(p.name == "registry-keys.json" for p in searched)
    assert files_holding(searched, runs) == []


def test_a_template_moved_to_another_person_does_not_open(
    databases: Databases, store: RegistryStore, templates: Templates
) -> None:
    ids = enrol_all(store, {name: templates[name][:1] for name in ("biden", "obama")})
    ids |= enrol_all(store, {"kit_harington": templates["kit_harington"][:1]}, registry="other")

    def row(conn: object, person_id: str) -> tuple[bytes, str]:
        query = select(embeddings_t.c.vector, embeddings_t.c.key_id).where(embeddings_t.c.person_id == person_id)
        blob, key = conn.execute(query).one()  # type: ignore[attr-defined]
        return bytes(blob), key

    def swap(first: str, second: str) -> None:
        def run(conn: object) -> None:
            a, b = row(conn, first), row(conn, second)
            for person_id, (blob, key) in ((first, b), (second, a)):
                conn.execute(  # type: ignore[attr-defined]
                    update(embeddings_t).where(embeddings_t.c.person_id == person_id).values(vector=blob, key_id=key)
                )

        store.database.transaction(run, what="test swap")

    swap(ids["biden"], ids["obama"])  # same registry, same key: the associated data tells them apart
    with pytest.raises(DecryptError, match="does not authenticate"):
        store.embeddings("watch", "pack@1")
    swap(ids["biden"], ids["obama"])
    assert store.embeddings("watch", "pack@1").person_ids == [ids["biden"], ids["obama"]]

    swap(ids["obama"], ids["kit_harington"])  # another registry: another key, other associated data
    with pytest.raises(DecryptError):
        store.embeddings("watch", "pack@1")
    with pytest.raises(DecryptError):
        store.embeddings("other", "pack@1")


def test_a_copy_made_before_a_shred_can_no_longer_produce_templates(
    databases: Databases, store: RegistryStore, templates: Templates, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    gone = enrol_all(store, {name: templates[name] for name in ("biden", "obama")}, registry="gone")
    enrol_all(store, {"kit_harington": templates["kit_harington"]}, registry="kept")
    assert len(store.embeddings("gone", "pack@1").ids) == len(templates["biden"]) + len(templates["obama"])
    backup_file = backup(databases, store.database, request, tmp_path)

    shred = store.shred_registry("gone")
    assert shred.key is not None
    assert sorted(shred.persons) == sorted(gone.values())
    assert store.list_persons("gone") == []
    assert "gone" not in store.keys.wrapped_keys()  # type: ignore[union-attr]

    # The copy still holds the sealed rows, and the site still has its master key and key file.
    with restore(backup_file, request) as copy:
        restored = RegistryStore(copy, keys=databases.keys())
        assert len(restored.list_persons("gone")) == 2
        with pytest.raises(RegistryKeyMissingError, match="shredded"):
            restored.embeddings("gone", "pack@1")
        assert len(restored.embeddings("kept", "pack@1").ids) == len(templates["kit_harington"])  # only "gone"
        # The master key alone opens nothing: every row was sealed by the destroyed data key.
        master = databases.keys().master
        assert master is not None
        query = (
            select(embeddings_t.c.vector, embeddings_t.c.person_id)
            .join(persons_t)
            .where(persons_t.c.registry == "gone")
        )
        rows = copy.transaction(lambda conn: conn.execute(query).all(), what="test read")
        assert len(rows) == len(templates["biden"]) + len(templates["obama"])
        for blob, person_id in rows:
            with pytest.raises(DecryptError):
                master.open(bytes(blob), template_aad("gone", person_id, "pack@1"))
        restored.close()


def test_a_master_key_rotation_keeps_every_template_readable(
    databases: Databases, templates: Templates, tmp_path: Path
) -> None:
    old, new = new_data_key(), new_data_key()
    running = RegistryStore(databases(), keys=site_keys(tmp_path, master=old))
    enrol_all(running, templates)
    before = running.embeddings("watch", "pack@1")

    rotation = RegistryKeys(Keyring(new, [old]), running.keys.path).rotate()  # type: ignore[union-attr]
    assert rotation.rewrapped == ("watch",)
    assert rotation.master_key_id == Keyring(new).key_id
    assert RegistryKeys(Keyring(new, [old]), site_keys(tmp_path).path).rotate().rewrapped == ()  # idempotent

    # The running process goes on (its data key is unchanged and already unwrapped) ...
    np.testing.assert_array_equal(running.embeddings("watch", "pack@1").vectors, before.vectors)
    # ... a process started with only the new master key reads everything ...
    restarted = RegistryStore(databases(), keys=site_keys(tmp_path, master=new))
    np.testing.assert_array_equal(restarted.embeddings("watch", "pack@1").vectors, before.vectors)
    # ... and the old master key no longer unwraps anything.
    with pytest.raises(DecryptError, match="not configured"):
        RegistryStore(databases(), keys=site_keys(tmp_path, master=old)).embeddings("watch", "pack@1")


def test_plaintext_templates_of_an_older_version_are_sealed_on_open(
    databases: Databases, templates: Templates, tmp_path: Path
) -> None:
    database = databases()
    samples = templates["obama"]

    def older_version(conn: object) -> None:
        conn.execute(  # type: ignore[attr-defined]
            persons_t.insert().values(
                person_id="p_old", registry="watch", display_name="Old", enrolled_at=NOW, expires_at=LATER
            )
        )
        for sha, vector in samples:
            conn.execute(  # type: ignore[attr-defined]
                embeddings_t.insert().values(
                    person_id="p_old", model_id="pack@1", photo_sha256=sha, vector=np.asarray(vector, "<f4").tobytes()
                )
            )

    database.transaction(older_version, what="test plaintext rows")
    with AuditLog(tmp_path / "audit.jsonl") as audit:
        store = RegistryStore(database, keys=databases.keys(), audit=audit)
        store.open()  # seals on open
        assert store.seal_plaintext() == {}  # idempotent: nothing left
        RegistryStore(databases(), keys=databases.keys(), audit=audit).open()  # another start: nothing to do
    query = select(embeddings_t.c.vector, embeddings_t.c.key_id)
    rows = database.transaction(lambda conn: conn.execute(query).all(), what="test read")
    ring = databases.keys().keyring("watch")
    assert [key for _, key in rows] == [ring.key_id] * len(samples)
    runs = needles({"obama": samples})
    assert not any(run in bytes(blob) for blob, _ in rows for run in runs)
    np.testing.assert_array_equal(
        store.embeddings("watch", "pack@1").vectors, np.stack([vector for _, vector in samples])
    )
    records = [line for line in (tmp_path / "audit.jsonl").read_text().splitlines() if "seal_plaintext" in line]
    assert len(records) == 1  # audited once, with the counts
    assert f'"templates":{len(samples)}' in records[0].replace(" ", "")
    if not is_postgres(databases):  # the plaintext left the SQLite files too (rewritten after sealing)
        assert files_holding([p for p in tmp_path.rglob("*.sqlite3*") if p.is_file()], runs) == []


def test_without_the_master_key_enrolment_says_how_to_set_one(databases: Databases, tmp_path: Path) -> None:
    store = RegistryStore(databases(), keys=site_keys(tmp_path, master=None))
    vector = np.ones(512, np.float32) / np.sqrt(512)
    with pytest.raises(MasterKeyMissingError) as refused:
        store.add_person(
            registry="watch",
            display_name="X",
            model_id="pack@1",
            embeddings=[("a" * 64, vector)],
            now=NOW,
            expires_at=LATER,
        )
    assert "GRIDWATCH_DATA_KEY is not set" in str(refused.value)
    assert "head -c 32 /dev/urandom | base64" in str(refused.value)
    assert store.list_persons() == []  # nothing was written


def test_a_shred_by_another_process_drops_the_key_from_the_running_one(
    databases: Databases, store: RegistryStore, templates: Templates
) -> None:
    enrol_all(store, {"obama": templates["obama"]}, registry="gone")
    assert len(store.embeddings("gone", "pack@1").ids) == len(templates["obama"])  # the key is unwrapped here
    RegistryStore(databases(), keys=databases.keys()).shred_registry("gone")  # `gridwatch registry shred`
    assert len(store.embeddings("gone", "pack@1").ids) == 0  # the reload after the shred
    keys = store.keys
    assert keys is not None
    with pytest.raises(RegistryKeyMissingError):
        keys.keyring("gone")
