"""The cost of sealing templates at rest (issue 14): enrolment, the plaintext-store migration and start-up
(load + decrypt) at 100k templates, against plaintext baselines measured in the same run.

On SQLite in a temporary directory, with the real ``RegistryStore`` and random 512-d unit vectors
(one template per person, as a 100k-person registry):

- start-up: ``RegistryStore.embeddings`` (query + unwrap the registry key + open every template) against
  the same query reading plaintext vectors (what the store did before templates were sealed);
- migration: ``RegistryStore.seal_plaintext`` over 100k plaintext rows of an older version (once per site);
- enrolment: ``RegistryStore.add_person`` (one transaction per person, as `gridwatch registry enroll` and
  bulk import do) against the same transaction writing the plaintext vector, on a fresh store each;
  plus the sealing alone per template.

Printed: the figures, then one JSON line with the ratios sealed / plaintext. Nothing is asserted.

    .venv/bin/python benchmarks/template_crypto.py [--templates 100000] [--enrolments 1000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import Connection, select  # noqa: E402

from gridwatch.core.crypto import Keyring, new_data_key  # noqa: E402
from gridwatch.core.db import Database  # noqa: E402
from gridwatch.core.db.schema import embeddings as embeddings_t  # noqa: E402
from gridwatch.core.db.schema import generations  # noqa: E402
from gridwatch.core.db.schema import persons as persons_t  # noqa: E402
from gridwatch.core.registry_keys import RegistryKeys, template_aad  # noqa: E402
from recognition.store import RegistryStore  # noqa: E402

DIM = 512
MODEL = "bench@1"
REGISTRY = "watch"
NOW = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=365)
BATCH = 5000
REPEATS = 3
ROUNDS = 10


def unit_vectors(n: int, seed: int) -> npt.NDArray[np.float32]:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def database(path: Path) -> Database:
    db = Database(f"sqlite:///{path}")
    db.open()
    return db


def insert_plaintext(db: Database, vectors: npt.NDArray[np.float32]) -> None:
    """Rows as an older version wrote them: plaintext float32, no key id."""
    for start in range(0, len(vectors), BATCH):
        chunk = vectors[start : start + BATCH]

        def write(conn: Connection, start: int = start, chunk: npt.NDArray[np.float32] = chunk) -> None:
            ids = [f"p_{start + i:012x}" for i in range(len(chunk))]
            conn.execute(
                persons_t.insert(),
                [
                    {
                        "person_id": pid,
                        "registry": REGISTRY,
                        "display_name": "x",
                        "enrolled_at": NOW,
                        "expires_at": LATER,
                    }
                    for pid in ids
                ],
            )
            conn.execute(
                embeddings_t.insert(),
                [
                    {"person_id": pid, "model_id": MODEL, "photo_sha256": "0" * 64, "vector": v.astype("<f4").tobytes()}
                    for pid, v in zip(ids, chunk, strict=True)
                ],
            )

        db.transaction(write, what="bench insert")


def load_plaintext(db: Database) -> npt.NDArray[np.float32]:
    """The store's load before templates were sealed: the same query, ``np.frombuffer`` per row."""
    query = (
        select(embeddings_t.c.embedding_id, embeddings_t.c.person_id, embeddings_t.c.vector)
        .join(persons_t, persons_t.c.person_id == embeddings_t.c.person_id)
        .where(persons_t.c.registry == REGISTRY, embeddings_t.c.model_id == MODEL)
        .order_by(embeddings_t.c.embedding_id)
    )
    rows = db.transaction(lambda conn: conn.execute(query).all(), what="bench read", read_only=True)
    return np.stack([np.frombuffer(r[2], dtype=np.float32) for r in rows])


def enrol_plaintext(db: Database, vectors: npt.NDArray[np.float32]) -> None:
    """``add_person``'s transaction as it was before sealing: person, plaintext vector, generation bump."""
    for vector in vectors:

        def add(conn: Connection, vector: npt.NDArray[np.float32] = vector) -> None:
            person_id = "p_" + secrets.token_hex(8)
            conn.execute(
                persons_t.insert().values(
                    person_id=person_id, registry=REGISTRY, display_name="x", enrolled_at=NOW, expires_at=LATER
                )
            )
            conn.execute(
                embeddings_t.insert()
                .values(person_id=person_id, model_id=MODEL, photo_sha256="0" * 64, vector=vector.tobytes())
                .returning(embeddings_t.c.embedding_id)
            ).scalar_one()
            conn.execute(
                generations.update().where(generations.c.name == "registry").values(value=generations.c.value + 1)
            )

        db.transaction(add, what="bench enrol")


def enrol_sealed(store: RegistryStore, vectors: npt.NDArray[np.float32]) -> None:
    for vector in vectors:
        store.add_person(
            registry=REGISTRY,
            display_name="x",
            model_id=MODEL,
            embeddings=[("0" * 64, vector)],
            now=NOW,
            expires_at=LATER,
        )


def timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--templates", type=int, default=100_000)
    parser.add_argument("--enrolments", type=int, default=1000)
    args = parser.parse_args()
    n = args.templates
    vectors = unit_vectors(n, seed=1)
    master = Keyring(new_data_key())

    with tempfile.TemporaryDirectory(prefix="gridwatch-template-crypto-") as tmp:
        root = Path(tmp)
        # Start-up baseline: 100k plaintext rows, loaded the way the store did before sealing.
        plain_db = database(root / "plain.sqlite3")
        insert_plaintext(plain_db, vectors)
        load_plain_s = min(timed(lambda: load_plaintext(plain_db))[0] for _ in range(REPEATS))

        # Migration: the same rows sealed in place by the store, then the sealed start-up.
        sealed_db = database(root / "sealed.sqlite3")
        insert_plaintext(sealed_db, vectors)
        keys = RegistryKeys(master, root / "keys" / "registry-keys.json")
        store = RegistryStore(sealed_db, keys=keys)
        migrate_s, _ = timed(store.open)  # opening with the master key seals the plaintext rows
        unsealed = select(embeddings_t.c.embedding_id).where(embeddings_t.c.key_id.is_(None)).limit(1)
        assert sealed_db.transaction(lambda conn: conn.execute(unsealed).first(), what="bench check") is None
        # A fresh process: opening checks for plaintext rows (none), then the registry key is unwrapped and
        # every template opened.
        restarted = RegistryStore(sealed_db, keys=RegistryKeys(master, keys.path))
        open_check_s, _ = timed(restarted.open)
        np.testing.assert_array_equal(restarted.embeddings(REGISTRY, MODEL).vectors, vectors)
        np.testing.assert_array_equal(load_plaintext(plain_db), vectors)
        # Best of a few, each a fresh process's view (the registry key unwrapped anew): both loads warm.
        load_sealed_s = min(
            timed(lambda: RegistryStore(sealed_db, keys=RegistryKeys(master, keys.path)).embeddings(REGISTRY, MODEL))[0]
            for _ in range(REPEATS)
        )
        plain_db.close()
        sealed_db.close()

        # Sealing alone, per template (what enrolment adds besides its transaction).
        ring = keys.keyring(REGISTRY)
        raw = [v.astype("<f4").tobytes() for v in vectors]
        seal_s, _ = timed(lambda: [ring.seal(b, template_aad(REGISTRY, "p_0123456789abcdef", MODEL)) for b in raw])

        # Enrolment through the store, one transaction per person, against the plaintext transaction;
        # interleaved in rounds so that the disk's drift (fsync per commit, shared machine) hits both alike.
        m = args.enrolments
        enrol_vectors = unit_vectors(m, seed=2)
        base_db = database(root / "enrol-plain.sqlite3")
        enrol_db = database(root / "enrol-sealed.sqlite3")
        enrol_store = RegistryStore(enrol_db, keys=RegistryKeys(master, root / "keys2" / "registry-keys.json"))
        enrol_store.open()
        enrol_plain_s = enrol_sealed_s = 0.0
        for chunk in np.array_split(enrol_vectors, ROUNDS):
            enrol_plain_s += timed(lambda chunk=chunk: enrol_plaintext(base_db, chunk))[0]
            enrol_sealed_s += timed(lambda chunk=chunk: enrol_sealed(enrol_store, chunk))[0]
        base_db.close()
        enrol_db.close()

    print(f"templates: {n} x {DIM}-d float32, SQLite, one registry")
    print(f"start-up load, plaintext (before):    {load_plain_s:8.3f} s")
    print(f"start-up load + decrypt, sealed:      {load_sealed_s:8.3f} s  (x{load_sealed_s / load_plain_s:.2f})")
    print(f"start-up check for plaintext rows:    {open_check_s:8.3f} s")
    print(f"migration of a plaintext store:       {migrate_s:8.3f} s  ({n} templates sealed once, then reclaim)")
    print(f"sealing alone:                        {seal_s:8.3f} s  ({seal_s / n * 1e6:.1f} us per template)")
    print(f"enrolment of {m} persons, plaintext:   {enrol_plain_s:8.3f} s  ({enrol_plain_s / m * 1e3:.2f} ms each)")
    print(
        f"enrolment of {m} persons, sealed:      {enrol_sealed_s:8.3f} s  ({enrol_sealed_s / m * 1e3:.2f} ms each, "
        f"x{enrol_sealed_s / enrol_plain_s:.2f})"
    )
    print(
        json.dumps(
            {
                "benchmark": "template_crypto",
                "templates": n,
                "load_plain_s": round(load_plain_s, 4),
                "load_sealed_s": round(load_sealed_s, 4),
                "load_ratio": round(load_sealed_s / load_plain_s, 3),
                "open_check_s": round(open_check_s, 4),
                "migrate_s": round(migrate_s, 3),
                "seal_us_per_template": round(seal_s / n * 1e6, 2),
                "enrolments": m,
                "enrol_plain_ms": round(enrol_plain_s / m * 1e3, 3),
                "enrol_sealed_ms": round(enrol_sealed_s / m * 1e3, 3),
                "enrol_ratio": round(enrol_sealed_s / enrol_plain_s, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
