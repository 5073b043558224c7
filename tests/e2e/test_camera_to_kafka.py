"""The walking skeleton end to end, on real parts only.

A GStreamer RTSP server streams the real clip, the service (real models, FAISS, rules,
outbox) publishes to Apache Kafka (the session's single node), and a real aiokafka consumer reads the alert.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from aiokafka import AIOKafkaConsumer

from gridwatch.core.audit import verify
from gridwatch.core.config.loader import load_config
from gridwatch.service import Service
from recognition.enroll import enrollment_sample, read_photo
from tests.support.e2e import alert_consumer, assert_no_trace_of_unmatched_faces, enrol, next_alert
from tests.support.kafka import KafkaBroker
from tests.support.models import shared_analyzer
from tests.support.paths import CLIP, TESTDATA
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.e2e

PERFORMER = TESTDATA / "faces" / "lin_manuel_miranda" / "lin1.png"
# Not in the clip. (Obama is: he sits in the audience near the end, and matches at about 0.51.)
STRANGER = TESTDATA / "faces" / "kit_harington" / "kit1.jpeg"
ALERT_DEADLINE_S = 60.0


def write_config(root: Path, rtsp_url: str, bootstrap: str, topic: str) -> Path:
    config = root / "config"
    config.mkdir()
    (config / "gridwatch.yaml").write_text(
        f"""
service:
  name: e2e
  data_dir: {root / "data"}
  http: {{enabled: true, host: 127.0.0.1, port: 0}}
cameras:
  - {{id: stage-cam, kind: rtsp, url: "{rtsp_url}", fps: 5, grid: grid-7,
      location_class: lobby, signage_verified_at: 2026-01-15}}
registries:
  - name: watch
    purpose: end-to-end test
    legal_basis: test fixture
    retention_days: 1
    threshold: 0.45
rules:
  - {{id: seen-watch, kind: seen, registries: [watch], cooldown_s: 600}}
notifier:
  console: {{enabled: true}}
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


async def test_enrolled_performer_becomes_a_kafka_alert(
    tmp_path: Path, rtsp_server: RtspServer, kafka: KafkaBroker, kafka_topic: str, consumer: AIOKafkaConsumer
) -> None:
    config = write_config(tmp_path, rtsp_server.url, kafka.bootstrap, kafka_topic)
    person_id = enrol(config, PERFORMER, "Performer")
    service = Service(load_config(config))
    started = time.monotonic()
    await service.start()
    try:
        alert = await next_alert(consumer, ALERT_DEADLINE_S)
        assert alert is not None, f"no alert within {ALERT_DEADLINE_S} s; status: {service.status()}"
        first_alert_s = time.monotonic() - started
        assert (alert.person_id, alert.registry, alert.rule, alert.source) == (
            person_id,
            "watch",
            "seen-watch",
            "stage-cam",
        )
        assert alert.grid == "grid-7"
        assert alert.similarity >= 0.45
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http_port}") as http:
            status = (await http.get("/status")).json()
        assert status["cameras"][0]["state"] == "online"
        assert status["cameras"][0]["frames_out"] > 0
    finally:
        await service.stop()
    print(f"\nfirst alert {first_alert_s:.1f} s after service start; {service.summary().line()}")

    # The cooldown makes one walk past the camera one alert: nothing else arrives.
    assert await next_alert(consumer, 2.0) is None
    assert_no_trace_of_unmatched_faces(tmp_path / "data", enrolled=1)
    assert verify(tmp_path / "data" / "audit.jsonl").ok

    # What staff on the console see: `gridwatch alerts tail` reads the same alert from the topic.
    tail = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gridwatch", "alerts", "tail", "-c", str(config),
        "--from-beginning", "--max", "1", "--timeout", "20",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(tail.communicate(), 60)
    assert tail.returncode == 0, err.decode()
    assert f"id={alert.alert_id}" in out.decode()


async def test_registry_without_the_performer_gives_no_alert(
    tmp_path: Path, rtsp_server: RtspServer, kafka: KafkaBroker, kafka_topic: str, consumer: AIOKafkaConsumer
) -> None:
    config = write_config(tmp_path, rtsp_server.url, kafka.bootstrap, kafka_topic)
    enrol(config, STRANGER, "Someone Else")
    service = Service(load_config(config))
    await service.start()
    try:
        # Long enough to pass the performer's frontal frames more than once (the clip is ~9 s).
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            summary = service.summary()
            if summary.frames_analysed >= 100 and summary.faces >= 100:
                break
            await asyncio.sleep(0.5)
        summary = service.summary()
        assert summary.frames_analysed >= 100, service.status()
        assert summary.faces >= 100
        assert summary.sightings == 0
    finally:
        await service.stop()
    assert await next_alert(consumer, 2.0) is None
    assert_no_trace_of_unmatched_faces(tmp_path / "data", enrolled=1)


def test_clip_really_shows_audience_faces() -> None:
    """Guards the privacy assertions above: the clip has faces that are not the performer."""
    analyzer = shared_analyzer()
    performer = enrollment_sample(analyzer, _gate(), read_photo(PERFORMER), what="lin1").embedding
    capture = cv2.VideoCapture(str(CLIP))
    others = 0
    for _ in range(0, 275, 15):
        capture.set(cv2.CAP_PROP_POS_FRAMES, capture.get(cv2.CAP_PROP_POS_FRAMES) + 14)
        ok, frame = capture.read()
        if not ok:
            break
        faces = analyzer.embed(frame, analyzer.detect(frame))
        assert faces.embeddings is not None
        others += int(np.sum(faces.embeddings @ performer < 0.3))
    capture.release()
    assert others > 0


def _gate():  # type: ignore[no-untyped-def]
    from gridwatch.core.config.model import QualityConfig
    from recognition.quality import QualityGate

    return QualityGate(QualityConfig())
