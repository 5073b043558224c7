"""Helpers shared by the end-to-end tests: enrolment, the Kafka alert consumer, the no-trace check."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.loader import load_config
from gridwatch.core.events import Alert
from gridwatch.wiring import build_recognition, data_paths
from recognition.enroll import enrollment_sample, read_photo
from tests.support.kafka import create_topic
from tests.support.models import shared_analyzer
from tests.support.privacy import scan_tree


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


def assert_no_trace_of_unmatched_faces(data_dir: Path, *, enrolled: int) -> None:
    """Only the enrolled embedding(s) may exist on disk; no image of any kind; logs are clean."""
    images, vectors = scan_tree(data_dir)
    assert images == {}, f"image data found on disk: {images}"
    assert len(vectors) == enrolled, f"{len(vectors)} stored vectors, expected only the {enrolled} enrolled"
    for log_file in data_dir.rglob("*.log"):
        text = log_file.read_text()
        assert "embedding" not in text.lower()
    for line in (data_dir / "audit.jsonl").read_text().splitlines():
        record = json.loads(line)
        assert not any(isinstance(v, list) and len(v) > 16 for v in record.get("details", {}).values())
