"""The same scenario (camera → sighting → rule → alert) with each stage transport driver.

With the Kafka driver, recognition publishes sightings to a real ``gridwatch.sightings`` topic of
the Apache Kafka test broker and the rules stage consumes them through its consumer group; the
alerts must be the same as with the in-process queues. Sightings and alerts are observed through
taps on the ports, never by patching a stage.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from gridwatch.core.config.loader import load_config
from gridwatch.core.events import Alert, Sighting
from gridwatch.service import Service
from tests.support.e2e import enrol
from tests.support.paths import CLIP, TESTDATA

pytestmark = pytest.mark.e2e

PERFORMER = TESTDATA / "faces" / "lin_manuel_miranda" / "lin1.png"
ALERT_DEADLINE_S = 60.0


def write_config(root: Path, transport: str, database_url: str | None = None) -> Path:
    config = root / "config"
    config.mkdir(parents=True)
    (config / "gridwatch.yaml").write_text(
        f"""
service:
  name: transport-{uuid.uuid4().hex[:6]}
  data_dir: {root / "data"}
  http: {{enabled: false}}
  database: {{url: "{database_url or ""}"}}
  transport:
{transport}
cameras:
  - {{id: stage-cam, kind: file, path: "{CLIP}", loop: false, fps: 4, grid: grid-7,
      location_class: lobby, signage_verified_at: 2026-01-15}}
registries:
  - name: watch
    purpose: transport test
    legal_basis: test fixture
    retention_days: 1
    threshold: 0.45
rules:
  - {{id: seen-watch, kind: seen, registries: [watch], cooldown_s: 3600}}
notifier:
  console: {{enabled: true}}
"""
    )
    return config


async def run_until_first_alert(config: Path) -> tuple[list[Sighting], list[Alert], dict[str, Any]]:
    person_id = enrol(config, PERFORMER, "Performer")
    service = Service(load_config(config))
    sightings: list[Sighting] = []
    alerts: list[Alert] = []

    async def on_sighting(sighting: Sighting) -> None:
        sightings.append(sighting)

    async def on_alert(alert: Alert) -> None:
        alerts.append(alert)

    service.tap_sightings(on_sighting)
    service.tap_alerts(on_alert)
    await service.start()
    try:
        async with asyncio.timeout(ALERT_DEADLINE_S):
            while not alerts:
                await asyncio.sleep(0.1)
        status = service.status()
    finally:
        await service.stop()
    assert all(s.person_id == person_id for s in sightings)
    return sightings, alerts, status


@pytest.fixture
def kafka_transport(kafka: Any) -> str:
    group = f"t{uuid.uuid4().hex[:8]}"
    return (
        "    driver: kafka\n"
        "    kafka:\n"
        f"      bootstrap_servers: {kafka.bootstrap}\n"
        f"      group_prefix: {group}\n"
        "      partitions: 3\n"
    )


async def test_in_process_and_kafka_drivers_make_the_same_alerts(
    tmp_path: Path, kafka: Any, kafka_transport: str, postgres_cluster: Any
) -> None:
    # The embedded default (in-process, SQLite) against a several-process setup (Kafka, PostgreSQL).
    _, local_alerts, local_status = await run_until_first_alert(
        write_config(tmp_path / "inprocess", "    driver: inprocess\n")
    )
    assert local_status["transport"]["driver"] == "inprocess"

    sightings, kafka_alerts, kafka_status = await run_until_first_alert(
        write_config(tmp_path / "kafka", kafka_transport, postgres_cluster.create_database())
    )
    assert kafka_status["transport"]["driver"] == "kafka"

    def shape(alert: Alert) -> tuple[str, str, str, str, str | None]:
        return (alert.rule, alert.registry, alert.source, str(alert.source_kind), alert.grid)

    assert [shape(a) for a in kafka_alerts[:1]] == [shape(a) for a in local_alerts[:1]]
    assert kafka_alerts[0].sightings[0] in {s.sighting_id for s in sightings}

    # The sightings really travelled over the topic, keyed by person id, in CloudEvents binary mode.
    consumer = AIOKafkaConsumer("gridwatch.sightings", bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        seen: dict[str, tuple[bytes | None, dict[str, bytes]]] = {}
        wanted = {s.sighting_id for s in sightings}
        async with asyncio.timeout(30):
            while not wanted <= seen.keys():
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        event = Sighting.model_validate_json(record.value)
                        seen[event.sighting_id] = (record.key, dict(record.headers))
    finally:
        await consumer.stop()
    key, headers = seen[sightings[0].sighting_id]
    assert key == sightings[0].person_id.encode()
    assert headers["ce_type"] == b"gridwatch.sighting.v1"
    assert headers["ce_id"] == sightings[0].sighting_id.encode()
