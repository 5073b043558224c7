"""`stranger_at_gate` end to end, on real parts only, and the proof that the stranger left nothing behind.

The service runs in-process with real models, FAISS, the rules and the outbox, and carries events
between its stages over Apache Kafka (the session's single node): attempts travel on the real
``gridwatch.stranger-attempts`` topic. A real HTTP client plays a Hikvision terminal that pushes ISAPI
events with real photos: an enrolled resident, and a stranger the terminal refuses three times
(minor type 76, face authentication failed). A real aiokafka consumer reads the alerts.

Afterwards every file of the data directory (the SQLite database, its journal, the audit log) and every
record the service wrote to Kafka are searched for any image, any stored unit vector, and any piece
of the stranger's embedding, aligned crop or photo.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from gridwatch.core.config.loader import load_config
from gridwatch.core.events import Sighting, SourceKind, StrangerAttempt
from gridwatch.core.transport import SIGHTINGS, STRANGER_ATTEMPTS
from gridwatch.service import Service
from tests.e2e.test_gate_push_to_kafka import ALERT_DEADLINE_S, ENV, QUIET_S, processed
from tests.ingest.polling import eventually
from tests.support.e2e import (
    alert_consumer,
    assert_no_face_in_records,
    assert_no_trace_of_unmatched_faces,
    enrol,
    next_alert,
)
from tests.support.gate_payloads import isapi_event, isapi_push_body
from tests.support.kafka import KafkaBroker, read_topic
from tests.support.models import shared_analyzer
from tests.support.paths import TESTDATA
from tests.support.privacy import face_traces

pytestmark = pytest.mark.e2e

RESIDENT_ENROLLED = TESTDATA / "faces" / "biden" / "biden.jpg"
RESIDENT_AT_GATE = TESTDATA / "faces" / "biden" / "biden2.jpg"
STRANGER = TESTDATA / "faces" / "kit_harington" / "kit1.jpeg"  # enrolled nowhere
FACE_VERIFY_PASS, FACE_VERIFY_FAIL = 75, 76  # ISAPI minor types of major type 5
RULE = "stranger-at-residents-gate"


def write_config(root: Path, bootstrap: str, alerts_topic: str, gate: str) -> Path:
    config = root / "config"
    config.mkdir()
    (config / "gridwatch.yaml").write_text(
        f"""
service:
  name: e2e-strangers
  data_dir: {root / "data"}
  http: {{enabled: true, host: 127.0.0.1, port: 0}}
  transport:
    driver: kafka
    kafka:
      bootstrap_servers: {bootstrap}
      group_prefix: strangers-{uuid.uuid4().hex[:8]}
      partitions: 1
gates:
  - id: {gate}
    kind: isapi_push
    grid: grid-north
    username: ${{GATE_USER}}
    password: ${{GATE_PASSWORD}}
    doors: [{{door: "1", direction: in}}]
registries:
  - name: residents
    purpose: tell residents from strangers at the residents-only gate
    legal_basis: test fixture
    retention_days: 1
    threshold: 0.5
    sources: [{gate}]
rules:
  - id: {RULE}
    kind: stranger_at_gate
    known_registries: [residents]
    sources: [{gate}]
    count: 3
    within_s: 600
    cooldown_s: 600
notifier:
  console: {{enabled: false}}
  kafka:
    enabled: true
    bootstrap_servers: {bootstrap}
    topic: {alerts_topic}
"""
    )
    return config


@pytest.fixture
async def consumer(kafka: KafkaBroker, kafka_topic: str) -> AsyncIterator[AIOKafkaConsumer]:
    async with alert_consumer(kafka.bootstrap, kafka_topic) as consumer:
        yield consumer


async def push(http: httpx.AsyncClient, gate: str, serial: int, photo: Path, *, minor: int) -> int:
    """One ISAPI event as the terminal posts it; a refused face carries no employee number."""
    known = minor == FACE_VERIFY_PASS
    event = isapi_event(serial, door=1, minor=minor, employee_no="1001" if known else None, name=None)
    body, content_type = isapi_push_body(event, [photo.read_bytes()])
    response = await http.post(
        f"/gates/{gate}/isapi",
        content=body,
        headers={"Content-Type": content_type},
        auth=(ENV["GATE_USER"], ENV["GATE_PASSWORD"]),
    )
    return response.status_code


async def test_a_stranger_refused_three_times_makes_one_alert_and_leaves_no_trace(
    tmp_path: Path,
    kafka: KafkaBroker,
    kafka_topic: str,
    consumer: AIOKafkaConsumer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for logger in ("gridwatch", "ingest", "recognition", "rules", "notifier"):
        caplog.set_level(logging.DEBUG, logger=logger)
    gate = f"gate-residents-{uuid.uuid4().hex[:8]}"  # the session's topics are shared: attempts of this test alone
    config = write_config(tmp_path, kafka.bootstrap, kafka_topic, gate)
    resident = enrol(config, RESIDENT_ENROLLED, "Resident", registry="residents", env=ENV)
    service = Service(load_config(config, ENV))
    attempts: list[StrangerAttempt] = []
    sightings: list[Sighting] = []

    async def on_attempt(attempt: StrangerAttempt) -> None:
        attempts.append(attempt)

    async def on_sighting(sighting: Sighting) -> None:
        sightings.append(sighting)

    service.tap_attempts(on_attempt)
    service.tap_sightings(on_sighting)
    await service.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http_port}") as http:
            # The resident, let in, then refused by the terminal (a bad read): never an attempt.
            assert await push(http, gate, 100, RESIDENT_AT_GATE, minor=FACE_VERIFY_PASS) == 200
            assert await push(http, gate, 101, RESIDENT_AT_GATE, minor=FACE_VERIFY_FAIL) == 200
            await eventually(lambda: processed(service) == 2, ALERT_DEADLINE_S, "the resident's events recognised")
            # The stranger, refused three times.
            for serial in (102, 103, 104):
                assert await push(http, gate, serial, STRANGER, minor=FACE_VERIFY_FAIL) == 200
            alert = await next_alert(consumer, ALERT_DEADLINE_S)
            assert alert is not None, f"no alert within {ALERT_DEADLINE_S} s; status: {service.status()}"
            assert await next_alert(consumer, QUIET_S) is None  # exactly one
            status = (await http.get("/status")).json()
    finally:
        await service.stop()

    # The alert: the gate, the count, the times and the gate's own event ids; nobody named.
    assert (alert.person_id, alert.registry, alert.kind, alert.rule) == (None, None, "stranger_at_gate", RULE)
    assert (alert.source, alert.source_kind, alert.grid, alert.sightings) == (gate, SourceKind.GATE, "grid-north", [])
    # The times are the server's (when gridwatch received the attempts), not the terminal's 2024 clock.
    assert re.search(rf"tried gate '{gate}' 3 times between 20\d\d-\d\d-\d\d \d\d:\d\d UTC and ", alert.explanation)
    assert "2024-05-01" not in alert.explanation
    assert alert.explanation.endswith("gate events 102, 103, 104")
    assert alert.key == f"source:{gate}"

    # Three attempts, one per refusal of the stranger, under one look-alike label; none for the resident.
    assert [(a.verdict, a.gate_event_id) for a in attempts] == [("denied", "102"), ("denied", "103"), ("denied", "104")]
    [label] = {a.cluster for a in attempts}
    assert label is not None
    assert [(s.person_id, s.registry) for s in sightings] == [(resident, "residents"), (resident, "residents")]
    assert status["recognition"]["unknown_at_gates"] == 3
    assert status["recognition"]["stranger_clusters"] == 1  # in memory until the window ends
    [gate_status] = status["gates"]
    assert gate_status["events"] == 5

    # On Kafka: the attempts went over the topic, keyed by gate; no record of the service holds a face.
    attempt_records = [r for r in await read_topic(kafka.bootstrap, STRANGER_ATTEMPTS.topic) if r.key == gate.encode()]
    assert sorted(StrangerAttempt.model_validate_json(r.value).attempt_id for r in attempt_records) == sorted(
        a.attempt_id for a in attempts
    )
    assert all(dict(r.headers)["ce_type"] == b"gridwatch.stranger-attempt.v1" for r in attempt_records)
    stranger = face_traces(shared_analyzer(), STRANGER)
    records = [
        *attempt_records,
        *await read_topic(kafka.bootstrap, SIGHTINGS.topic),
        *await read_topic(kafka.bootstrap, kafka_topic),
    ]
    assert_no_face_in_records(records, [stranger])

    # On disk: only the resident's enrolment, no piece of the stranger's face, not even its label.
    data = tmp_path / "data"
    assert_no_trace_of_unmatched_faces(
        data, enrolled=1, strangers=[stranger], known=[face_traces(shared_analyzer(), RESIDENT_ENROLLED)]
    )
    assert not [p for p in data.rglob("*") if p.is_file() and label.encode() in p.read_bytes()]
    # In the logs: neither the label nor anything of the face.
    assert label not in caplog.text
