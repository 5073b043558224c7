"""A `recognition` process: cameras and recognition publish sightings to Kafka, and nothing else runs here
(no rules stage, no notifier: the outbox stays empty until a rule worker consumes the topic)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from gridwatch.core.config.loader import load_config
from gridwatch.core.db.schema import alerts
from gridwatch.core.events import Sighting
from gridwatch.roles import Role, check_role
from gridwatch.service import Service
from tests.support.e2e import enrol
from tests.support.paths import CLIP, TESTDATA

pytestmark = pytest.mark.e2e

PERFORMER = TESTDATA / "faces" / "lin_manuel_miranda" / "lin1.png"
DEADLINE_S = 60.0


def write_config(root: Path, bootstrap: str, database_url: str, tag: str) -> Path:
    """A registry of this test alone (the session broker's sightings topic is shared by every test)."""
    config = root / "config"
    config.mkdir(parents=True)
    (config / "gridwatch.yaml").write_text(
        f"""
service:
  name: recognition-{uuid.uuid4().hex[:6]}
  data_dir: {root / "data"}
  http: {{enabled: false}}
  database: {{url: "{database_url}"}}
  transport:
    driver: kafka
    kafka: {{bootstrap_servers: {bootstrap}, group_prefix: r{uuid.uuid4().hex[:8]}, partitions: 3}}
cameras:
  - {{id: stage-cam, kind: file, path: "{CLIP}", loop: false, fps: 4, grid: grid-7,
      location_class: lobby, signage_verified_at: 2026-01-15}}
registries:
  - {{name: watch-{tag}, purpose: role test, legal_basis: test fixture, retention_days: 1, threshold: 0.45}}
rules:
  - {{id: seen-watch, kind: seen, registries: [watch-{tag}], cooldown_s: 3600}}
"""
    )
    return config


async def test_a_recognition_process_publishes_sightings_and_runs_no_rules(
    tmp_path: Path, kafka: Any, postgres_cluster: Any
) -> None:
    database_url = postgres_cluster.create_database()
    tag = uuid.uuid4().hex[:8]
    config = write_config(tmp_path, kafka.bootstrap, database_url, tag)
    person_id = enrol(config, PERFORMER, "Performer", registry=f"watch-{tag}")
    loaded = load_config(config)
    check_role(loaded, Role.RECOGNITION)
    service = Service(loaded, role=Role.RECOGNITION)
    published: list[Sighting] = []

    async def on_sighting(sighting: Sighting) -> None:
        published.append(sighting)  # a tap sees what the Kafka driver took (acks=all)

    service.tap_sightings(on_sighting)
    await service.start()
    try:
        async with asyncio.timeout(DEADLINE_S):
            while not published:
                await asyncio.sleep(0.1)
        status = service.status()
    finally:
        await service.stop()
    assert {s.person_id for s in published} == {person_id}
    assert (status["role"], status["rules"], status["notifier"]) == ("recognition", None, None)
    assert status["transport"] == {"driver": "kafka", "queues": {}}  # publishes only, consumes nothing
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(alerts)).scalar() == 0
    finally:
        engine.dispose()
