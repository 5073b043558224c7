"""The responsible staff end to end, on real parts: a gate push → recognition → the `seen` rule → an alert
→ one notification per on-duty recipient on Apache Kafka (read by a real consumer) → no acknowledgement →
escalation to the parent grid's duty → acknowledgement through the one-click link (a real HTTP client) →
the `acknowledged` event on the alert-events topic, and no further escalation.

Then the durability of a step: a service killed (SIGKILL) between the first notification and the
escalation escalates once after its restart, not twice and not never.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from gridwatch.core.audit import verify
from gridwatch.core.config.loader import load_config
from gridwatch.core.events import CaseEvent, Notification
from gridwatch.service import Service
from tests.support.e2e import enrol
from tests.support.gate_payloads import isapi_event, isapi_push_body
from tests.support.kafka import KafkaBroker, create_topic, unique_topic
from tests.support.paths import TESTDATA

pytestmark = pytest.mark.e2e

ENROLLED_PHOTO = TESTDATA / "faces" / "biden" / "biden.jpg"
SAME_PERSON = TESTDATA / "faces" / "biden" / "biden2.jpg"
GATE = "gate-a1"
DEADLINE_S = 40.0
ESCALATE_AFTER_S = 3
SECOND_STEP_S = 8
ENV = {
    "GATE_USER": "terminal",
    "GATE_PASSWORD": "e2e-gate-secret",
    "GRIDWATCH_ACK_SECRET": "e2e-ack-secret-0123456789abcdef",
}


def write_config(root: Path, bootstrap: str, topics: dict[str, str], *, http_port: int = 0) -> Path:
    config = root / "config"
    config.mkdir(exist_ok=True)
    (config / "gridwatch.yaml").write_text(
        f"""
service:
  name: e2e-staff
  data_dir: {root / "data"}
  http: {{enabled: true, host: 127.0.0.1, port: {http_port}}}
gates:
  - id: {GATE}
    kind: isapi_push
    grid: grid-a1
    username: ${{GATE_USER}}
    password: ${{GATE_PASSWORD}}
    doors: [{{door: "1", direction: in}}]
registries:
  - {{name: welfare, purpose: end-to-end test, legal_basis: test fixture, retention_days: 1, threshold: 0.45}}
rules:
  - {{id: seen-welfare, kind: seen, registries: [welfare], cooldown_s: 0}}
grids:
  - {{id: street, name: Street office}}
  - {{id: community, name: Community, parent: street}}
  - {{id: grid-a1, name: Grid A1, parent: community}}
  - {{id: grid-a2, name: Grid A2, parent: community}}
staff:
  - {{id: worker-a1, name: Worker A1, grids: [grid-a1], channels: [push]}}
  - {{id: night-a1, name: Night A1, grids: [grid-a1], channels: [push]}}
  - {{id: worker-a2, name: Worker A2, grids: [grid-a2], channels: [push]}}
  - {{id: officer, name: Community officer, grids: [community], channels: [push]}}
  - {{id: chief, name: Street chief, grids: [street], channels: [push]}}
duty:
  - grid: grid-a1
    timezone: Asia/Shanghai
    shifts: [{{days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "24:00", staff: [worker-a1, night-a1]}}]
  - grid: grid-a2
    timezone: Asia/Shanghai
    shifts: [{{days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "24:00", staff: [worker-a2]}}]
  - grid: community
    timezone: Asia/Shanghai
    rotation: {{staff: [officer], every_s: 86400, start: "2026-01-01T00:00:00+08:00"}}
  - grid: street
    timezone: Asia/Shanghai
    shifts: [{{days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "24:00", staff: [chief]}}]
routes:
  - match: {{registry: [welfare]}}
    notify: [on_duty]
    require_ack: true
    escalate:
      - {{after_s: {ESCALATE_AFTER_S}, notify: [on_duty_parent]}}
      - {{after_s: {SECOND_STEP_S}, notify: [on_duty_parent]}}
channels:
  - {{id: push, type: kafka, topic: {topics["notifications"]}}}
notifier:
  console: {{enabled: false}}
  kafka: {{enabled: true, bootstrap_servers: {bootstrap}, topic: {topics["alerts"]}}}
  acks: {{signing_secret: "${{GRIDWATCH_ACK_SECRET}}", link_ttl_s: 600}}
  alert_events: {{enabled: true, topic: {topics["events"]}}}
  outbox: {{retry_initial_s: 0.2, retry_max_s: 1.0}}
"""
    )
    return config


@asynccontextmanager
async def consumer_of(bootstrap: str, topic: str) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def read(consumer: AIOKafkaConsumer, count: int, deadline_s: float) -> list[Any]:
    """Up to ``count`` records, waiting at most ``deadline_s`` in all."""
    records: list[Any] = []
    end = time.monotonic() + deadline_s
    while len(records) < count and (left := end - time.monotonic()) > 0:
        batch = await consumer.getmany(timeout_ms=int(min(left, 1.0) * 1000))
        for partition_records in batch.values():
            records += partition_records
    return records


def notification(record: Any) -> Notification:
    return Notification.model_validate_json(record.value)


async def push(http: httpx.AsyncClient, serial: int, photo: Path) -> int:
    body, content_type = isapi_push_body(isapi_event(serial, door=1), [photo.read_bytes()])
    response = await http.post(
        f"/gates/{GATE}/isapi",
        content=body,
        headers={"Content-Type": content_type},
        auth=(ENV["GATE_USER"], ENV["GATE_PASSWORD"]),
    )
    return response.status_code


@pytest.fixture
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def topics(request: pytest.FixtureRequest) -> dict[str, str]:
    base = unique_topic(request.node.name)
    return {"alerts": f"{base}.alerts", "notifications": f"{base}.notifications", "events": f"{base}.events"}


@pytest.fixture
async def created(kafka: KafkaBroker, topics: dict[str, str]) -> dict[str, str]:
    """The topics, created (the test broker does not auto-create topics)."""
    for topic in topics.values():
        await create_topic(kafka.bootstrap, topic, partitions=1)
    return topics


async def test_notified_escalated_then_acknowledged_by_the_one_click_link(
    tmp_path: Path, kafka: KafkaBroker, created: dict[str, str]
) -> None:
    topics = created
    config = write_config(tmp_path, kafka.bootstrap, topics)
    person_id = enrol(config, ENROLLED_PHOTO, "Resident", registry="welfare", env=ENV)
    service = Service(load_config(config, ENV))
    await service.start()
    try:
        async with (
            consumer_of(kafka.bootstrap, topics["notifications"]) as notifications,
            consumer_of(kafka.bootstrap, topics["events"]) as events,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http_port}") as http,
        ):
            assert await push(http, 1, SAME_PERSON) == 200
            # One notification per on-duty recipient of the alert's grid, keyed by staff id.
            first = await read(notifications, 2, DEADLINE_S)
            assert sorted(r.key.decode() for r in first) == ["night-a1", "worker-a1"]
            level0 = [notification(r) for r in first]
            assert {n.level for n in level0} == {0}
            assert {n.person_id for n in level0} == {person_id}
            alert_id = level0[0].alert_id
            assert all(dict(r.headers)["ce_id"].decode() == notification(r).notification_id for r in first)

            # Nobody acknowledges: the community's duty (the parent grid) is told after ESCALATE_AFTER_S.
            [escalated] = await read(notifications, 1, DEADLINE_S)
            step1 = notification(escalated)
            assert (escalated.key.decode(), step1.level, step1.alert_id) == ("officer", 1, alert_id)
            lateness = (step1.created_at - level0[0].created_at).total_seconds() - ESCALATE_AFTER_S
            assert lateness >= 0

            # The officer acknowledges through the link in their push message.
            assert step1.ack_url is not None
            link = httpx.URL(step1.ack_url)
            # Opening it (as a link previewer would) acknowledges nothing; the page's button does.
            page = await http.get(link.path)
            assert (page.status_code, "<form" in page.text) == (200, True), page.text
            form = {"Content-Type": "application/x-www-form-urlencoded"}
            answer = await http.post(link.path, content=b"acknowledge=1", headers=form)
            assert answer.status_code == 200, answer.text
            assert (await http.post(link.path, headers=form)).status_code == 409  # single use
            forged = link.path[:-4] + ("AAAA" if not link.path.endswith("AAAA") else "BBBB")
            assert (await http.get(forged)).status_code == 400

            # The acknowledged event on alert-events; the ladder stops (no street-level step).
            seen: list[CaseEvent] = []
            for record in await read(events, 3, DEADLINE_S):
                seen.append(CaseEvent.model_validate_json(record.value))
                assert record.key.decode() == person_id
            assert [e.type for e in seen] == [
                "gridwatch.alert.notified.v1",
                "gridwatch.alert.escalated.v1",
                "gridwatch.alert.acknowledged.v1",
            ]
            assert (seen[-1].actor, seen[-1].channel) == ("officer", "link")
            assert await read(notifications, 1, SECOND_STEP_S - ESCALATE_AFTER_S + 3) == []
            notifier = service.status()["notifier"]
            assert isinstance(notifier, dict)
            assert notifier["notifications"]["channels"]["push"]["parked"] == 0
    finally:
        await service.stop()
    audit = verify(tmp_path / "data" / "audit.jsonl")
    assert audit.ok
    actions = [json.loads(line)["action"] for line in (tmp_path / "data" / "audit.jsonl").read_text().splitlines()]
    for action in ("case.notified", "case.escalated", "case.acknowledged", "ack_link.used", "ack_link.refused"):
        assert action in actions


def run_service(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "gridwatch", "run", "-c", str(config)],
            env={**os.environ, **ENV, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
            stdout=output,
            stderr=subprocess.STDOUT,
        )


async def test_a_sigkill_between_notification_and_escalation_escalates_once(
    tmp_path: Path, kafka: KafkaBroker, created: dict[str, str], free_port: int
) -> None:
    topics = created
    config = write_config(tmp_path, kafka.bootstrap, topics, http_port=free_port)
    enrol(config, ENROLLED_PHOTO, "Resident", registry="welfare", env=ENV)
    log = tmp_path / "service.log"
    process = run_service(config, log)
    try:
        async with (
            consumer_of(kafka.bootstrap, topics["notifications"]) as notifications,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{free_port}") as http,
        ):
            deadline = time.monotonic() + DEADLINE_S
            while True:
                try:
                    if (await http.get("/healthz")).status_code in (200, 503):
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                await asyncio.sleep(0.3)
            assert await push(http, 1, SAME_PERSON) == 200
            first = await read(notifications, 2, DEADLINE_S)
            assert len(first) == 2, log.read_text()
            process.send_signal(signal.SIGKILL)  # before the escalation is due
            process.wait(10)
            await asyncio.sleep(ESCALATE_AFTER_S + 1)  # the step comes due while the service is down
            process = run_service(config, log)
            # Delivery is at least once: a notification sent just before the kill and not yet recorded
            # as sent comes again after the restart, with its id; consumers dedupe on it, so do we.
            seen = {notification(r).notification_id for r in first}
            later: dict[str, tuple[int, str]] = {}
            deadline = time.monotonic() + DEADLINE_S
            while len(later) < 2 and time.monotonic() < deadline:
                for record in await read(notifications, 1, 1.0):
                    note = notification(record)
                    if note.notification_id not in seen:
                        later[note.notification_id] = (note.level, record.key.decode())
            # Step 1 once (overdue at the restart), then step 2 at its time; never step 1 twice.
            assert sorted(later.values()) == [(1, "officer"), (2, "chief")], log.read_text()
            for record in await read(notifications, 5, 3.0):
                assert notification(record).notification_id in seen | set(later)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
