"""Gate terminals end to end, on real parts only.

The service runs in-process with its HTTP API on a free port, real models, FAISS, rules and the
outbox, publishing to Apache Kafka (the session's single node). A real HTTP client plays a
Hikvision terminal pushing ISAPI multipart events; a real MQTT client plays a face terminal on the
Mosquitto broker. A real aiokafka consumer reads the alerts.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from gridwatch.core.audit import verify
from gridwatch.core.config.loader import load_config
from gridwatch.core.events import Sighting, SourceKind
from gridwatch.service import Service
from tests.ingest.polling import eventually
from tests.support.e2e import alert_consumer, assert_no_trace_of_unmatched_faces, enrol, next_alert
from tests.support.gate_payloads import isapi_event, isapi_push_body, mqtt_capture
from tests.support.kafka import KafkaBroker
from tests.support.mosquitto import HOST as MQTT_HOST
from tests.support.mosquitto import PORT as MQTT_PORT
from tests.support.mosquitto import require_mosquitto
from tests.support.paths import TESTDATA

pytestmark = pytest.mark.e2e

ENROLLED_PHOTO = TESTDATA / "faces" / "biden" / "biden.jpg"
SAME_PERSON = TESTDATA / "faces" / "biden" / "biden2.jpg"
STRANGER = TESTDATA / "faces" / "kit_harington" / "kit1.jpeg"
ALERT_DEADLINE_S = 30.0
QUIET_S = 3.0
PUSH_GATE = "gate-north-face"
MQTT_GATE = "gate-south-face"
ENV = {"GATE_USER": "terminal", "GATE_PASSWORD": "e2e-gate-secret"}


def write_config(root: Path, bootstrap: str, topic: str, mqtt_topic: str) -> Path:
    config = root / "config"
    config.mkdir()
    (config / "gridwatch.yaml").write_text(
        f"""
service:
  name: e2e-gates
  data_dir: {root / "data"}
  http: {{enabled: true, host: 127.0.0.1, port: 0}}
gates:
  - id: {PUSH_GATE}
    kind: isapi_push
    grid: grid-north
    username: ${{GATE_USER}}
    password: ${{GATE_PASSWORD}}
    doors: [{{door: "1", direction: in}}]
  - id: {MQTT_GATE}
    kind: mqtt
    grid: grid-south
    host: {MQTT_HOST}
    port: {MQTT_PORT}
    topic: {mqtt_topic}
    default_direction: out
    backoff: {{initial_s: 0.1, max_s: 1.0}}
registries:
  - name: watch
    purpose: end-to-end test
    legal_basis: test fixture
    retention_days: 1
    threshold: 0.45
rules:
  - {{id: seen-watch, kind: seen, registries: [watch], cooldown_s: 0}}
notifier:
  console: {{enabled: false}}
  kafka:
    enabled: true
    bootstrap_servers: {bootstrap}
    topic: {topic}
"""
    )
    return config


@pytest.fixture
async def consumer(kafka: KafkaBroker, kafka_topic: str) -> AsyncIterator[AIOKafkaConsumer]:
    async with alert_consumer(kafka.bootstrap, kafka_topic) as consumer:
        yield consumer


@pytest.fixture
def mqtt_topic() -> str:
    require_mosquitto()
    return f"gridwatch-e2e/{uuid.uuid4().hex}/capture"


@asynccontextmanager
async def running_service(config: Path) -> AsyncIterator[tuple[Service, list[Sighting]]]:
    """The service, and the sightings recognition publishes (observed through a tap on the port)."""
    service = Service(load_config(config, ENV))
    sightings: list[Sighting] = []

    async def record(sighting: Sighting) -> None:
        sightings.append(sighting)

    service.tap_sightings(record)
    await service.start()
    try:
        yield service, sightings
    finally:
        await service.stop()


def processed(service: Service) -> int:
    queue = service.status()["gate_queue"]
    assert isinstance(queue, dict)
    return int(queue["processed"]) + int(queue["failed"])


async def push(http: httpx.AsyncClient, serial: int, photo: Path, *, password: str = ENV["GATE_PASSWORD"]) -> int:
    body, content_type = isapi_push_body(isapi_event(serial, door=1), [photo.read_bytes()])
    response = await http.post(
        f"/gates/{PUSH_GATE}/isapi",
        content=body,
        headers={"Content-Type": content_type},
        auth=(ENV["GATE_USER"], password),
    )
    return response.status_code


async def test_isapi_push_enrolled_person_alerts_and_stranger_leaves_no_trace(
    tmp_path: Path, kafka: KafkaBroker, kafka_topic: str, consumer: AIOKafkaConsumer, mqtt_topic: str
) -> None:
    config = write_config(tmp_path, kafka.bootstrap, kafka_topic, mqtt_topic)
    person_id = enrol(config, ENROLLED_PHOTO, "Enrolled", env=ENV)
    async with (
        running_service(config) as (service, sightings),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http_port}") as http,
    ):
        # Wrong credentials: refused, nothing recognised.
        assert await push(http, 1, SAME_PERSON, password="wrong") == 401
        assert await push(http, 2, SAME_PERSON) == 200
        alert = await next_alert(consumer, ALERT_DEADLINE_S)
        assert alert is not None, f"no alert within {ALERT_DEADLINE_S} s; status: {service.status()}"

        assert await push(http, 3, STRANGER) == 200
        await eventually(lambda: processed(service) == 2, ALERT_DEADLINE_S, "the stranger's event recognised")
        status = (await http.get("/status")).json()

    assert (alert.person_id, alert.registry, alert.rule, alert.source) == (person_id, "watch", "seen-watch", PUSH_GATE)
    assert alert.source_kind is SourceKind.GATE
    assert alert.grid == "grid-north"
    assert alert.similarity >= 0.45
    # The direction is on the sighting behind the alert (the alert contract carries only its id).
    [sighting] = sightings
    assert alert.sightings == [sighting.sighting_id]
    assert (sighting.direction, sighting.source_kind) == ("in", SourceKind.GATE)
    assert sighting.captured_at.isoformat() == "2024-05-01T00:30:00+00:00"  # the device's 08:30 +08:00, in UTC

    # The stranger made no alert and left nothing behind.
    assert await next_alert(consumer, QUIET_S) is None
    [gate] = [g for g in status["gates"] if g["id"] == PUSH_GATE]
    assert (gate["kind"], gate["events"], gate["rejected"], gate["connected"]) == ("isapi_push", 2, 1, True)
    assert gate["last_event_at"] is not None
    assert status["recognition"]["images"] == 2
    assert status["recognition"]["faces_searched"] == 2  # the stranger's face was searched, and matched nothing
    assert status["gate_queue"]["dropped"] == 0
    assert_no_trace_of_unmatched_faces(tmp_path / "data", enrolled=1)
    assert verify(tmp_path / "data" / "audit.jsonl").ok


async def test_mqtt_capture_alerts_and_is_acknowledged(
    tmp_path: Path, kafka: KafkaBroker, kafka_topic: str, consumer: AIOKafkaConsumer, mqtt_topic: str
) -> None:
    config = write_config(tmp_path, kafka.bootstrap, kafka_topic, mqtt_topic)
    person_id = enrol(config, ENROLLED_PHOTO, "Enrolled", env=ENV)
    async with running_service(config) as (service, sightings):
        await eventually(
            lambda: any(g.source_id == MQTT_GATE and g.extra["connected"] for g in service.gate_status()),
            ALERT_DEADLINE_S,
            "MQTT gate subscribed",
        )
        async with aiomqtt.Client(MQTT_HOST, MQTT_PORT, identifier=f"e2e-terminal-{uuid.uuid4().hex[:8]}") as terminal:
            await terminal.subscribe(f"{mqtt_topic}/ack", qos=1)
            for sequence_no, photo in ((10, SAME_PERSON), (11, STRANGER)):
                await terminal.publish(
                    mqtt_topic,
                    mqtt_capture(device_no="T-south", sequence_no=sequence_no, picture=photo.read_bytes()),
                    qos=1,
                )
            acks: list[bytes] = []
            async with asyncio.timeout(ALERT_DEADLINE_S):
                async for message in terminal.messages:
                    assert isinstance(message.payload, bytes)
                    acks.append(message.payload)
                    if len(acks) == 2:
                        break
        alert = await next_alert(consumer, ALERT_DEADLINE_S)
        assert alert is not None, f"no alert within {ALERT_DEADLINE_S} s; status: {service.status()}"
        await eventually(lambda: processed(service) == 2, ALERT_DEADLINE_S, "both captures recognised")

    assert sorted((json.loads(ack) for ack in acks), key=lambda ack: ack["sequence_no"]) == [
        {"device_no": "T-south", "sequence_no": 10, "result": "ok"},
        {"device_no": "T-south", "sequence_no": 11, "result": "ok"},
    ]
    assert (alert.person_id, alert.source, alert.source_kind, alert.grid) == (
        person_id,
        MQTT_GATE,
        SourceKind.GATE,
        "grid-south",
    )
    [sighting] = sightings
    assert sighting.direction == "out"
    assert await next_alert(consumer, QUIET_S) is None  # the stranger: none
    assert_no_trace_of_unmatched_faces(tmp_path / "data", enrolled=1)
