"""Helpers shared by the end-to-end tests: enrolment, the Kafka alert consumer, the no-trace check."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.loader import load_config
from gridwatch.core.events import Alert
from gridwatch.wiring import build_recognition, data_paths
from recognition.enroll import enrollment_sample, read_photo
from tests.support.kafka import create_topic
from tests.support.models import shared_analyzer
from tests.support.privacy import FaceTraces, image_signatures, scan_tree, unit_vectors


def enrol(config: Path, photo: Path, name: str, *, registry: str = "watch", env: dict[str, str] | None = None) -> str:
    """Enrol the one face of ``photo`` in ``registry`` of the config's data directory; the person id."""
    loaded = load_config(config, env)
    with AuditLog(data_paths(loaded).audit_log) as audit:
        parts = build_recognition(loaded, audit)
        parts.registries.load()
        sample = enrollment_sample(shared_analyzer(), parts.gate, read_photo(photo), what=photo.name)
        person = parts.registries.enroll(registry, name, [(sample.photo_sha256, sample.embedding)], actor="e2e")
        parts.store.close()
    return person.person_id


@asynccontextmanager
async def alert_consumer(bootstrap: str, topic: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer of ``topic`` from its start (the topic is created with one partition first)."""
    await create_topic(bootstrap, topic, partitions=1)
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def next_alert(consumer: AIOKafkaConsumer, deadline_s: float) -> Alert | None:
    """The next alert on the topic, or None when none arrives within ``deadline_s``."""
    try:
        record = await asyncio.wait_for(consumer.getone(), timeout=deadline_s)
    except TimeoutError:
        return None
    return Alert.model_validate_json(record.value)


def assert_no_trace_of_unmatched_faces(
    data_dir: Path, *, enrolled: int, strangers: Sequence[FaceTraces] = (), known: Sequence[FaceTraces] = ()
) -> None:
    """No embedding and no image of any kind on disk; the ``enrolled`` templates are stored, sealed; logs are clean.

    Templates are encrypted at rest, so not even an enrolled face's vector may be found in plaintext: the
    store's ``embeddings`` rows are counted instead. ``strangers``: faces that must have left nothing in any
    file (database, WAL, logs, audit), not even a piece. ``known``: enrolled faces, whose vector must be
    absent too (sealed), while the same search finds it in a buffer that holds it (the search works).
    """
    images, vectors = scan_tree(data_dir)
    assert images == {}, f"image data found on disk: {images}"
    assert vectors == set(), f"{len(vectors)} plaintext vector(s) on disk: templates must be sealed"
    with contextlib.closing(sqlite3.connect(data_dir / "gridwatch.sqlite3")) as db:
        (stored,) = db.execute("SELECT count(DISTINCT photo_sha256) FROM embeddings").fetchone()
    assert stored == enrolled, f"templates of {stored} photos stored, expected only the {enrolled} enrolled"
    files = {path: path.read_bytes() for path in sorted(data_dir.rglob("*")) if path.is_file()}
    for face in strangers:
        found = {
            str(path.relative_to(data_dir)): kinds for path, data in files.items() if (kinds := face.found_in(data))
        }
        assert found == {}, f"traces of {face.name} on disk: {found}"
    for face in known:
        assert "vector" in face.found_in(b"\0" * 8 + face.needles["vector"][0] + b"\0" * 8)
        assert not any("vector" in face.found_in(data) for data in files.values()), f"{face.name}'s vector in plaintext"
    for log_file in data_dir.rglob("*.log"):
        text = log_file.read_text()
        assert "embedding" not in text.lower()
    for line in (data_dir / "audit.jsonl").read_text().splitlines():
        record = json.loads(line)
        assert not any(isinstance(v, list) and len(v) > 16 for v in record.get("details", {}).values())


def assert_no_face_in_records(records: Sequence[Any], strangers: Sequence[FaceTraces]) -> None:
    """Kafka records (values, keys and headers) hold no image, no embedding-like vector and no piece of these faces."""
    for record in records:
        blobs = [record.value or b"", record.key or b"", *(value for _, value in record.headers)]
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        for blob in blobs:
            assert image_signatures(blob) == [], f"image data in {where}"
            assert unit_vectors(blob) == set(), f"a stored vector in {where}"
            for face in strangers:
                assert face.found_in(blob) == [], f"traces of {face.name} in {where}"
